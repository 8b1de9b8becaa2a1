// The room page: lobby, call and (for coordinators) the console, kept in step with the
// summit's event stream. The grant comes from the invitation link's fragment.

import { Api, ApiError } from "./api.js";
import { CoordinatorConsole } from "./console.js";
import { EndToEnd, SUPPORTED as E2EE_SUPPORTED } from "./e2ee.js";
import {
  LevelMeter,
  Publisher,
  QUALITIES,
  RoomSubscription,
  listDevices,
  openCamera,
} from "./media.js";
import { $, PHASES, ROLES, Tile, clockTime, h, icon, initials, wallTime } from "./ui.js";

const summitId = decodeURIComponent(location.pathname.split("/").filter(Boolean)[1] || "");
const GRANT_KEY = `summitry.grant.${summitId}`;
const PREFS_KEY = "summitry.devices";
const OVER = new Set(["ended", "cancelled"]);

const state = {
  summitId,
  stage: "loading", // loading | fatal | lobby | joining | waiting | denied | left | over | call
  me: null,
  summit: null,
  people: new Map(),
  feeds: [],
  speaking: new Set(),
  connection: "connecting", // connecting | online | reconnecting
  local: { audio: true, video: true },
  // connection states of our two PeerConnections, and how often media was re-established
  media: { publish: "none", subscribe: "none", restarts: 0 },
};

let api = null;
let consoleView = null;
let localStream = null;
let previewMeter = null;
let publisher = null;
let subscription = null;
let e2ee = null;
let localTile = null;
const remoteTiles = new Map(); // participant id → Tile
const jobs = new Map(); // name → running retry job

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// --- the grant -----------------------------------------------------------------------

function takeGrant() {
  const fromLink = location.hash.length > 1 ? decodeURIComponent(location.hash.slice(1)) : "";
  if (fromLink) {
    try {
      sessionStorage.setItem(GRANT_KEY, fromLink);
    } catch {
      /* private mode: the grant lives as long as the page */
    }
    history.replaceState(null, "", location.pathname + location.search);
    return fromLink;
  }
  try {
    return sessionStorage.getItem(GRANT_KEY) || "";
  } catch {
    return "";
  }
}

function prefs() {
  try {
    return JSON.parse(localStorage.getItem(PREFS_KEY) || "{}");
  } catch {
    return {};
  }
}

function savePrefs(changes) {
  try {
    localStorage.setItem(PREFS_KEY, JSON.stringify({ ...prefs(), ...changes }));
  } catch {
    /* not remembered, still used */
  }
}

// --- rendering -----------------------------------------------------------------------

function show(screen) {
  for (const el of document.querySelectorAll(".screen")) el.hidden = el.id !== `screen-${screen}`;
  document.body.dataset.screen = screen;
}

function fatal(title, text) {
  state.stage = "fatal";
  $("#fatal-title").textContent = title;
  $("#fatal-text").textContent = text;
  show("fatal");
  stopEverything();
}

function sideOf(sideId) {
  const sides = state.summit?.sides || [];
  const index = sides.findIndex((s) => s.id === sideId);
  return { side: sides[index], index: Math.max(index, 0) };
}

function renderHeader() {
  const summit = state.summit;
  if (!summit) return;
  document.title = `${summit.title} — summitry`;
  $("#summit-title").textContent = summit.title;
  const banner = $("#phase-banner");
  const phase = PHASES[summit.phase] || { label: summit.phase, detail: "" };
  banner.dataset.phase = summit.phase;
  $("#phase-label").textContent = phase.label.toUpperCase();
  let detail = phase.detail;
  if (summit.phase === "public" && summit.public_ends_at) {
    const left = Math.max(0, new Date(summit.public_ends_at) - Date.now());
    const minutes = Math.floor(left / 60000);
    const seconds = Math.floor((left % 60000) / 1000);
    detail += ` · private in ${minutes}:${String(seconds).padStart(2, "0")}`;
  }
  $("#phase-detail").textContent = detail;
}

