// End-to-end encryption of the private phase, in this browser. Our ECDH P-256 key pair
// is made here, kept in IndexedDB for the summit (so a reload is not a key change), and
// its private half never leaves; media keys are made in a member's browser, wrapped for
// each member's public key, and relayed by the server, which can open none of them.
// Every wrap is bound to a transcript: the summit, the epoch, the maker and each member
// it was made for (id, name, public key). The security code on the screen is derived
// from the transcript of the key this browser accepted, not from what the server lists
// now: read aloud and compared, it shows that everyone holds the same key, made by the
// same member for the same people, and that nobody (the server included) swapped a key.

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
  "frames-do-not-open":
    "What others send does not open with your key: someone holds another key than yours. Compare the security codes aloud.",
  "frames-misattributed":
    "The server shows someone's video or voice under another participant's name. Those frames are not played.",
};
// Frames that do not open, or that come under another participant's name, between two
// looks (every FRAME_CHECK_MS), that raise an alarm: an honest call has none.
const ALARMING_FRAMES = 10;
const FRAME_CHECK_MS = 2000;
const MAX_REPAIRS = 3; // new keys asked for in a row, for wraps that do not open

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
const PAIRS = "pairs"; // "summit participant" → our key pair
const PINS = "pins"; // summit → {participant id: [the public keys we accepted for them]}

/** One request on a store of this browser's keys. */
function onKeys(storeName, mode, request) {
  return new Promise((resolve, reject) => {
    const opening = indexedDB.open(KEY_DATABASE, 2);
    opening.onupgradeneeded = () => {
      for (const name of [PAIRS, PINS]) {
        if (!opening.result.objectStoreNames.contains(name)) opening.result.createObjectStore(name);
      }
    };
    opening.onerror = () => reject(opening.error);
    opening.onsuccess = () => {
      const db = opening.result;
      const done = request(db.transaction(storeName, mode).objectStore(storeName));
      done.onsuccess = () => resolve(done.result);
      done.onerror = () => reject(done.error);
      db.close(); // closes once the request is done
    };
  });
}

/** Our key pair for this summit, made once: IndexedDB keeps the private half as a
 * CryptoKey that nothing, not even this page, can extract. */
async function keptKeyPair(id) {
  const kept = await onKeys(PAIRS, "readonly", (store) => store.get(id)).catch(() => undefined);
  if (kept) return kept;
  const pair = await crypto.subtle.generateKey({ name: "ECDH", namedCurve: "P-256" }, false, ["deriveBits"]);
  const record = { publicKey: pair.publicKey, privateKey: pair.privateKey };
  await onKeys(PAIRS, "readwrite", (store) => store.put(record, id)).catch(() => {});
  return record;
}

/** What the audit trail records of a public key, grouped to be read aloud. */
export async function fingerprint(publicKey) {
  return (await sha256Hex(publicKey)).slice(0, 16).match(/.{4}/g).join(" ");
}

function byParticipant(a, b) {
  if (a.participant_id === b.participant_id) return 0;
  return a.participant_id < b.participant_id ? -1 : 1;
}

/** The transcript of a media key: what its maker bound into every wrap of it, in one
 * canonical text (members in participant id order). */
function transcriptOf(summitId, epoch, makerId, members) {
  const sorted = members
    .map(({ participant_id, name, public_key }) => ({ participant_id, name, public_key }))
    .sort(byParticipant);
  const maker = sorted.find((m) => m.participant_id === makerId) || null;
  const text = JSON.stringify([
    "summitry key transcript v1",
    summitId,
    epoch,
    makerId,
    maker?.public_key ?? null,
    sorted.map((m) => [m.participant_id, m.name, m.public_key]),
  ]);
  return { epoch, maker, members: sorted, text };
}

