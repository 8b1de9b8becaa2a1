// Encrypts and decrypts every encoded audio and video frame of the call (WebRTC encoded
// transforms). Frames pass in the clear while the talks are broadcast; from the cut on,
// senders seal each frame with AES-GCM, keeping in the clear only the codec bytes the
// media server reads (VP8: 10 on key frames, 3 on others; Opus: 1), and append a trailer:
// IV (12 bytes), sender (8), stream (4), frame number (4), key epoch (2), marker (2). All
// but the IV is authenticated with the frame.
// Each sender seals with a key of its own, derived from the epoch's media key and its
// participant id (HKDF, as SFrame derives per-sender keys), and a receiver opens a tile's
// frames only with the key of the participant that tile shows: the server cannot present
// one member's frames under another's name. Receivers take each stream's frame numbers
// once, so a media server cannot play back what was said before (frames may arrive out
// of order within a window of the last REPLAY_WINDOW); the newest number of each stream
// is kept in IndexedDB, so a reload does not open that window again.
// Once this browser saw a summit's private phase it never sends a clear frame in that
// summit again, whatever the page is told later: that is kept in IndexedDB too.

const te = new TextEncoder();
const MARKER = [0xe2, 0xee];
const IV_BYTES = 12;
const SENDER_BYTES = 8; // a participant id: 16 hex digits
const STAMP_BYTES = SENDER_BYTES + 4 + 4 + 2 + MARKER.length; // sender, stream, number, epoch, marker
const TRAILER_BYTES = IV_BYTES + STAMP_BYTES;
const REPLAY_WINDOW = 128;
const REMEMBERED_STREAMS = 256;
const KEPT_KEYS = 3; // the key in force and the ones before it, for frames in flight
// Frames sent just before the cut are still on their way when a receiver learns of it:
// it takes them, until that stream's first sealed frame or for this long at most.
const CUT_GRACE_MS = 2000;
const HEARD_SAVE_MS = 1000;

const keys = new Map(); // epoch → the epoch's media key (HKDF, not extractable)
const senderKeys = new Map(); // "epoch sender" → Promise of that sender's AES-GCM key
let sendEpoch = null; // null: send in the clear (public part) or, once private, nothing
let privatePhase = false;
let privateSince = 0;
let summitId = null;
let me = null; // our participant id: whose key we seal with
// Until this browser's memory of the summit is read, nothing is sent in the clear and
// nothing sealed is opened.
let oneWayKnown = null;
let heardKnown = null;
const counters = new Map(); // transform id → what it did
const expected = new Map(); // receive transform id → the participant its tile shows
// "sender stream" → { highest, seen: numbers in the window, floor: taken before a reload }
const streams = new Map();
let heardChanged = false;
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
      misattributed: 0, // sealed by another participant than the one this tile shows
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

function senderBytes(participantId) {
  const bytes = new Uint8Array(SENDER_BYTES);
  for (let i = 0; i < SENDER_BYTES; i += 1) bytes[i] = parseInt(participantId.slice(2 * i, 2 * i + 2), 16);
  return bytes;
}

