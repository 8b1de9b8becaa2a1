// Encrypts and decrypts every encoded audio and video frame of the call (WebRTC encoded
// transforms). Frames pass in the clear while the talks are broadcast; from the cut on,
// senders seal each frame with AES-GCM under the key in force, keeping in the clear only
// the codec bytes the media server reads (VP8: 10 on key frames, 3 on others; Opus: 1),
// and append a trailer: IV (12 bytes), stream (4), frame number (4), key epoch (2),
// marker (2). All but the IV is authenticated with the frame. Receivers take each
// stream's frame numbers once, so a media server cannot play back what was said before
// (frames may arrive out of order within a window of the last REPLAY_WINDOW).
// Once this browser saw a summit's private phase it never sends a clear frame in that
// summit again, whatever the page is told later: that is kept in IndexedDB.

const MARKER = [0xe2, 0xee];
const IV_BYTES = 12;
const STAMP_BYTES = 4 + 4 + 2 + MARKER.length; // stream, frame number, epoch, marker
const TRAILER_BYTES = IV_BYTES + STAMP_BYTES;
const REPLAY_WINDOW = 128;
const REMEMBERED_STREAMS = 256;
const KEPT_KEYS = 3; // the key in force and the ones before it, for frames in flight
// Frames sent just before the cut are still on their way when a receiver learns of it:
// it takes them, until that stream's first sealed frame or for this long at most.
const CUT_GRACE_MS = 2000;

const keys = new Map(); // epoch → CryptoKey
let sendEpoch = null; // null: send in the clear (public part) or, once private, nothing
let privatePhase = false;
let privateSince = 0;
// Until this browser's memory of the summit is read, nothing is sent in the clear.
let oneWayKnown = null;
const counters = new Map(); // transform id → what it did
const streams = new Map(); // stream → { highest, seen: frame numbers in the window }
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
      undecryptable: 0, // sealed with a key we do not hold (yet, or any more)
      // Sealed for an epoch whose key we hold, yet it does not open: tampered with, or
      // sealed with another key for that epoch than ours (someone was handed a forged one).
      forged: 0,
      forgedEpoch: null, // of the last frame that did not open
      replayed: 0, // a frame number of that stream already taken, or too old to tell
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

function stampOf(stream, number, epoch) {
  const stamp = new Uint8Array(STAMP_BYTES);
  const view = new DataView(stamp.buffer);
  view.setUint32(0, stream);
  view.setUint32(4, number);
  view.setUint16(8, epoch);
  stamp.set(MARKER, 10);
  return stamp;
}

/** Whether a stream's frame number is new; remembers it only when `take`. */
function fresh(stream, number, take) {
  let state = streams.get(stream);
  if (!state) {
    if (!take) return true;
    state = { highest: number, seen: new Set([number]) };
    streams.set(stream, state);
    for (const old of [...streams.keys()].slice(0, -REMEMBERED_STREAMS)) streams.delete(old);
    return true;
  }
  if (number + REPLAY_WINDOW <= state.highest || state.seen.has(number)) return false;
  if (take) {
    state.seen.add(number);
    if (number > state.highest) {
      state.highest = number;
      for (const old of state.seen) if (old + REPLAY_WINDOW <= number) state.seen.delete(old);
    }
  }
  return true;
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

const ONE_WAY_STORE = "private-seen";

function oneWayDatabase() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open("summitry-e2ee", 1);
    request.onupgradeneeded = () => request.result.createObjectStore(ONE_WAY_STORE);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

async function oneWay(summitId, mark) {
  const db = await oneWayDatabase();
  try {
    return await new Promise((resolve, reject) => {
      const store = db.transaction(ONE_WAY_STORE, "readwrite").objectStore(ONE_WAY_STORE);
      const request = mark ? store.put(Date.now(), summitId) : store.get(summitId);
      request.onsuccess = () => resolve(mark || request.result !== undefined);
      request.onerror = () => reject(request.error);
    });
  } finally {
    db.close();
  }
}

let summitId = null;

function enterPrivate() {
  if (!privatePhase) privateSince = Date.now();
  privatePhase = true;
  if (summitId) oneWay(summitId, true).catch(() => {});
  self.postMessage({ type: "one-way" });
}

async function seal(frame, controller, options, c, stream) {
  if (oneWayKnown !== true) await oneWayKnown;
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
  const stamp = stampOf(stream.id, stream.next, epoch);
  stream.next = (stream.next + 1) >>> 0;
  const sealed = await crypto.subtle.encrypt(
    { name: "AES-GCM", iv, additionalData: joined(header, stamp) },
    key,
    data.subarray(header.length),
  );
  frame.data = joined(header, new Uint8Array(sealed), iv, stamp).buffer;
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
    const stamp = data.subarray(n - STAMP_BYTES);
    const view = new DataView(stamp.buffer, stamp.byteOffset, STAMP_BYTES);
    const [stream, number, epoch] = [view.getUint32(0), view.getUint32(4), view.getUint16(8)];
    const key = keys.get(epoch);
    const body = data.subarray(0, n - TRAILER_BYTES);
    const header = body.subarray(0, Math.min(clearBytes(options.kind, frame), body.length));
    const iv = data.subarray(n - TRAILER_BYTES, n - STAMP_BYTES);
    if (key && !fresh(stream, number, false)) {
      c.replayed += 1;
      return;
    }
    if (key) {
      try {
        const plain = await crypto.subtle.decrypt(
          { name: "AES-GCM", iv, additionalData: joined(header, stamp) },
          key,
          body.subarray(header.length),
        );
        // Decryption is asynchronous: the same frame may have been taken meanwhile.
        if (!fresh(stream, number, true)) {
          c.replayed += 1;
          return;
        }
        frame.data = joined(header, new Uint8Array(plain)).buffer;
        c.decrypted += 1;
        c.epoch = epoch;
        controller.enqueue(frame);
        return;
      } catch {
        if (privatePhase) {
          c.forged += 1;
          c.forgedEpoch = epoch;
          return;
        }
        /* public part: a clear frame that ends like a trailer by chance, below */
      }
    } else if (privatePhase) {
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
  // Each sender numbers its frames in a stream of its own, named at random.
  const stream = { id: crypto.getRandomValues(new Uint32Array(1))[0], next: 0 };
  readable
    .pipeThrough(
      new TransformStream({
        transform: (frame, controller) => step(frame, controller, options, c, stream),
      }),
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
    case "summit":
      summitId = data.id;
      oneWayKnown = oneWay(summitId, false)
        .then((seen) => seen && enterPrivate())
        .catch(() => {})
        .then(() => (oneWayKnown = true));
      break;
    case "mode": {
      if (data.private && !privatePhase) enterPrivate();
      const before = sendEpoch;
      sendEpoch = privatePhase ? data.sendEpoch : null;
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
