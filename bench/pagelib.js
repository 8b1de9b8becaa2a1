// In-page helpers for the benchmarks: a canvas source that stamps every frame with the
// time it was drawn, a reader for those stamps, and the three ways a picture travels
// (direct browser-to-browser, WHIP publish, summitry's room subscription).
(() => {
  const BITS = 24;
  const CELL = 20;
  const clock = () => Math.round(performance.timeOrigin + performance.now()) % (1 << BITS);

  function stampedStream(fps = 30, width = 640, height = 360) {
    const canvas = document.createElement("canvas");
    canvas.width = width;
    canvas.height = height;
    const g = canvas.getContext("2d");
    let frame = 0;
    const draw = () => {
      frame += 1;
      g.fillStyle = `hsl(${(frame * 3) % 360} 40% 35%)`;
      g.fillRect(0, 0, canvas.width, canvas.height);
      const now = clock();
      for (let bit = 0; bit < BITS; bit += 1) {
        g.fillStyle = (now >> bit) & 1 ? "#fff" : "#000";
        g.fillRect(bit * CELL, 0, CELL, CELL * 2);
      }
    };
    draw();
    setInterval(draw, 1000 / fps);
    const stream = canvas.captureStream(fps);
    const audio = new AudioContext();
    const tone = audio.createOscillator();
    const out = audio.createMediaStreamDestination();
    tone.connect(out);
    tone.start();
    stream.addTrack(out.stream.getAudioTracks()[0]);
    return stream;
  }

  function video(stream) {
    const element = document.createElement("video");
    element.muted = true;
    element.playsInline = true;
    element.srcObject = stream;
    document.body.appendChild(element);
    element.play();
    return element;
  }

  function firstFrame(element) {
    return new Promise((resolve) => element.requestVideoFrameCallback(() => resolve(performance.now())));
  }

  function readStamp(element, scratch) {
    const g = scratch.getContext("2d", { willReadFrequently: true });
    scratch.width = element.videoWidth;
    scratch.height = element.videoHeight;
    g.drawImage(element, 0, 0);
    const scale = element.videoWidth / 640;
    let value = 0;
    for (let bit = 0; bit < BITS; bit += 1) {
      const [r] = g.getImageData(Math.round((bit * CELL + CELL / 2) * scale), Math.round(CELL * scale), 1, 1).data;
      if (r > 128) value |= 1 << bit;
    }
    return value;
  }

  // Glass-to-glass: the time from drawing a frame to rendering it, for `seconds`.
  function latencies(element, seconds) {
    const scratch = document.createElement("canvas");
    const found = [];
    const until = performance.now() + seconds * 1000;
    return new Promise((resolve) => {
      const onFrame = () => {
        const delay = (clock() - readStamp(element, scratch) + (1 << BITS)) % (1 << BITS);
        if (delay < 5000) found.push(delay);
        if (performance.now() < until) element.requestVideoFrameCallback(onFrame);
        else resolve(found);
      };
      element.requestVideoFrameCallback(onFrame);
    });
  }

  const gathered = (pc) => new Promise((resolve) => {
    if (pc.iceGatheringState === "complete") return resolve();
    pc.addEventListener("icegatheringstatechange", () => {
      if (pc.iceGatheringState === "complete") resolve();
    });
  });

  async function directCall(stream) {
    const started = performance.now();
    const sender = new RTCPeerConnection();
    const receiver = new RTCPeerConnection();
    sender.onicecandidate = (e) => e.candidate && receiver.addIceCandidate(e.candidate);
    receiver.onicecandidate = (e) => e.candidate && sender.addIceCandidate(e.candidate);
    const remote = new Promise((resolve) => { receiver.ontrack = (e) => resolve(e.streams[0] || new MediaStream([e.track])); });
    for (const track of stream.getTracks()) sender.addTrack(track, stream);
    await sender.setLocalDescription(await sender.createOffer());
    await receiver.setRemoteDescription(sender.localDescription);
    await receiver.setLocalDescription(await receiver.createAnswer());
    await sender.setRemoteDescription(receiver.localDescription);
    const element = video(await remote);
    const first = await firstFrame(element);
    return { ms: first - started, element, close: () => { sender.close(); receiver.close(); element.remove(); } };
  }

  // A direct call between two pages: the caller's offer and the callee's answer are
  // carried by the benchmark itself (complete descriptions, no trickle).
  async function directOffer(stream) {
    const pc = new RTCPeerConnection();
    for (const track of stream.getTracks()) pc.addTransceiver(track, { direction: "sendonly" });
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc);
    window.directCaller = pc;
    return pc.localDescription.sdp;
  }

  async function directAnswer(offer) {
    const pc = new RTCPeerConnection();
    const remote = new Promise((resolve) => {
      pc.ontrack = (e) => { if (e.track.kind === "video") resolve(new MediaStream([e.track])); };
    });
    await pc.setRemoteDescription({ type: "offer", sdp: offer });
    await pc.setLocalDescription(await pc.createAnswer());
    await gathered(pc);
    remote.then((stream) => { window.directElement = video(stream); });
    window.directCallee = pc;
    return pc.localDescription.sdp;
  }

  // `sendEncodings`: the video's layers (e.g. the room page's simulcast), if any.
  async function publish(summit, token, stream, sendEncodings) {
    const pc = new RTCPeerConnection();
    for (const track of stream.getTracks()) {
      const layers = track.kind === "video" && sendEncodings ? { sendEncodings } : {};
      pc.addTransceiver(track, { direction: "sendonly", ...layers });
    }
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc);
    const response = await fetch(`/api/v1/summits/${summit}/whip`, {
      method: "POST", body: pc.localDescription.sdp,
      headers: { "Content-Type": "application/sdp", Authorization: `Bearer ${token}` },
    });
    if (response.status !== 201) throw new Error(`WHIP ${response.status}: ${await response.text()}`);
    await pc.setRemoteDescription({ type: "answer", sdp: await response.text() });
    return { pc, location: response.headers.get("Location") };
  }

  // `config`: the PeerConnection's, e.g. the summit's TURN servers with relay only;
  // `rewrite`: what becomes of Janus's offer first (e.g. candidates through a relay).
  async function subscribe(summit, token, config = {}, rewrite = async (sdp) => sdp) {
    const started = performance.now();
    const headers = { Authorization: `Bearer ${token}`, "Content-Type": "application/json" };
    const base = `/api/v1/summits/${summit}/subscriptions`;
    const pc = new RTCPeerConnection(config);
    const remote = new Promise((resolve) => {
      pc.ontrack = (e) => { if (e.track.kind === "video") resolve(new MediaStream([e.track])); };
    });
    const body = await (await fetch(base, { method: "POST", headers })).json();
    if (!body.offer) throw new Error("nothing to subscribe to");
    await pc.setRemoteDescription({ type: "offer", sdp: await rewrite(body.offer) });
    // Janus gets the answer before this browser starts ICE, so the first DTLS packet
    // finds Janus ready; Janus learns our addresses from the connectivity checks.
    // setup:passive makes Janus open the DTLS handshake once its own ICE is ready; as
    // the client, Chromium's first handshake packet often arrives too early and waits
    // out a 50 ms retransmission.
    const made = await pc.createAnswer();
    const answer = { type: "answer", sdp: made.sdp.replaceAll("a=setup:active", "a=setup:passive") };
    const answered = await fetch(`${base}/${body.id}/answer`, {
      method: "POST", headers, body: JSON.stringify({ sdp: answer.sdp }),
    });
    if (answered.status !== 204) throw new Error(`answer ${answered.status}`);
    await pc.setLocalDescription(answer);
    const element = video(await remote);
    const first = await firstFrame(element);
    return {
      ms: first - started, element, pc, feeds: body.feeds,
      // `layers`: [feed id, "low" | "medium" | "high"] pairs, as the room page sends them.
      chooseLayers: (layers) => fetch(`${base}/${body.id}/layers`, {
        method: "PUT", headers,
        body: JSON.stringify({ layers: layers.map(([feed_id, layer]) => ({ feed_id, layer })) }),
      }),
      close: async () => {
        pc.close(); element.remove();
        await fetch(`${base}/${body.id}`, { method: "DELETE", headers });
      },
    };
  }

  // A public viewer over WHEP: the first side's picture (the mountpoint carries a video
  // and an audio stream per side).
  async function whep(url) {
    const pc = new RTCPeerConnection();
    for (let side = 0; side < 2; side += 1) {
      pc.addTransceiver("video", { direction: "recvonly" });
      pc.addTransceiver("audio", { direction: "recvonly" });
    }
    const first = new Promise((resolve) => {
      pc.ontrack = (e) => { if (e.transceiver === pc.getTransceivers()[0]) resolve(new MediaStream([e.track])); };
    });
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc);
    const response = await fetch(url, {
      method: "POST", body: pc.localDescription.sdp, headers: { "Content-Type": "application/sdp" },
    });
    if (response.status !== 201) throw new Error(`WHEP ${response.status}: ${await response.text()}`);
    await pc.setRemoteDescription({ type: "answer", sdp: await response.text() });
    return video(await first);
  }

  // A public viewer over HLS with hls.js, tuned as measured in MEDIA-NOTES.md.
  function hls(url) {
    const element = document.createElement("video");
    element.muted = true;
    document.body.appendChild(element);
    const player = new Hls({
      liveSyncDuration: 1.0, liveMaxLatencyDuration: 6, maxLiveSyncPlaybackRate: 1.5,
      enableWorker: false,
    });
    player.loadSource(url);
    player.attachMedia(element);
    player.on(Hls.Events.MANIFEST_PARSED, () => element.play());
    return element;
  }

  window.bench = {
    whep, hls,
    stampedStream, video, directCall, directOffer, directAnswer, publish, subscribe, latencies,
  };
})();
