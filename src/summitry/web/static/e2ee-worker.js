// Encrypts and decrypts every encoded audio and video frame of the call (WebRTC encoded
// transforms). Frames pass in the clear while the talks are broadcast; from the cut on,
// senders seal each frame with AES-GCM under the key in force, keeping in the clear only
// the codec bytes the media server reads (VP8: 10 on key frames, 3 on others; Opus: 1),
// and append a trailer: IV (12 bytes), key epoch (2 bytes), marker (2 bytes).

const MARKER = [0xe2, 0xee];
const IV_BYTES = 12;
const TRAILER_BYTES = IV_BYTES + 2 + MARKER.length;
const KEPT_KEYS = 3; // the key in force and the ones before it, for frames in flight
// Frames sent just before the cut are still on their way when a receiver learns of it:
// it takes them, until that stream's first sealed frame or for this long at most.
const CUT_GRACE_MS = 2000;

const keys = new Map(); // epoch → CryptoKey
let sendEpoch = null; // null: send in the clear (public part) or, once private, nothing
let privatePhase = false;
let privateSince = 0;
const counters = new Map(); // transform id → what it did
const videoSenders = new Set(); // transformers that can make a key frame on request

function clearBytes(kind, frame) {
  if (kind === "audio") return 1;
  return frame.type === "key" ? 10 : 3;
}

function countersFor(options) {
  let c = counters.get(options.id);
  if (!c) {
    c = {
      id: options.id,
      side: options.side,
      kind: options.kind,
      clear: 0, // passed in the clear
      encrypted: 0,
      decrypted: 0,
      undecryptable: 0, // sealed with a key we do not hold, or forged
      dropped: 0, // not sent, or not passed on, because private media must be sealed
      epoch: null, // of the last frame sealed or opened
      epochSince: null, // wall clock (ms) of the first frame sealed with that epoch
      firstEncryptedAt: null, // wall clock (ms) of the first frame sealed
      lastEncryptedAt: null,
    };
    counters.set(options.id, c);
  }
  return c;
}

function metadataOf(epoch) {
  return new Uint8Array([(epoch >> 8) & 0xff, epoch & 0xff, ...MARKER]);
}

function joined(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

async function seal(frame, controller, options, c) {
  const epoch = sendEpoch;
  const key = epoch === null ? null : keys.get(epoch);
  if (!key) {
    if (privatePhase) {
      c.dropped += 1; // no key yet: silence rather than private speech in the clear
      return;
    }
    c.clear += 1;
    controller.enqueue(frame);
    return;
  }
  const data = new Uint8Array(frame.data);
  const header = data.subarray(0, Math.min(clearBytes(options.kind, frame), data.length));
  const iv = crypto.getRandomValues(new Uint8Array(IV_BYTES));
  const metadata = metadataOf(epoch);
  const sealed = await crypto.subtle.encrypt(
    { name: "AES-GCM", iv, additionalData: joined(header, metadata) },
    key,
    data.subarray(header.length),
  );
  frame.data = joined(header, new Uint8Array(sealed), iv, metadata).buffer;
  const now = Date.now();
  c.encrypted += 1;
  if (c.epoch !== epoch) c.epochSince = now;
  c.epoch = epoch;
  c.firstEncryptedAt ??= now;
  c.lastEncryptedAt = now;
  controller.enqueue(frame);
}

async function open(frame, controller, options, c) {
  const data = new Uint8Array(frame.data);
  const n = data.length;
  const marked = n > TRAILER_BYTES && data[n - 2] === MARKER[0] && data[n - 1] === MARKER[1];
  if (marked) {
    const epoch = (data[n - 4] << 8) | data[n - 3];
    const key = keys.get(epoch);
    const body = data.subarray(0, n - TRAILER_BYTES);
    const header = body.subarray(0, Math.min(clearBytes(options.kind, frame), body.length));
    const iv = data.subarray(n - TRAILER_BYTES, n - TRAILER_BYTES + IV_BYTES);
    if (key) {
      try {
        const plain = await crypto.subtle.decrypt(
          { name: "AES-GCM", iv, additionalData: joined(header, data.subarray(n - 4)) },
          key,
          body.subarray(header.length),
        );
        frame.data = joined(header, new Uint8Array(plain)).buffer;
        c.decrypted += 1;
        c.epoch = epoch;
        controller.enqueue(frame);
        return;
      } catch {
        /* not sealed by us after all, or tampered with: below */
      }
    }
    if (privatePhase) {
      c.undecryptable += 1;
      return;
    }
  } else if (privatePhase && (c.decrypted > 0 || Date.now() - privateSince > CUT_GRACE_MS)) {
    c.dropped += 1; // in the private phase only sealed frames are genuine
    return;
  }
  c.clear += 1; // public part: a clear frame (that may end like a trailer by chance)
  controller.enqueue(frame);
}

function run(readable, writable, options) {
  const c = countersFor(options);
  const step = options.side === "send" ? seal : open;
  readable
    .pipeThrough(
      new TransformStream({ transform: (frame, controller) => step(frame, controller, options, c) }),
    )
    .pipeTo(writable)
    .catch(() => {
      /* the connection closed */
    });
}

self.onrtctransform = (event) => {
  const transformer = event.transformer;
  const { side, kind } = transformer.options;
  if (side === "send" && kind === "video") {
    videoSenders.add(transformer);
    transformer.writable.closed?.finally(() => videoSenders.delete(transformer)).catch(() => {});
  }
  run(transformer.readable, transformer.writable, transformer.options);
};

/** A new key to send with: receivers start from a key frame sealed with it, at once. */
function newKeyFrames() {
  for (const transformer of videoSenders) transformer.generateKeyFrame?.().catch(() => {});
}

self.onmessage = ({ data }) => {
  switch (data.type) {
    case "streams": // browsers without RTCRtpScriptTransform: createEncodedStreams
      run(data.readable, data.writable, data.options);
      break;
    case "key":
      keys.set(data.epoch, data.key);
      for (const epoch of [...keys.keys()].sort((a, b) => b - a).slice(KEPT_KEYS)) keys.delete(epoch);
      break;
    case "mode": {
      if (data.private && !privatePhase) privateSince = Date.now();
      privatePhase = data.private;
      const before = sendEpoch;
      sendEpoch = data.private ? data.sendEpoch : null;
      if (sendEpoch !== null && sendEpoch !== before) newKeyFrames();
      break;
    }
    case "forget":
      keys.clear();
      sendEpoch = null;
      break;
    case "stats":
      self.postMessage({ type: "stats", ask: data.ask, counters: [...counters.values()] });
      break;
  }
};
