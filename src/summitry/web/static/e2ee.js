// End-to-end encryption of the private phase, in this browser. Our ECDH P-256 key pair
// is made here, kept in IndexedDB for the summit (so a reload is not a key change), and
// its private half never leaves; media keys are made in a member's
// browser, wrapped for each member's public key, and relayed by the server, which can
// open none of them. The security code on every screen is derived from all public keys:
// read aloud and compared, it shows that nobody (the server included) swapped a key.

const te = new TextEncoder();
const EMOJI = [
  ["🐶", "Dog"], ["🐱", "Cat"], ["🦁", "Lion"], ["🐎", "Horse"], ["🦄", "Unicorn"], ["🐷", "Pig"],
  ["🐘", "Elephant"], ["🐰", "Rabbit"], ["🐼", "Panda"], ["🐓", "Rooster"], ["🐧", "Penguin"],
  ["🐢", "Turtle"], ["🐟", "Fish"], ["🐙", "Octopus"], ["🦋", "Butterfly"], ["🌷", "Flower"],
  ["🌳", "Tree"], ["🌵", "Cactus"], ["🍄", "Mushroom"], ["🌏", "Globe"], ["🌙", "Moon"],
  ["☁️", "Cloud"], ["🔥", "Fire"], ["🍌", "Banana"], ["🍎", "Apple"], ["🍓", "Strawberry"],
  ["🌽", "Corn"], ["🍕", "Pizza"], ["🎂", "Cake"], ["❤️", "Heart"], ["😀", "Smiley"], ["🤖", "Robot"],
  ["🎩", "Hat"], ["👓", "Glasses"], ["🔧", "Spanner"], ["🎅", "Santa"], ["👍", "Thumbs"],
  ["☂️", "Umbrella"], ["⌛", "Hourglass"], ["⏰", "Clock"], ["🎁", "Gift"], ["💡", "Bulb"],
  ["📕", "Book"], ["✏️", "Pencil"], ["📎", "Paperclip"], ["✂️", "Scissors"], ["🔒", "Lock"],
  ["🔑", "Key"], ["🔨", "Hammer"], ["☎️", "Telephone"], ["🏁", "Flag"], ["🚂", "Train"],
  ["🚲", "Bicycle"], ["✈️", "Aeroplane"], ["🚀", "Rocket"], ["🏆", "Trophy"], ["⚽", "Ball"],
  ["🎸", "Guitar"], ["🎺", "Trumpet"], ["🔔", "Bell"], ["⚓", "Anchor"], ["🎧", "Headphones"],
  ["📁", "Folder"], ["📌", "Pin"],
];
const CODE_LENGTH = 6; // 36 bits

const script = typeof RTCRtpScriptTransform !== "undefined";
const streams = !script && typeof RTCRtpSender !== "undefined" && "createEncodedStreams" in RTCRtpSender.prototype;

const PUBLIC_PHASES = new Set(["scheduled", "lobby", "public"]);
const ALARMS = {
  "public-after-private":
    "The server announced the public part after the private part. Your browser keeps encrypting.",
};

/** What the screen says of an alarm raised by the key exchange. */
export function alarmText(alarm) {
  return ALARMS[alarm];
}

/** Whether this browser can encrypt frames at all; the PeerConnection options it needs. */
export const SUPPORTED = script || streams;
export const PC_OPTIONS = streams ? { encodedInsertableStreams: true } : {};