function renderConnection() {
  const el = $("#connection");
  el.dataset.state = state.connection;
  el.textContent =
    state.connection === "reconnecting"
      ? "Connection lost — reconnecting…"
      : state.connection === "connecting"
        ? "Connecting…"
        : "";
}

function renderLobby() {
  const { summit, me } = state;
  if (!summit || !me) return;
  $("#lobby-title").textContent = summit.title;
  $("#lobby-agenda").textContent = summit.agenda || "";
  const times = $("#lobby-times");
  const rows = summit.sides.map((side) => {
    const { when, offset } = wallTime(summit.starts_at, side.time_zone);
    return [
      h("dt", {}, h("span.side-dot", { data: { side: String(summit.sides.indexOf(side)) } }), side.name),
      h(
        "dd",
        {},
        h("span.when", { text: when }),
        h("span.zone", { text: `${side.time_zone.replace(/_/g, " ")} · ${offset}` }),
        side.offset_warning ? h("span.warning", { text: side.offset_warning }) : null,
      ),
    ];
  });
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  if (zone && !summit.sides.some((s) => s.time_zone === zone)) {
    const { when, offset } = wallTime(summit.starts_at, zone);
    rows.push([
      h("dt", { text: "Your time" }),
      h("dd", {}, h("span.when", { text: when }), h("span.zone", { text: `${zone} · ${offset}` })),
    ]);
  }
  times.replaceChildren(...rows.flat());
  const { side, index } = sideOf(me.side_id);
  $("#lobby-you").replaceChildren(
    h("span.side-dot", { data: { side: String(index) } }),
    "You join as ",
    h("strong", { text: me.participant.name }),
    ` · ${ROLES[me.role] || me.role} · ${side?.name || ""}`,
  );
  $("#lobby-eyebrow").textContent =
    summit.phase === "scheduled"
      ? `Secure video summit · lobby opens before ${clockTime(summit.starts_at, zone)}`
      : "Secure video summit";
  const box = $("#lobby-state");
  box.dataset.state = state.stage;
  const join = $("#join");
  join.textContent = state.stage === "left" ? "Join again" : "Join the summit";
  join.disabled = state.stage === "joining" || OVER.has(summit.phase);
  if (OVER.has(summit.phase)) {
    lobbyError(`The summit is ${summit.phase}.`);
  }
  const observer = me.role === "observer";
  $("#preview-note").textContent = observer
    ? "You join as an observer: you will see and hear the talks, and nobody will see or hear you."
    : "";
  $("#screen-lobby").classList.toggle("observer", observer);
}

function lobbyError(text) {
  $("#lobby-error").textContent = text || "";
}

const SECURITY_TEXT = {
  on: "End-to-end encrypted",
  public: "Not end-to-end encrypted: the talks are broadcast",
  waiting: "Not end-to-end encrypted yet: waiting for the key",
  unsupported: "Not end-to-end encrypted: this browser cannot encrypt",
};

/** The lock, what it means now, and the security code everyone compares aloud. */
function renderSecurity() {
  const el = $("#e2ee");
  const inCall = state.stage === "call" && e2ee;
  el.hidden = !inCall;
  if (!inCall) return;
  const status = e2ee.status;
  el.dataset.status = status;
  $("#e2ee-text").textContent = SECURITY_TEXT[status];
  const code = e2ee.code || [];
  const codeEl = $("#e2ee-code");
  codeEl.replaceChildren(...code.map((c) => h("span.code-emoji", { text: c.emoji, title: c.name })));
  codeEl.dataset.code = code.map((c) => c.name).join(" ");
  const members = e2ee.view?.members.length || 0;
  el.title = `The code is made from the ${members} public ${members === 1 ? "key" : "keys"} in the call. Read it aloud: every screen must show the same.`;
  $("#e2ee-detail").textContent = e2ee.problem
    ? e2ee.problem
    : status === "waiting"
      ? "You will see and hear the private talks once your browser holds the key."
      : code.length
        ? `Security code: ${code.map((c) => c.name).join(" ")}`
        : "";
}

