// WebRTC with the summit's media server (Janus behind summitry): WHIP to publish, and one
// room subscription (the server offers, we answer) that carries everyone else's feeds.
// Every sender and receiver has the end-to-end encryption transform from its first frame.

import { PC_OPTIONS } from "./e2ee.js";
import { negotiate } from "./whip.js";

const PC_CONFIG = { bundlePolicy: "max-bundle", ...PC_OPTIONS };

// The camera in three layers (simulcast), highest first as Janus reads them: each
// receiver gets the layer its own path carries (see layers.js). A picture under 360
// lines goes as one layer: Chromium would send only its top one anyway.
export const SIMULCAST = [
  { rid: "h", maxBitrate: 1_200_000 },
  { rid: "m", maxBitrate: 450_000, scaleResolutionDownBy: 2 },
  { rid: "l", maxBitrate: 150_000, scaleResolutionDownBy: 4 },
];

/** Whether a camera track goes out in layers. */
export function layered(track) {
  return (track?.getSettings().height || 0) >= 360;
}

/** A PeerConnection through the summit's TURN servers (`iceServers`, from the server). */
function peerConnection(iceServers) {
  return new RTCPeerConnection({ ...PC_CONFIG, iceServers: iceServers || [] });
}

export const QUALITIES = {
  hd: { label: "HD 720p", width: 1280, height: 720, frameRate: 30 },
  sd: { label: "SD 360p", width: 640, height: 360, frameRate: 30 },
  low: { label: "Low 180p", width: 320, height: 180, frameRate: 15 },
};

/**
 * Reports every connection state to `onState`, and calls `onTrouble` when the connection
 * failed, or stayed disconnected for 3 s.
 */
function watchConnection(pc, onTrouble, onState) {
  let timer = null;
  pc.addEventListener("connectionstatechange", () => {
    const state = pc.connectionState;
    onState?.(state);
    clearTimeout(timer);
    if (state === "failed") onTrouble(state);
    else if (state === "disconnected") timer = setTimeout(() => onTrouble(state), 3000);
  });
}

export async function openCamera({ cameraId, micId, quality, audio = true, video = true }) {
  const q = QUALITIES[quality] || QUALITIES.hd;
  const constraints = {
    audio: audio && {
      deviceId: micId ? { exact: micId } : undefined,
      echoCancellation: true,
      noiseSuppression: true,
      autoGainControl: true,
    },
    video: video && {
      deviceId: cameraId ? { exact: cameraId } : undefined,
      width: { ideal: q.width },
      height: { ideal: q.height },
      frameRate: { ideal: q.frameRate },
    },
  };
  return navigator.mediaDevices.getUserMedia(constraints);
}

export async function listDevices() {
  const devices = await navigator.mediaDevices.enumerateDevices();
  return {
    cameras: devices.filter((d) => d.kind === "videoinput"),
    mics: devices.filter((d) => d.kind === "audioinput"),
  };
}

/** Our camera and microphone into the room (WHIP, RFC 9725). */
export class Publisher {
  constructor(api, { e2ee, iceServers, onTrouble, onState }) {
    this.api = api;
    this.e2ee = e2ee;
    this.iceServers = iceServers;
    this.onTrouble = onTrouble;
    this.onState = onState;
    this.pc = null;
    this.transceivers = {};
    this.location = null;
    this.closed = false;
  }

  async start(stream) {
    const pc = peerConnection(this.iceServers);
    this.pc = pc;
    this.transceivers = {};
    this.layered = layered(stream.getVideoTracks()[0]);
    for (const kind of ["audio", "video"]) {
      const track = stream.getTracks().find((t) => t.kind === kind);
      this.transceivers[kind] = pc.addTransceiver(track || kind, {
        direction: "sendonly",
        streams: [stream],
        ...(kind === "video" && this.layered && { sendEncodings: SIMULCAST }),
      });
      this.e2ee.attachSender(this.transceivers[kind].sender, kind);
    }
    watchConnection(
      pc,
      (state) => !this.closed && this.onTrouble(state),
      (state) => !this.closed && this.onState?.(state),
    );
    await negotiate(this, pc, (sdp) =>
      this.api.raw("POST", "/whip", { body: sdp, contentType: "application/sdp" }),
    );
  }

  async replaceTrack(track) {
    const transceiver = this.transceivers[track.kind];
    if (transceiver && !this.closed) await transceiver.sender.replaceTrack(track);
  }

  /** Whether `track` needs a new negotiation: it goes out in layers and the current
   * one does not, or the other way round. */
  layeringChanges(track) {
    return track.kind === "video" && layered(track) !== this.layered;
  }

  /** Frees the session on the server while the page is being closed. */
  release() {
    if (this.location) this.api.raw("DELETE", this.location, { keepalive: true }).catch(() => {});
  }

  async stop({ tellServer = true } = {}) {
    this.closed = true;
    const location = this.location;
    this.location = null;
    this.pc?.close();
    if (tellServer && location) {
      try {
        await this.api.raw("DELETE", location);
      } catch {
        /* gone already (server restarted, or we were dropped) */
      }
    }
  }
}

/**
 * Everyone else's feeds, in one PeerConnection. `onChange(feeds, media)` is called after
 * each negotiation with the feeds and, per feed id, the receivers carrying it.
 */