function toBase64Url(bytes) {
  let text = "";
  for (const byte of new Uint8Array(bytes)) text += String.fromCharCode(byte);
  return btoa(text).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

function fromBase64Url(text) {
  const plain = atob(text.replaceAll("-", "+").replaceAll("_", "/"));
  return Uint8Array.from(plain, (c) => c.charCodeAt(0));
}

const KEY_DATABASE = "summitry-keys";
const KEY_STORE = "pairs";

/** One request on this browser's kept key pairs. */
function onKeyPairs(mode, request) {
  return new Promise((resolve, reject) => {
    const opening = indexedDB.open(KEY_DATABASE, 1);
    opening.onupgradeneeded = () => opening.result.createObjectStore(KEY_STORE);
    opening.onerror = () => reject(opening.error);
    opening.onsuccess = () => {
      const db = opening.result;
      const done = request(db.transaction(KEY_STORE, mode).objectStore(KEY_STORE));
      done.onsuccess = () => resolve(done.result);
      done.onerror = () => reject(done.error);
      db.close(); // closes once the request is done
    };
  });
}

/** Our key pair for this summit, made once: IndexedDB keeps the private half as a
 * CryptoKey that nothing, not even this page, can extract. */
async function keptKeyPair(id) {
  const kept = await onKeyPairs("readonly", (store) => store.get(id)).catch(() => undefined);
  if (kept) return kept;
  const pair = await crypto.subtle.generateKey({ name: "ECDH", namedCurve: "P-256" }, false, ["deriveBits"]);
  const record = { publicKey: pair.publicKey, privateKey: pair.privateKey };
  await onKeyPairs("readwrite", (store) => store.put(record, id)).catch(() => {});
  return record;
}

/** The security code of a set of public keys: the same on every screen that saw the same keys. */
export async function securityCode(summitId, publicKeys) {
  const input = te.encode(["summitry security code v1", summitId, ...[...publicKeys].sort()].join("\n"));
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", input));
  let bits = 0n;
  for (const byte of digest.subarray(0, 8)) bits = (bits << 8n) | BigInt(byte);
  const code = [];
  for (let i = 0; i < CODE_LENGTH; i += 1) code.push(EMOJI[Number((bits >> BigInt(58 - 6 * i)) & 63n)]);
  return code.map(([emoji, name]) => ({ emoji, name }));
}

export class EndToEnd {
  /** `onChange()` is called whenever what the screen should say may have changed. */
  constructor(api, summitId, me, { onChange }) {
    this.api = api;
    this.summitId = summitId;
    this.me = me;
    this.onChange = onChange;
    this.worker = new Worker("/static/e2ee-worker.js");
    this.worker.addEventListener("message", ({ data }) => this.answered(data));
    this.worker.postMessage({ type: "summit", id: summitId });
    this.asked = new Map();
    this.keyPair = null;
    this.publicKey = null;
    this.ring = new Map(); // epoch → CryptoKey (not extractable: nobody is handed an older key)
    this.view = null;
    this.phase = null;
    this.private = false;
    this.oneWay = false; // this browser saw the private phase of this summit: never clear again
    this.alarms = new Set(); // what the server did that it must not
    this.code = null;
    this.problem = null; // what stops us from holding the key, if anything
    this.attached = new WeakSet();
    this.refreshing = null;
    this.again = false;
    this.nextTransform = 0;
    this.timer = null;
  }

  get keyPairId() {
    return `${this.summitId} ${this.me}`;
  }

  /** Takes our key pair (made on the first visit) and joins the key exchange. */
  async start() {
    this.keyPair ||= await keptKeyPair(this.keyPairId);
    this.publicKey ||= toBase64Url(await crypto.subtle.exportKey("raw", this.keyPair.publicKey));
    await this.api.put("/e2ee/public-key", { public_key: this.publicKey });
    clearInterval(this.timer);
    this.timer = setInterval(() => this.refresh().catch(() => {}), 5000);
    await this.refresh();
  }

  stop() {
    clearInterval(this.timer);
    this.timer = null;
  }

  /** Forgets every key, our key pair too (we were removed, or the summit is over). */
  forget() {
    this.stop();
    onKeyPairs("readwrite", (store) => store.delete(this.keyPairId)).catch(() => {});
    this.ring.clear();
    this.view = null;
    this.worker.postMessage({ type: "forget" });
  }

  // --- frames

  attachSender(sender, kind) {
    this.attach(sender, "send", kind);
  }

  attachReceiver(receiver, kind) {
    this.attach(receiver, "receive", kind);
  }

  attach(endpoint, side, kind) {
    if (!SUPPORTED || this.attached.has(endpoint)) return;
    this.attached.add(endpoint);
    const options = { side, kind, id: `${side}-${kind}-${(this.nextTransform += 1)}` };
    if (script) {
      endpoint.transform = new RTCRtpScriptTransform(this.worker, options);
    } else {
      const { readable, writable } = endpoint.createEncodedStreams();
      this.worker.postMessage({ type: "streams", readable, writable, options }, [readable, writable]);
    }
  }

  /** The phase changed: senders seal from the cut on, with no renegotiation. Once
   * private, always private: a server that announces a public part after the private
   * one is lying, and frames stay sealed. */
  setPhase(phase) {
    this.phase = phase;
    const seen = this.oneWay || this.private;
    if (seen && PUBLIC_PHASES.has(phase)) this.alarms.add("public-after-private");
    this.private = seen || phase === "private";
    this.applyMode();
    this.onChange();
  }

  applyMode() {
    const epoch = this.view?.in_force ?? null;
    const sendEpoch = epoch !== null && this.ring.has(epoch) ? epoch : null;
    this.worker.postMessage({ type: "mode", private: this.private, sendEpoch });
  }

  /** What each transform did: frames sealed, opened, dropped; the first sealed frame's time. */
  counters() {
    const ask = Math.random();
    return new Promise((resolve) => {
      this.asked.set(ask, resolve);
      this.worker.postMessage({ type: "stats", ask });
    });
  }

  answered(data) {
    if (data.type === "one-way") {
      this.oneWay = true;
      this.setPhase(this.phase);
      return;
    }
    const resolve = this.asked.get(data.ask);
    this.asked.delete(data.ask);
    resolve?.(data.counters);
  }

  // --- the key exchange

  /** Reads the key exchange and does our part; runs coalesce. */
  refresh() {
    if (this.refreshing) {
      this.again = true;
      return this.refreshing;
    }
    this.refreshing = (async () => {
      try {
        do {
          this.again = false;
          await this.step();
        } while (this.again);
      } finally {
        this.refreshing = null;
      }
    })();
    return this.refreshing;
  }

  async step() {
    if (!this.publicKey) return;
    const view = await this.api.get("/e2ee");
    this.view = view;
    if (!view.members.some((m) => m.participant_id === this.me && m.public_key === this.publicKey)) {
      await this.api.put("/e2ee/public-key", { public_key: this.publicKey }); // the server forgot us
      this.again = true;
      return;
    }
    const keysOf = new Map(view.members.map((m) => [m.participant_id, m.public_key]));
    let problem = null;
    for (const offered of view.keys_for_you) {
      if (this.ring.has(offered.epoch)) continue;
      const senderKey = keysOf.get(offered.sender_id);
      try {
        if (!senderKey) throw new Error("its sender left");
        const key = await this.unwrap(offered, senderKey);
        this.ring.set(offered.epoch, key);
        this.worker.postMessage({ type: "key", epoch: offered.epoch, key });
        await this.api.post("/e2ee/confirmations", { epoch: offered.epoch });
      } catch (error) {
        problem = `The key could not be opened (${error.message || error.name}): someone may have replaced a public key.`;
        console.warn("summitry: cannot unwrap the media key", error);
      }
    }
    this.problem = problem;
    for (const epoch of this.ring.keys()) {
      if (epoch < (view.in_force ?? 0) - 2) this.ring.delete(epoch);
    }
    if (view.make_key) {
      try {
        await this.makeKey(view);
      } catch (error) {
        // 409: someone made it first; 403: the server named someone else meanwhile
        if (![403, 409].includes(error.status)) throw error;
      }
      this.again = true;
    }
    this.code = await securityCode(this.summitId, view.members.map((m) => m.public_key));
    this.applyMode();
    this.onChange();
  }

  async makeKey(view) {
    const key = await crypto.subtle.generateKey({ name: "AES-GCM", length: 256 }, true, ["encrypt", "decrypt"]);
    const epoch = view.next_epoch;
    const wraps = {};
    for (const member of view.members) {
      wraps[member.participant_id] = await this.wrap(key, epoch, member.participant_id, member.public_key);
    }
    await this.api.post("/e2ee/epochs", { epoch, wraps });
  }

  /** The key that wraps media keys between `sender` and `recipient`: ECDH, then HKDF. */
  async wrappingKey(otherPublicKey, epoch, sender, recipient) {
    const other = await crypto.subtle.importKey(
      "raw",
      fromBase64Url(otherPublicKey),
      { name: "ECDH", namedCurve: "P-256" },
      false,
      [],
    );
    const shared = await crypto.subtle.deriveBits({ name: "ECDH", public: other }, this.keyPair.privateKey, 256);
    const material = await crypto.subtle.importKey("raw", shared, "HKDF", false, ["deriveKey"]);
    const info = te.encode(`summitry media key v1 ${epoch} ${sender} ${recipient}`);
    const key = await crypto.subtle.deriveKey(
      { name: "HKDF", hash: "SHA-256", salt: te.encode(this.summitId), info },
      material,
      { name: "AES-GCM", length: 256 },
      false,
      ["wrapKey", "unwrapKey"],
    );
    return { key, info };
  }

  async wrap(mediaKey, epoch, recipient, recipientPublicKey) {
    const { key, info } = await this.wrappingKey(recipientPublicKey, epoch, this.me, recipient);
    const iv = crypto.getRandomValues(new Uint8Array(12));
    const sealed = await crypto.subtle.wrapKey("raw", mediaKey, key, { name: "AES-GCM", iv, additionalData: info });
    const out = new Uint8Array(12 + sealed.byteLength);
    out.set(iv);
    out.set(new Uint8Array(sealed), 12);
    return toBase64Url(out);
  }

  async unwrap(offered, senderPublicKey) {
    const { key, info } = await this.wrappingKey(senderPublicKey, offered.epoch, offered.sender_id, this.me);
    const bytes = fromBase64Url(offered.wrapped);
    return crypto.subtle.unwrapKey(
      "raw",
      bytes.subarray(12),
      key,
      { name: "AES-GCM", iv: bytes.subarray(0, 12), additionalData: info },
      { name: "AES-GCM" },
      false,
      ["encrypt", "decrypt"],
    );
  }

  // --- what the screen says

  /** "on": private and we hold the key in force; "waiting": private, key not (yet) ours;
   * "public": frames go in the clear because the talks are broadcast; "unsupported". */
  get status() {
    if (!SUPPORTED) return "unsupported";
    if (!this.private) return "public";
    const epoch = this.view?.in_force;
    return epoch != null && this.ring.has(epoch) && this.view?.receives_private ? "on" : "waiting";
  }
}