function renderAll() {
  renderHeader();
  renderSecurity();
  renderConnection();
  if (state.stage !== "call" && state.stage !== "fatal" && state.stage !== "loading") renderLobby();
  renderTiles();
  consoleView?.render();
}

// --- state from the server -----------------------------------------------------------

function setSummit(view) {
  // Answers may arrive out of order: never go back to an older version of the summit.
  if (state.summit && view.version < state.summit.version) return;
  const before = state.summit?.phase;
  state.summit = view;
  // Senders seal before the screen says "private": nothing said after it goes out clear.
  if (before !== view.phase) e2ee?.setPrivate(view.phase === "private");
  renderAll();
  if (before !== view.phase) onPhase(view.phase);
}

function updatePerson(person) {
  state.people.set(person.id, person);
  if (state.me && person.id === state.me.participant.id) {
    state.me.participant = { ...state.me.participant, ...person };
    onMyPresence(person.presence);
  }
  renderAll();
}

async function loadAll() {
  const [me, summit, people] = await Promise.all([api.me(), api.summit(), api.participants()]);
  state.me = me;
  state.people = new Map(people.map((p) => [p.id, p]));
  setSummit(summit);
}

let resyncTimer = null;
let resyncMedia = false;
/**
 * Re-reads the summit and roster (after a phase change or a stale version); after the
 * event stream came back (`media`), also checks that our media still exist.
 */
function resync({ media = false } = {}) {
  resyncMedia ||= media;
  clearTimeout(resyncTimer);
  resyncTimer = setTimeout(() => {
    keep(
      "resync",
      async () => {
        await loadAll();
        onMyPresence(state.me.participant.presence);
        if (resyncMedia && state.stage === "call") await checkMedia();
        resyncMedia = false;
      },
      { always: true },
    );
  }, 50);
}

function onPhase(phase) {
  if (OVER.has(phase)) e2ee?.forget();
  if (OVER.has(phase) && state.stage === "call") {
    stopMedia({ tellServer: true });
    state.stage = "over";
    lobbyError("");
    show("lobby");
    renderAll();
  }
}

function onMyPresence(presence) {
  const stage = state.stage;
  if (presence === "removed") {
    fatal("You were removed from this summit", "Your invitation link no longer works.");
  } else if (presence === "admitted" && ["waiting", "denied", "joining"].includes(stage)) {
    enterCall();
  } else if (presence === "waiting" && ["joining", "lobby", "denied"].includes(stage)) {
    state.stage = "waiting";
  } else if (presence === "denied" && stage !== "denied") {
    if (stage === "call") stopMedia({ tellServer: false });
    state.stage = "denied";
    show("lobby");
  } else if (presence === "left" && stage === "call") {
    // left from another tab or dropped by the server
    stopMedia({ tellServer: false });
    state.stage = "left";
    show("lobby");
  }
  renderAll();
}

// --- the event stream ----------------------------------------------------------------

let source = null;
let streamDelay = 1000;

function streamLost() {
  state.connection = "reconnecting";
  renderConnection();
}

function reopenEvents() {
  const delay = streamDelay;
  streamDelay = Math.min(streamDelay * 2, 10000);
  setTimeout(() => {
    if (state.stage !== "fatal") openEvents();
  }, delay);
}