async function sha256Hex(text) {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", te.encode(text)));
  return [...digest].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** The security code of a transcript: the same on every screen that accepted the same key
 * from the same maker for the same people. */
async function securityCode(transcript) {
  const input = te.encode(`summitry security code v2\n${transcript.text}`);
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
    this.worker.postMessage({ type: "summit", id: summitId, me });
    this.asked = new Map();
    this.keyPair = null;
    this.publicKey = null;
    this.ring = new Map(); // epoch → media key (HKDF, not extractable: nobody is handed an older one)
    this.accepted = new Map(); // epoch → the transcript of the key we took for it
    this.view = null;
    this.phase = null;
    this.private = false;
    this.oneWay = false; // this browser saw the private phase of this summit: never clear again
    this.alarms = new Set(); // what the server did that it must not
    this.pins = null; // participant id → the public keys this browser accepted for them
    this.keyChanges = new Map(); // participant id → {name, fingerprint, accepted}
    this.problem = null; // what stops us from holding the key, if anything
    this.transforms = new WeakMap(); // sender or receiver → the id of its transform
    this.refreshing = null;
    this.again = false;
    this.nextTransform = 0;
    this.timer = null;
    this.frameTimer = null;
    this.framesSeen = {}; // counter → its total at the last look
    this.reported = new Set(); // epochs whose wrap we told the server does not open
    this.failuresInARow = 0;
  }

  get keyPairId() {
    return `${this.summitId} ${this.me}`;
  }

  /** Takes our key pair (made on the first visit) and joins the key exchange. */
  async start() {
    this.keyPair ||= await keptKeyPair(this.keyPairId);
    this.pins ||= new Map(
      Object.entries((await onKeys(PINS, "readonly", (store) => store.get(this.summitId)).catch(() => null)) || {}),
    );
    this.publicKey ||= toBase64Url(await crypto.subtle.exportKey("raw", this.keyPair.publicKey));
    await this.api.put("/e2ee/public-key", { public_key: this.publicKey });
    clearInterval(this.timer);
    this.timer = setInterval(() => this.refresh().catch(() => {}), 5000);
    clearInterval(this.frameTimer);
    this.frameTimer = setInterval(() => this.checkFrames().catch(() => {}), FRAME_CHECK_MS);
    await this.refresh();
  }

  stop() {
    clearInterval(this.timer);
    clearInterval(this.frameTimer);
    this.timer = this.frameTimer = null;
  }

  /** Frames sealed for an epoch whose key we hold that do not open with it mean that
   * someone holds another key for that epoch than we do: the server handed a forged key
   * to them or to us; that alarm ends once a newer key is in force and frames open
   * again. Frames sealed by someone else than the participant a tile shows mean the
   * server presents them under another's name; that alarm ends when it stops. */
  async checkFrames() {
    const received = (await this.counters()).filter((c) => c.side === "receive");
    const fresh = (counter) => {
      const total = received.reduce((n, c) => n + c[counter], 0);
      const since = total - (this.framesSeen[counter] ?? 0);
      this.framesSeen[counter] = total;
      return since;
    };
    const before = [...this.alarms].join();
    const forged = fresh("forged");
    const newestForged = Math.max(...received.map((c) => c.forgedEpoch ?? -1));
    if (forged >= ALARMING_FRAMES) this.alarms.add("frames-do-not-open");
    else if (forged === 0 && (this.view?.in_force ?? -1) > newestForged) {
      this.alarms.delete("frames-do-not-open");
    }
    const misattributed = fresh("misattributed");
    if (misattributed >= ALARMING_FRAMES) this.alarms.add("frames-misattributed");
    else if (misattributed === 0) this.alarms.delete("frames-misattributed");
    if ([...this.alarms].join() !== before) this.onChange();
  }

  // --- frames

  attachSender(sender, kind) {
    this.attach(sender, "send", kind);
  }

  attachReceiver(receiver, kind) {
    this.attach(receiver, "receive", kind);
  }

  /** The tile `receiver` plays shows `participantId`: only that participant's frames
   * may play there. */
  expect(receiver, participantId) {
    const id = this.transforms.get(receiver);
    if (id) this.worker.postMessage({ type: "expect", id, sender: participantId });
  }

  attach(endpoint, side, kind) {
    if (!SUPPORTED || this.transforms.has(endpoint)) return;
    const options = { side, kind, id: `${side}-${kind}-${(this.nextTransform += 1)}` };
    this.transforms.set(endpoint, options.id);
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
    const listed = [...view.members, ...view.key_changes];
    if (!listed.some((m) => m.participant_id === this.me && m.public_key === this.publicKey)) {
      await this.api.put("/e2ee/public-key", { public_key: this.publicKey }); // the server forgot us
      this.again = true;
      return;
    }
    await this.comparePins(view);
    let problem = null;
    for (const offered of view.keys_for_you) {
      if (this.ring.has(offered.epoch)) continue; // a key once taken for an epoch stays
      try {
        const transcript = transcriptOf(this.summitId, offered.epoch, offered.sender_id, offered.transcript);
        const mine = transcript.members.find((m) => m.participant_id === this.me);
        if (mine?.public_key !== this.publicKey) throw new Error("it was not made for this browser's key");
        if (!transcript.maker) throw new Error("its maker is not one of its members");
        const key = await this.unwrap(offered, transcript);
        transcript.code = await securityCode(transcript);
        this.ring.set(offered.epoch, key);
        this.accepted.set(offered.epoch, transcript);
        this.worker.postMessage({ type: "key", epoch: offered.epoch, key });
        await this.api.post("/e2ee/confirmations", { epoch: offered.epoch });
        this.failuresInARow = 0;
      } catch (error) {
        console.warn("summitry: cannot unwrap the media key", error);
        const asked = await this.reportFailure(offered.epoch);
        problem = `The key could not be opened (${error.message || error.name}): someone may have replaced a public key. ${asked ? "A new key was asked for." : "Compare the security codes aloud."}`;
      }
    }
    const mine = view.key_changes.find((c) => c.participant_id === this.me);
    this.problem = mine
      ? `Your browser has a new key (${await fingerprint(mine.public_key)}): you get the media key once a coordinator accepts it. Read them this fingerprint by another channel.`
      : problem;
    for (const epoch of this.ring.keys()) {
      if (epoch >= (view.in_force ?? 0) - 2) continue;
      this.ring.delete(epoch);
      this.accepted.delete(epoch);
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
    this.applyMode();
    this.onChange();
  }

  /** Tells the server that the wrap of `epoch` does not open here, so that it is taken
   * back and a new key made: once per epoch, and not again after MAX_REPAIRS in a row (a
   * server that keeps sending broken wraps would otherwise have everyone rekey forever).
   * Whether a new key was asked for. */
  async reportFailure(epoch) {
    if (this.reported.has(epoch) || this.failuresInARow >= MAX_REPAIRS) return false;
    this.reported.add(epoch);
    this.failuresInARow += 1;
    try {
      await this.api.post("/e2ee/failures", { epoch });
      return true;
    } catch (error) {
      if (error.status !== 409) throw error; // 409: taken back already, or a newer key came
      return false;
    }
  }

  /** Every key the server shows for a participant (listed, in a transcript, or waiting
   * for acceptance) is compared with the keys this browser saw for them before: the first
   * one, and those the server listed as accepted since. Another one is a warning on this
   * page, whatever the server says of it; once the server lists it as a member's, it is
   * kept, so a reload does not warn again. */
  async comparePins(view) {
    const waiting = new Set(view.key_changes.map((c) => `${c.participant_id} ${c.public_key}`));
    const shown = [...view.key_changes, ...view.members, ...view.keys_for_you.flatMap((k) => k.transcript)];
    let changed = false;
    for (const { participant_id: id, name, public_key: key } of shown) {
      if (id === this.me) continue;
      const known = this.pins.get(id);
      if (known?.includes(key)) continue;
      const accepted = !waiting.has(`${id} ${key}`);
      if (known) this.keyChanges.set(id, { name, fingerprint: await fingerprint(key), accepted });
      if (accepted) {
        this.pins.set(id, [...(known || []), key]);
        changed = true;
      }
    }
    if (changed) {
      const record = Object.fromEntries(this.pins);
      await onKeys(PINS, "readwrite", (store) => store.put(record, this.summitId)).catch(() => {});
    }
  }

  /** What the screen says of every alarm: the server's misdeeds, and changed keys. */
  alarmTexts() {
    const texts = [...this.alarms].map((alarm) => ALARMS[alarm]);
    for (const { name, fingerprint: print, accepted } of this.keyChanges.values()) {
      texts.push(
        accepted
          ? `${name}'s key is not the one this browser saw before (now ${print}); the server says a coordinator accepted it. Compare the security codes aloud.`
          : `${name}'s browser has a new key (${print}). ${name} gets no key until a coordinator accepts it: ask them by another channel whether they changed browser.`,
      );
    }
    return texts;
  }

  /** The names of the alarms raised, for the page's attributes. */
  get alarmNames() {
    return [...this.alarms, ...(this.keyChanges.size ? ["key-changed"] : [])];
  }

  async makeKey(view) {
    const key = await crypto.subtle.generateKey({ name: "AES-GCM", length: 256 }, true, ["encrypt", "decrypt"]);
    const epoch = view.next_epoch;
    const transcript = transcriptOf(this.summitId, epoch, this.me, view.members);
    const wraps = {};
    for (const member of transcript.members) {
      wraps[member.participant_id] = await this.wrap(key, transcript, member);
    }
    await this.api.post("/e2ee/epochs", { epoch, wraps });
  }

  /** The key that wraps a media key between its maker and one recipient: ECDH, then
   * HKDF bound to the key's transcript, so that a wrap opens only for the transcript its
   * maker saw. */
  async wrappingKey(otherPublicKey, transcript, recipient) {
    const other = await crypto.subtle.importKey(
      "raw",
      fromBase64Url(otherPublicKey),
      { name: "ECDH", namedCurve: "P-256" },
      false,
      [],
    );
    const shared = await crypto.subtle.deriveBits({ name: "ECDH", public: other }, this.keyPair.privateKey, 256);
    const material = await crypto.subtle.importKey("raw", shared, "HKDF", false, ["deriveKey"]);
    const bound = await sha256Hex(transcript.text);
    const info = te.encode(
      `summitry media key v2 ${transcript.epoch} ${transcript.maker.participant_id} ${recipient} ${bound}`,
    );
    const key = await crypto.subtle.deriveKey(
      { name: "HKDF", hash: "SHA-256", salt: te.encode(this.summitId), info },
      material,
      { name: "AES-GCM", length: 256 },
      false,
      ["wrapKey", "unwrapKey"],
    );
    return { key, info };
  }

  async wrap(mediaKey, transcript, recipient) {
    const { key, info } = await this.wrappingKey(recipient.public_key, transcript, recipient.participant_id);
    const iv = crypto.getRandomValues(new Uint8Array(12));
    const sealed = await crypto.subtle.wrapKey("raw", mediaKey, key, { name: "AES-GCM", iv, additionalData: info });
    const out = new Uint8Array(12 + sealed.byteLength);
    out.set(iv);
    out.set(new Uint8Array(sealed), 12);
    return toBase64Url(out);
  }

  async unwrap(offered, transcript) {
    const { key, info } = await this.wrappingKey(transcript.maker.public_key, transcript, this.me);
    const bytes = fromBase64Url(offered.wrapped);
    return crypto.subtle.unwrapKey(
      "raw",
      bytes.subarray(12),
      key,
      { name: "AES-GCM", iv: bytes.subarray(0, 12), additionalData: info },
      "HKDF", // each sender's frame key is derived from it (e2ee-worker.js)
      false,
      ["deriveKey"],
    );
  }

  // --- what the screen says

  /** The transcript of the key in force, if we took it: who it was made for, by whom. */
  get transcript() {
    return this.accepted.get(this.view?.in_force) || null;
  }

  /** The security code of the key in force, if we hold it. */
  get code() {
    return this.transcript?.code || null;
  }

  /** "on": private and we hold the key in force; "waiting": private, key not (yet) ours;
   * "public": frames go in the clear because the talks are broadcast; "unsupported". */
  get status() {
    if (!SUPPORTED) return "unsupported";
    if (!this.private) return "public";
    const epoch = this.view?.in_force;
    return epoch != null && this.ring.has(epoch) && this.view?.receives_private ? "on" : "waiting";
  }
}