function senderOf(bytes) {
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

function stampOf(sender, stream, number, epoch) {
  const stamp = new Uint8Array(STAMP_BYTES);
  stamp.set(senderBytes(sender));
  const view = new DataView(stamp.buffer);
  view.setUint32(SENDER_BYTES, stream);
  view.setUint32(SENDER_BYTES + 4, number);
  view.setUint16(SENDER_BYTES + 8, epoch);
  stamp.set(MARKER, SENDER_BYTES + 10);
  return stamp;
}

/** The key `sender` seals its frames of `epoch` with, derived once; null without the
 * epoch's media key. */
function senderKey(epoch, sender) {
  const id = `${epoch} ${sender}`;
  if (!senderKeys.has(id)) {
    const base = keys.get(epoch);
    if (!base) return null;
    const info = te.encode(`summitry sender key v1 ${epoch} ${sender}`);
    senderKeys.set(
      id,
      crypto.subtle.deriveKey(
        { name: "HKDF", hash: "SHA-256", salt: te.encode(summitId), info },
        base,
        { name: "AES-GCM", length: 256 },
        false,
        ["encrypt", "decrypt"],
      ),
    );
  }
  return senderKeys.get(id);
}

/** Whether a stream's frame number is new; remembers it only when `take`. */
function fresh(stream, number, take) {
  let state = streams.get(stream);
  if (!state) {
    if (!take) return true;
    state = { highest: number, seen: new Set([number]), floor: -1 };
    streams.set(stream, state);
    for (const old of [...streams.keys()].slice(0, -REMEMBERED_STREAMS)) streams.delete(old);
    heardChanged = true;
    return true;
  }
  if (number <= state.floor || number + REPLAY_WINDOW <= state.highest || state.seen.has(number)) {
    return false;
  }
  if (take) {
    state.seen.add(number);
    if (number > state.highest) {
      state.highest = number;
      heardChanged = true;
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
const HEARD_STORE = "heard"; // summit → [stream, newest frame number] of every stream taken

function e2eeDatabase() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open("summitry-e2ee", 2);
    request.onupgradeneeded = () => {
      for (const store of [ONE_WAY_STORE, HEARD_STORE]) {
        if (!request.result.objectStoreNames.contains(store)) request.result.createObjectStore(store);
      }
    };
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

/** One request on a store of this browser's memory of summits. */
async function remembered(storeName, request) {
  const db = await e2eeDatabase();
  try {
    return await new Promise((resolve, reject) => {
      const done = request(db.transaction(storeName, "readwrite").objectStore(storeName));
      done.onsuccess = () => resolve(done.result);
      done.onerror = () => reject(done.error);
    });
  } finally {
    db.close();
  }
}

async function oneWay(id, mark) {
  if (mark) return remembered(ONE_WAY_STORE, (store) => store.put(Date.now(), id)).then(() => true);
  return (await remembered(ONE_WAY_STORE, (store) => store.get(id))) !== undefined;
}

/** What this browser took before a reload: those frame numbers stay taken. */
async function restoreHeard(id) {
  const saved = (await remembered(HEARD_STORE, (store) => store.get(id))) || [];
  for (const [stream, highest] of saved) {
    if (!streams.has(stream)) streams.set(stream, { highest, seen: new Set(), floor: highest });
  }
}

function saveHeard() {
  if (!heardChanged || !summitId) return;
  heardChanged = false;
  const marks = [...streams].map(([stream, state]) => [stream, state.highest]);
  remembered(HEARD_STORE, (store) => store.put(marks, summitId)).catch(() => {});
}

setInterval(saveHeard, HEARD_SAVE_MS);

function enterPrivate() {
  if (!privatePhase) privateSince = Date.now();
  privatePhase = true;
  if (summitId) oneWay(summitId, true).catch(() => {});
  self.postMessage({ type: "one-way" });
}

async function seal(frame, controller, options, c, stream) {
  if (oneWayKnown !== true) await oneWayKnown;
  const epoch = sendEpoch;
  const key = epoch === null || me === null ? null : senderKey(epoch, me);
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
  const stamp = stampOf(me, stream.id, stream.next, epoch);
  stream.next = (stream.next + 1) >>> 0;
  const sealed = await crypto.subtle.encrypt(
    { name: "AES-GCM", iv, additionalData: joined(header, stamp) },
    await key,
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
  if (heardKnown !== true) await heardKnown;
  const data = new Uint8Array(frame.data);
  const n = data.length;
  const marked = n > TRAILER_BYTES && data[n - 2] === MARKER[0] && data[n - 1] === MARKER[1];
  if (marked) {
    const stamp = data.subarray(n - STAMP_BYTES);
    const view = new DataView(stamp.buffer, stamp.byteOffset, STAMP_BYTES);
    const sender = senderOf(stamp.subarray(0, SENDER_BYTES));
    const stream = `${sender} ${view.getUint32(SENDER_BYTES)}`;
    const number = view.getUint32(SENDER_BYTES + 4);
    const epoch = view.getUint16(SENDER_BYTES + 8);
    const shown = expected.get(options.id);
    if (privatePhase && shown && sender !== shown) {
      c.misattributed += 1; // presented under someone else's name: never played
      return;
    }
    const key = senderKey(epoch, sender);
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
          await key,
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
      for (const id of senderKeys.keys()) if (!keys.has(Number(id.split(" ")[0]))) senderKeys.delete(id);
      break;
    case "summit":
      summitId = data.id;
      me = data.me;
      oneWayKnown = oneWay(summitId, false)
        .then((seen) => seen && enterPrivate())
        .catch(() => {})
        .then(() => (oneWayKnown = true));
      heardKnown = restoreHeard(summitId)
        .catch(() => {})
        .then(() => (heardKnown = true));
      break;
    case "expect": // the tile this receiver plays shows that participant
      expected.set(data.id, data.sender);
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
      senderKeys.clear();
      sendEpoch = null;
      if (summitId) remembered(HEARD_STORE, (store) => store.delete(summitId)).catch(() => {});
      break;
    case "stats":
      self.postMessage({ type: "stats", ask: data.ask, counters: [...counters.values()] });
      break;
  }
};