// EventSource sends no headers, so the stream opens with a ticket in its URL, good for a
// minute; the invitation's grant never goes into a URL.
async function openEvents() {
  source?.close();
  source = null;
  let ticket;
  try {
    ({ ticket } = await api.eventsTicket());
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      fatal("Your invitation no longer works", error.message);
    } else {
      streamLost();
      reopenEvents();
    }
    return;
  }
  if (state.stage === "fatal" || source) return; // stopped, or opened meanwhile
  const stream = new EventSource(api.eventsUrl(ticket));
  source = stream;
  stream.addEventListener("open", () => {
    streamDelay = 1000;
    const missed = state.connection === "reconnecting"; // events may have passed us by
    state.connection = "online";
    renderConnection();
    if (missed) resync({ media: true });
  });
  stream.addEventListener("error", () => {
    streamLost();
    // The server answered with an error (it may be restarting, or the ticket lapsed
    // while the browser reconnected on its own): a new ticket, a new stream.
    if (stream.readyState === EventSource.CLOSED && source === stream) reopenEvents();
  });
  const on = (type, handler) =>
    stream.addEventListener(type, (event) => {
      let data;
      try {
        data = JSON.parse(event.data);
      } catch {
        return;
      }
      handler(data);
    });
  on("phase", (event) => {
    if (!state.summit || event.version < state.summit.version) return;
    const sides = state.summit.sides.map((s) => ({ ...s, consented: event.consents.includes(s.id) }));
    const changed = event.version !== state.summit.version;
    setSummit({ ...state.summit, phase: event.phase, version: event.version, sides });
    if (changed) resync(); // allowed actions and the public part's times
  });
  on("roster", (event) =>
    updatePerson({
      id: event.participant,
      side_id: event.side,
      name: event.name,
      role: event.role,
      presence: event.presence,
    }),
  );
  on("feeds", () => syncFeeds());
  on("e2ee", () => {
    if (state.stage === "call") keep("e2ee", () => e2ee.refresh());
  });
  on("speaking", (event) => {
    if (event.speaking) state.speaking.add(event.participant);
    else state.speaking.delete(event.participant);
    renderTiles();
  });
  on("media_state", (event) => {
    state.feeds = state.feeds.map((f) =>
      f.participant_id === event.participant ? { ...f, audio: event.audio, video: event.video } : f,
    );
    renderTiles();
  });
  on("media_reset", () => {
    if (state.stage === "call") restartMedia("the media server restarted");
  });
}

// --- retrying ------------------------------------------------------------------------

/**
 * Runs `work` until it succeeds, with backoff, while it still makes sense (in the call,
 * unless `always`). Calls made while it runs make it run once more afterwards.
 */
function keep(name, work, { always = false } = {}) {
  const running = jobs.get(name);
  if (running) {
    running.again = true;
    return running.promise;
  }
  const job = { again: false };
  job.promise = (async () => {
    let delay = 400;
    try {
      while (always ? state.stage !== "fatal" : state.stage === "call") {
        job.again = false;
        try {
          await work();
          if (!job.again) return;
          continue;
        } catch (error) {
          if (error instanceof ApiError && error.status === 401) {
            fatal("Your invitation no longer works", error.message);
            return;
          }
          if (error instanceof ApiError && [403, 409].includes(error.status)) {
            notice(error.message);
            if (!always) return; // not allowed in the call now; the roster or phase says why
          } else {
            notice(`Reconnecting… (${error.message || error})`);
          }
          console.warn(`summitry: ${name} failed`, error);
        }
        await sleep(delay);
        delay = Math.min(delay * 2, 8000);
      }
    } finally {
      jobs.delete(name);
    }
  })();
  jobs.set(name, job);
  return job.promise;
}

let noticeTimer = null;
function notice(text, sticky = false) {
  const el = $("#call-notice");
  el.textContent = text;
  el.classList.toggle("shown", Boolean(text));
  clearTimeout(noticeTimer);
  if (text && !sticky) noticeTimer = setTimeout(() => notice(""), 6000);
}

// --- local camera and microphone -----------------------------------------------------

function canPublish() {
  return state.me && state.me.role !== "observer";
}

async function startPreview() {
  if (!canPublish()) return;
  const p = prefs();
  try {
    localStream = await openCamera({ cameraId: p.camera, micId: p.mic, quality: p.quality });
  } catch (error) {
    try {
      localStream = await openCamera({ quality: p.quality }); // the remembered device is gone
    } catch {
      lobbyError(`Camera or microphone unavailable: ${error.message}. Allow access and reload.`);
      localStream = new MediaStream();
    }
  }
  applyLocalState();
  $("#preview").srcObject = localStream;
  watchPreviewLevel();
  await fillDevices();
}