export class RoomSubscription {
  constructor(api, { e2ee, iceServers, onChange, onTrouble, onState }) {
    this.api = api;
    this.e2ee = e2ee;
    this.onChange = onChange;
    this.onTrouble = onTrouble;
    this.pc = peerConnection(iceServers);
    this.id = null;
    this.feeds = [];
    this.streams = [];
    this.closed = false;
    this.started = null;
    this.running = null;
    this.again = false;
    watchConnection(
      this.pc,
      (state) => !this.closed && onTrouble(state),
      (state) => !this.closed && onState?.(state),
    );
    this.pc.addEventListener("track", (event) => {
      e2ee.attachReceiver(event.receiver, event.track.kind);
      this.report();
    });
  }

  start() {
    this.started = this.api.post("/subscriptions").then((body) => this.take(body));
    return this.started;
  }

  /**
   * Brings the subscription up to date. Negotiations never overlap: a sync waits for the
   * start, and calls made while one runs coalesce into one more run.
   */
  sync() {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      try {
        await this.started;
        do {
          this.again = false;
          if (this.closed || !this.id) return;
          await this.take(await this.api.post(`/subscriptions/${this.id}/sync`));
        } while (this.again);
      } finally {
        this.running = null;
      }
    })();
    return this.running;
  }

  async take(body) {
    if (this.closed) return;
    this.id = body.id;
    this.feeds = body.feeds;
    this.streams = body.streams;
    if (body.offer) {
      await this.pc.setRemoteDescription({ type: "offer", sdp: body.offer });
      this.expectSenders(); // before any frame of this negotiation arrives
      // Janus gets the answer before this browser starts ICE, and learns our addresses
      // from the connectivity checks; with setup:passive Janus opens DTLS as soon as its
      // own ICE is ready (bench/join_time.py measured ~35 ms saved per join).
      const made = await this.pc.createAnswer();
      const answer = { type: "answer", sdp: made.sdp.replaceAll("a=setup:active", "a=setup:passive") };
      await this.api.post(`/subscriptions/${this.id}/answer`, { sdp: answer.sdp });
      if (this.closed) return;
      await this.pc.setLocalDescription(answer);
    }
    this.report();
  }

  /** `layers`: feed id → "low" | "medium" | "high", the video layer to receive. */
  async chooseLayers(layers) {
    if (this.closed || !this.id) return;
    const chosen = [...layers].map(([feed_id, layer]) => ({ feed_id, layer }));
    await this.api.put(`/subscriptions/${this.id}/layers`, { layers: chosen });
  }

  /** Tells the decryption of each receiver whose frames it may open: those of the
   * participant whose feed the media section carries. */
  expectSenders() {
    const byMid = new Map(this.streams.map((s) => [String(s.mid), s]));
    const publisher = new Map(this.feeds.map((f) => [f.feed_id, f.participant_id]));
    for (const transceiver of this.pc.getTransceivers()) {
      const participantId = publisher.get(byMid.get(String(transceiver.mid))?.feed_id);
      if (participantId) this.e2ee.expect(transceiver.receiver, participantId);
    }
  }

  /** feed id → {audio, video}: the receivers whose media section carries that feed. */
  media() {
    const byMid = new Map(this.streams.map((s) => [String(s.mid), s]));
    const result = new Map();
    for (const transceiver of this.pc.getTransceivers()) {
      const stream = byMid.get(String(transceiver.mid));
      if (!stream || transceiver.currentDirection === "inactive" || transceiver.stopped) continue;
      const entry = result.get(stream.feed_id) || {};
      entry[stream.kind] = transceiver.receiver;
      result.set(stream.feed_id, entry);
    }
    return result;
  }

  report() {
    if (!this.closed) this.onChange(this.feeds, this.media());
  }

  /** Frees the subscription on the server while the page is being closed. */
  release() {
    if (this.id) this.api.raw("DELETE", `/subscriptions/${this.id}`, { keepalive: true }).catch(() => {});
  }

  async stop({ tellServer = true } = {}) {
    this.closed = true;
    this.pc.close();
    if (tellServer && this.id) {
      try {
        await this.api.del(`/subscriptions/${this.id}`);
      } catch {
        /* gone already */
      }
    }
  }
}

/** Measures the loudness (RMS, 0..1) of an audio track with a WebAudio AnalyserNode. */
export class LevelMeter {
  static context = null;

  constructor(track) {
    LevelMeter.context ||= new AudioContext();
    const context = LevelMeter.context;
    if (context.state === "suspended") context.resume().catch(() => {});
    this.source = context.createMediaStreamSource(new MediaStream([track]));
    this.analyser = context.createAnalyser();
    this.analyser.fftSize = 1024;
    this.source.connect(this.analyser);
    this.buffer = new Float32Array(this.analyser.fftSize);
    this.peak = 0; // the loudest RMS since the last read of `take()`
    this.level = 0;
    this.timer = setInterval(() => this.sample(), 100);
  }

  sample() {
    this.analyser.getFloatTimeDomainData(this.buffer);
    let sum = 0;
    for (const value of this.buffer) sum += value * value;
    this.level = Math.sqrt(sum / this.buffer.length);
    this.peak = Math.max(this.peak, this.level);
  }

  take() {
    const peak = this.peak;
    this.peak = this.level;
    return peak;
  }

  stop() {
    clearInterval(this.timer);
    this.source.disconnect();
  }
}