function watchPreviewLevel() {
  previewMeter?.stop();
  previewMeter = null;
  const track = localStream?.getAudioTracks()[0];
  if (!track) return;
  try {
    previewMeter = new LevelMeter(track);
  } catch {
    return;
  }
  const fill = $("#preview-meter");
  const meter = previewMeter;
  const tick = setInterval(() => {
    if (previewMeter !== meter) {
      clearInterval(tick);
      return;
    }
    const level = state.local.audio ? Math.min(1, meter.level * 6) : 0;
    fill.style.transform = `scaleX(${level.toFixed(3)})`;
    localTile?.setSpeaking(level > 0.25);
  }, 100);
}

async function fillDevices() {
  let devices;
  try {
    devices = await listDevices();
  } catch {
    return;
  }
  const current = (kind) => localStream?.getTracks().find((t) => t.kind === kind)?.getSettings().deviceId;
  const fill = (select, list, kind, fallback) => {
    select.replaceChildren(
      ...list.map((d, i) =>
        h("option", { value: d.deviceId, text: d.label || `${fallback} ${i + 1}` }),
      ),
    );
    const id = current(kind);
    if (id) select.value = id;
    select.disabled = list.length === 0;
  };
  fill($("#camera-select"), devices.cameras, "video", "Camera");
  fill($("#mic-select"), devices.mics, "audio", "Microphone");
  const quality = $("#quality-select");
  quality.replaceChildren(
    ...Object.entries(QUALITIES).map(([key, q]) => h("option", { value: key, text: q.label })),
  );
  quality.value = prefs().quality in QUALITIES ? prefs().quality : "hd";
}

/** Swaps the track of one kind for a new one from the chosen device. */
async function changeDevice(kind) {
  const p = prefs();
  const video = kind === "video";
  let fresh;
  try {
    fresh = await openCamera({
      cameraId: p.camera,
      micId: p.mic,
      quality: p.quality,
      audio: !video,
      video,
    });
  } catch (error) {
    lobbyError(`That device cannot be used: ${error.message}`);
    notice(`That device cannot be used: ${error.message}`);
    return;
  }
  const track = fresh.getTracks()[0];
  const old = localStream.getTracks().find((t) => t.kind === kind);
  if (old) {
    localStream.removeTrack(old);
    old.stop();
  }
  localStream.addTrack(track);
  track.enabled = video ? state.local.video : state.local.audio;
  $("#preview").srcObject = localStream;
  localTile?.setStream(localStream);
  if (!video) watchPreviewLevel();
  await publisher?.replaceTrack(track);
}

function applyLocalState() {
  for (const track of localStream?.getTracks() || []) {
    track.enabled = track.kind === "audio" ? state.local.audio : state.local.video;
  }
  const { audio, video } = state.local;
  const set = (button, on, onIcon, offIcon, onText, offText) => {
    button.replaceChildren(icon(on ? onIcon : offIcon), h("span", { text: on ? onText : offText }));
    button.setAttribute("aria-pressed", String(on));
    button.classList.toggle("off", !on);
  };
  set($("#preview-mic"), audio, "mic", "micOff", "Mic on", "Mic off");
  set($("#preview-cam"), video, "cam", "camOff", "Camera on", "Camera off");
  set($("#toggle-mic"), audio, "mic", "micOff", "Mute", "Unmute");
  set($("#toggle-cam"), video, "cam", "camOff", "Stop video", "Start video");
  $("#preview-frame").classList.toggle("cam-off", !video);
  localTile?.setMedia({ audio, video });
}

function setLocal(kind, on) {
  state.local[kind] = on;
  applyLocalState();
  if (state.stage === "call" && publisher) sendMediaState();
}

let mediaStateSending = null;
let mediaStateAgain = false;
/** Tells the room our microphone and camera state: one request at a time, the latest wins. */
function sendMediaState() {
  if (mediaStateSending) {
    mediaStateAgain = true;
    return mediaStateSending;
  }
  mediaStateSending = (async () => {
    try {
      do {
        mediaStateAgain = false;
        try {
          await api.put("/media-state", { ...state.local });
        } catch (error) {
          notice(`The others may not see that change yet: ${error.message}`);
        }
      } while (mediaStateAgain);
    } finally {
      mediaStateSending = null;
    }
  })();
  return mediaStateSending;
}

// --- the call ------------------------------------------------------------------------

async function join() {
  state.stage = "joining";
  lobbyError("");
  renderLobby();
  LevelMeter.context?.resume().catch(() => {});
  try {
    const me = await api.post("/lobby");
    updatePerson(me);
    if (me.presence === "waiting") state.stage = "waiting";
  } catch (error) {
    state.stage = "lobby";
    lobbyError(error.message);
  }
  renderAll();
}

async function enterCall() {
  if (state.stage === "call") return;
  state.stage = "call";
  show("call");
  $("#controls").classList.toggle("observer", !canPublish());
  $("#settings-popover").append($("#devices"));
  if (canPublish()) {
    localTile = makeLocalTile();
    localTile.setStream(localStream);
    applyLocalState();
  }
  e2ee ||= new EndToEnd(api, summitId, state.me.participant.id, { onChange: renderSecurity });
  e2ee.setPrivate(state.summit.phase === "private");
  renderAll();
  await Promise.all([
    keep("e2ee", () => e2ee.start()),
    canPublish() ? keep("publish", publish) : null,
    keep("subscribe", subscribe),
  ]);
}

function makeLocalTile() {
  const me = state.me.participant;
  const { side, index } = sideOf(me.side_id);
  return new Tile({
    participantId: me.id,
    name: me.name,
    sideName: side?.name || "",
    sideIndex: index,
    role: me.role,
    local: true,
    onFullscreen: toggleFullscreen,
  });
}

async function publish() {
  await publisher?.stop();
  if (!E2EE_SUPPORTED && state.summit.phase === "private") {
    notice("This browser cannot encrypt end to end, so it does not send your camera and microphone in the private talks.", true);
    return;
  }
  publisher = new Publisher(api, {
    e2ee,
    onTrouble: (why) => restartPart("publish", why),
    onState: (connection) => (state.media.publish = connection),
  });
  state.media.publish = "starting";
  await publisher.start(localStream);
  if (!state.local.audio || !state.local.video) await sendMediaState();
}

async function subscribe() {
  await subscription?.stop();
  state.media.subscribe = "starting";
  subscription = new RoomSubscription(api, {
    e2ee,
    onState: (connection) => (state.media.subscribe = connection),
    onChange: (feeds, media) => {
      state.feeds = feeds;
      renderTiles(media);
    },
    onTrouble: (why) => restartPart("subscribe", why),
  });
  await subscription.start();
}

function syncFeeds() {
  if (state.stage !== "call") return;
  keep("sync", async () => {
    if (!subscription || subscription.closed) return;
    try {
      await subscription.sync();
    } catch (error) {
      if (error instanceof ApiError && [401, 403, 409].includes(error.status)) throw error;
      // The server lost our subscription, or the exchange broke half-way and nobody knows
      // what the connection carries now: start a fresh one.
      console.warn("summitry: sync failed, subscribing afresh", error);
      await keep("subscribe", subscribe);
    }
  });
}

function restartPart(part, why) {
  if (state.stage !== "call") return;
  state.media.restarts += 1;
  notice(`Media connection ${why}; reconnecting…`);
  keep(part, part === "publish" ? publish : subscribe);
}

function restartMedia(why) {
  if (state.stage !== "call") return;
  state.media.restarts += 1;
  notice(`Reconnecting media: ${why}…`);
  if (canPublish()) keep("publish", publish);
  keep("subscribe", subscribe);
}

/** After the event stream came back: is our feed still in the room, our subscription known? */
async function checkMedia() {
  if (canPublish() && !jobs.has("publish")) {
    const feeds = await api.get("/feeds");
    if (!feeds.some((f) => f.participant_id === state.me.participant.id)) {
      keep("publish", publish); // the server restarted, or dropped us
    }
  }
  syncFeeds();
}

function stopMedia({ tellServer }) {
  for (const name of ["publish", "subscribe", "sync", "e2ee"]) jobs.delete(name);
  e2ee?.stop();
  const p = publisher;
  const s = subscription;
  publisher = null;
  subscription = null;
  state.media.publish = state.media.subscribe = "none";
  p?.stop({ tellServer });
  s?.stop({ tellServer });
  state.feeds = [];
  state.speaking.clear();
  for (const tile of remoteTiles.values()) tile.remove();
  remoteTiles.clear();
  localTile?.remove();
  localTile = null;
  if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
  $("#preview-controls").after($("#devices"));
  $("#settings-popover").hidden = true;
}

function stopEverything() {
  stopMedia({ tellServer: true });
  e2ee?.forget();
  source?.close();
  previewMeter?.stop();
  for (const track of localStream?.getTracks() || []) track.stop();
}

async function leave() {
  stopMedia({ tellServer: true });
  state.stage = "left";
  show("lobby");
  renderAll();
  try {
    updatePerson(await api.post("/leave"));
  } catch (error) {
    lobbyError(error.message);
  }
}

let lastMedia = new Map();
function renderTiles(media) {
  if (media) lastMedia = media;
  const stage = $("#stage");
  if (state.stage !== "call") {
    stage.replaceChildren();
    stage.dataset.count = "0";
    return;
  }
  const present = new Set();
  for (const feed of state.feeds) {
    present.add(feed.participant_id);
    let tile = remoteTiles.get(feed.participant_id);
    if (!tile) {
      const { side, index } = sideOf(feed.side_id);
      tile = new Tile({
        participantId: feed.participant_id,
        name: feed.name,
        sideName: side?.name || "",
        sideIndex: index,
        role: feed.role,
        onFullscreen: toggleFullscreen,
      });
      remoteTiles.set(feed.participant_id, tile);
    }
    tile.feedId = feed.feed_id;
    tile.setMedia({ audio: feed.audio, video: feed.video });
    tile.setReceivers(lastMedia.get(feed.feed_id) || {}, (track) => {
      try {
        return new LevelMeter(track);
      } catch {
        return null;
      }
    });
    tile.setSpeaking(state.speaking.has(feed.participant_id));
  }
  for (const [id, tile] of remoteTiles) {
    if (!present.has(id)) {
      tile.remove();
      remoteTiles.delete(id);
    }
  }
  const tiles = [...(localTile ? [localTile] : []), ...sortTiles([...remoteTiles.values()])];
  const wanted = tiles.map((t) => t.el);
  if (wanted.length !== stage.children.length || wanted.some((el, i) => stage.children[i] !== el)) {
    stage.replaceChildren(...wanted);
  }
  stage.dataset.count = String(Math.min(wanted.length, 10));
  if (!wanted.length || (wanted.length === 1 && localTile)) {
    stage.append(
      h("div.stage-empty", {}, h("p", { text: "You are in the call." }), h("p", { text: "Nobody else is here yet." })),
    );
  }
}

function sortTiles(tiles) {
  const rank = { principal: 0, interpreter: 1, delegate: 2, coordinator: 3, observer: 4 };
  return tiles.sort((a, b) => {
    const x = a.el.dataset;
    const y = b.el.dataset;
    return x.side - y.side || (rank[x.role] ?? 9) - (rank[y.role] ?? 9) || x.name.localeCompare(y.name);
  });
}

function toggleFullscreen(el) {
  if (document.fullscreenElement) {
    document.exitFullscreen().catch(() => {});
  } else {
    el.requestFullscreen?.().catch((error) => notice(`Full screen is not available: ${error.message}`));
  }
}

// --- instrumentation -----------------------------------------------------------------

async function inbound(receiver, kind) {
  if (!receiver) return null;
  const report = await receiver.getStats();
  for (const entry of report.values()) {
    if (entry.type === "inbound-rtp" && entry.kind === kind) return entry;
  }
  return null;
}

/** Per remote tile: what this page actually decodes and hears. */
async function stats() {
  const result = [];
  for (const [participantId, tile] of remoteTiles) {
    const video = await inbound(tile.receivers.video, "video");
    const audio = await inbound(tile.receivers.audio, "audio");
    result.push({
      participant_id: participantId,
      name: tile.el.dataset.name,
      framesDecoded: video?.framesDecoded ?? 0,
      frameWidth: video?.frameWidth ?? 0,
      audioEnergy: audio?.totalAudioEnergy ?? 0,
      audioRms: tile.meter ? tile.meter.take() : 0,
      playing: !tile.video.paused && tile.video.readyState >= 2,
    });
  }
  return result;
}

window.summitry = { state, stats, e2ee: () => e2ee };

// --- wiring --------------------------------------------------------------------------

function wire() {
  $("#join").addEventListener("click", join);
  $("#preview-mic").addEventListener("click", () => setLocal("audio", !state.local.audio));
  $("#preview-cam").addEventListener("click", () => setLocal("video", !state.local.video));
  $("#toggle-mic").addEventListener("click", () => setLocal("audio", !state.local.audio));
  $("#toggle-cam").addEventListener("click", () => setLocal("video", !state.local.video));
  $("#leave").replaceChildren(icon("leave"), h("span", { text: "Leave" }));
  $("#leave").addEventListener("click", leave);
  $("#fullscreen").replaceChildren(icon("fullscreen"), h("span", { text: "Full screen" }));
  $("#fullscreen").addEventListener("click", () => toggleFullscreen($("#stage")));
  $("#toggle-settings").replaceChildren(icon("settings"), h("span", { text: "Devices" }));
  $("#toggle-settings").addEventListener("click", () => {
    const pop = $("#settings-popover");
    pop.hidden = !pop.hidden;
  });
  $("#camera-select").addEventListener("change", (e) => {
    savePrefs({ camera: e.target.value });
    changeDevice("video");
  });
  $("#mic-select").addEventListener("change", (e) => {
    savePrefs({ mic: e.target.value });
    changeDevice("audio");
  });
  $("#quality-select").addEventListener("change", (e) => {
    savePrefs({ quality: e.target.value });
    changeDevice("video");
  });
  $("#preview-avatar span").textContent = "";
  // Leaving the page without Leave (reload, closed tab): free the media resources now;
  // the presence stays, so a reload walks straight back into the call.
  addEventListener("pagehide", () => {
    for (const location of [publisher?.location, subscription?.id && `${api.base}/subscriptions/${subscription.id}`]) {
      if (!location) continue;
      fetch(location, { method: "DELETE", keepalive: true, headers: { Authorization: `Bearer ${api.token}` } }).catch(() => {});
    }
  });
  setInterval(() => {
    if (state.summit?.phase === "public") renderHeader();
  }, 1000);
}

async function boot() {
  wire();
  if (!summitId) {
    fatal("This link does not open a summit", "Open the invitation link you were sent.");
    return;
  }
  const token = takeGrant();
  if (!token) {
    fatal(
      "This page needs your invitation link",
      "Open the full link from your invitation (it ends with a long code after #).",
    );
    return;
  }
  api = new Api(summitId, token);
  let delay = 500;
  for (;;) {
    try {
      await loadAll();
      break;
    } catch (error) {
      if (error instanceof ApiError && [401, 403, 404].includes(error.status)) {
        fatal("This invitation does not open the summit", error.message);
        return;
      }
      state.connection = "reconnecting";
      renderConnection();
      await sleep(delay);
      delay = Math.min(delay * 2, 8000);
    }
  }
  state.connection = "connecting";
  if (state.me.role === "coordinator") {
    const aside = $("#console");
    aside.hidden = false;
    document.body.classList.add("with-console");
    consoleView = new CoordinatorConsole(aside, { api, state, setSummit, updatePerson, resync });
  }
  $("#preview-avatar span").textContent = initials(state.me.participant.name);
  const presence = state.me.participant.presence;
  state.stage = presence === "waiting" ? "waiting" : presence === "denied" ? "denied" : "lobby";
  if (OVER.has(state.summit.phase)) state.stage = "over";
  show("lobby");
  renderAll();
  openEvents();
  await startPreview();
  if (presence === "admitted" && !OVER.has(state.summit.phase)) {
    // Back after a reload: still admitted, so straight into the call.
    state.stage = "joining";
    await join();
  }
}

boot();
