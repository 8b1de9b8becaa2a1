// The room page: lobby, call and (for coordinators) the console, kept in step with the
// summit's event stream. The grant comes from the invitation link's fragment.

import { Api, ApiError } from "./api.js";
import { CoordinatorConsole } from "./console.js";
import { EndToEnd, SUPPORTED as E2EE_SUPPORTED } from "./e2ee.js";
import { EventStream } from "./events.js";
import {
  LevelMeter,
  Publisher,
  QUALITIES,
  RoomSubscription,
  listDevices,
  openCamera,
} from "./media.js";
import { OVER, phaseOf, showPhase } from "./phases.js";
import { FeedLayers } from "./layers.js";
import { LEVELS, QualityMeter, describe, receivedTotals, sentTotals } from "./quality.js";
import { firstStage, nextStage } from "./stages.js";
import { $, ROLES, Tile, clockTime, h, icon, initials, wallTime } from "./ui.js";

const summitId = decodeURIComponent(location.pathname.split("/").filter(Boolean)[1] || "");
const GRANT_KEY = `summitry.grant.${summitId}`;
const PREFS_KEY = "summitry.devices";

const state = {
  summitId,
  stage: "loading", // stages.js: loading | fatal | lobby | joining | waiting | denied | left | over | call
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

// The page's working parts: what `state` (which the tests read as JSON) does not hold.
const room = {
  api: null,
  ice: null, // the summit's TURN servers for this browser, and when their credential ends
  events: null, // the EventStream
  rosterEvents: 0, // roster events seen, so a resync knows whether one came while it read
  consoleView: null, // the coordinator's console
  e2ee: null,
  localStream: null,
  previewMeter: null,
  publisher: null,
  subscription: null,
  localTile: null,
  remoteTiles: new Map(), // participant id → Tile
  lastMedia: new Map(), // feed id → its receivers, from the latest negotiation
  jobs: new Map(), // name → running retry job
  resync: { timer: null, media: false },
  noticeTimer: null,
  mediaState: { sending: null, again: false },
};

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

/** Moves the page to the stage that `event` leads to; false if it changes nothing now. */
function move(event) {
  const next = nextStage(state.stage, event);
  if (next) state.stage = next;
  return Boolean(next);
}

/** From any stage: the page cannot go on. */
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
  const phase = phaseOf(summit.phase);
  let detail = phase.detail;
  if (summit.phase === "public" && summit.public_ends_at) {
    const left = Math.max(0, new Date(summit.public_ends_at) - Date.now());
    const minutes = Math.floor(left / 60000);
    const seconds = Math.floor((left % 60000) / 1000);
    detail += ` · private in ${minutes}:${String(seconds).padStart(2, "0")}`;
  }
  showPhase(summit.phase, phase.label, detail);
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
  const inCall = state.stage === "call" && room.e2ee;
  el.hidden = !inCall;
  if (!inCall) return;
  const status = room.e2ee.status;
  el.dataset.status = status;

  const code = room.e2ee.code || [];
  const codeEl = $("#e2ee-code");
  codeEl.replaceChildren(...code.map((c) => h("span.code-emoji", { text: c.emoji, title: c.name })));
  codeEl.dataset.code = code.map((c) => c.name).join(" ");
  const members = room.e2ee.transcript?.members || [];
  const epoch = room.e2ee.transcript?.epoch;
  el.title = epoch
    ? `The code is made from key ${epoch}: who made it, and the ${members.length} public ${members.length === 1 ? "key" : "keys"} it was made for. Read it aloud: every screen must show the same.`
    : "";
  const alarms = [...room.e2ee.alarmTexts(), ...strangers(members)];
  $("#e2ee-text").textContent = alarms.length ? `Security alarm · ${SECURITY_TEXT[status]}` : SECURITY_TEXT[status];
  el.toggleAttribute("data-alarm", alarms.length > 0);
  el.dataset.alarms = room.e2ee.alarmNames.join(" ");
  const detail = $("#e2ee-detail");
  detail.textContent = detail.title = alarms.length
    ? alarms.join(" ")
    : room.e2ee.problem
      ? room.e2ee.problem
      : status === "waiting"
        ? "You will see and hear the private talks once your browser holds the key."
        : code.length
          ? `Security code: ${code.map((c) => c.name).join(" ")}`
          : "";
  const holders = $("#e2ee-holders");
  holders.textContent = holders.title = holdersText(members);
}

/** Whom the key in force was made for, by side: the people the private talks are open to. */
function holdersText(members) {
  if (!members.length) return "";
  const sideOf = (m) => state.people.get(m.participant_id)?.side_id;
  const bySide = (state.summit?.sides || []).map((side) => {
    const names = members.filter((m) => sideOf(m) === side.id).map((m) => m.name);
    return names.length ? `${side.name}: ${names.join(", ")}` : null;
  });
  const unknown = members.filter((m) => !sideOf(m)).map((m) => m.name);
  if (unknown.length) bySide.push(`not in this room: ${unknown.join(", ")}`);
  const count = `${members.length} ${members.length === 1 ? "person holds" : "people hold"} the key`;
  return `${count} · ${bySide.filter(Boolean).join(" · ")}`;
}

/** Someone the key was made for whom this room does not show as a participant is an alarm. */
function strangers(members) {
  return members
    .filter((m) => state.people.get(m.participant_id)?.name !== m.name)
    .map((m) => `The key was also made for ${m.name}, who is not a participant of this room.`);
}

function renderAll() {
  renderHeader();
  renderSecurity();
  renderConnection();
  if (state.stage !== "call" && state.stage !== "fatal" && state.stage !== "loading") renderLobby();
  renderTiles();
  room.consoleView?.render();
}

// --- state from the server -----------------------------------------------------------

function setSummit(view) {
  // Answers may arrive out of order: never go back to an older version of the summit.
  if (state.summit && view.version < state.summit.version) return;
  const before = state.summit?.phase;
  state.summit = view;
  // Senders seal before the screen says "private": nothing said after it goes out clear.
  if (before !== view.phase) room.e2ee?.setPhase(view.phase);
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
  const { api } = room;
  const [me, summit, people] = await Promise.all([api.me(), api.summit(), api.participants()]);
  state.me = me;
  state.people = new Map(people.map((p) => [p.id, p]));
  setSummit(summit);
}

/**
 * Re-reads the summit and roster (after a phase change or a stale version); after the
 * event stream came back (`media`), also checks that our media still exist.
 */
function resync({ media = false } = {}) {
  room.resync.media ||= media;
  clearTimeout(room.resync.timer);
  room.resync.timer = setTimeout(() => {
    keep(
      "resync",
      async () => {
        // A roster event that arrives while the roster is read may be newer than what
        // the read returns: read again until none came in between.
        let seen;
        do {
          seen = room.rosterEvents;
          await loadAll();
        } while (seen !== room.rosterEvents);
        onMyPresence(state.me.participant.presence);
        if (room.resync.media && state.stage === "call") await checkMedia();
        room.resync.media = false;
      },
      { always: true },
    );
  }, 50);
}

function onPhase(phase) {
  if (!OVER.has(phase)) return;
  room.e2ee?.forget();
  if (move("over")) {
    stopMedia({ tellServer: true }); // out of the call
    lobbyError("");
    show("lobby");
    renderAll();
  }
}

function onMyPresence(presence) {
  const from = state.stage;
  if (move(presence)) {
    if (state.stage === "fatal") {
      fatal("You were removed from this summit", "Your invitation link no longer works.");
    } else if (state.stage === "call") {
      enterCall();
      // Admitted, the page may read the whole roster now (the lobby saw only its own row).
      if (from !== "call") resync();
    } else {
      // denied, or left from another tab or dropped by the server: it knows already
      if (from === "call") stopMedia({ tellServer: false });
      if (state.stage !== "waiting") show("lobby");
    }
  }
  renderAll();
}

// --- the event stream ----------------------------------------------------------------

// EventSource sends no headers, so each stream opens with a ticket in its URL, good for a
// minute; the invitation's grant never goes into a URL.
async function eventsUrl() {
  try {
    const { ticket } = await room.api.eventsTicket();
    return room.api.eventsUrl(ticket);
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      fatal("Your invitation no longer works", error.message);
    }
    throw error;
  }
}

function openEvents() {
  room.events = new EventStream({
    url: eventsUrl,
    handlers: EVENTS,
    onUp: (missed) => {
      state.connection = "online";
      renderConnection();
      if (missed) resync({ media: true });
    },
    onDown: () => {
      state.connection = "reconnecting";
      renderConnection();
    },
    retry: { first: 1000, longest: 10000 },
  });
  room.events.open();
}

/** What the room does on each event of its stream. */
const EVENTS = {
  phase(event) {
    if (!state.summit || event.version < state.summit.version) return;
    const sides = state.summit.sides.map((s) => ({ ...s, consented: event.consents.includes(s.id) }));
    const changed = event.version !== state.summit.version;
    setSummit({ ...state.summit, phase: event.phase, version: event.version, sides });
    if (changed) resync(); // allowed actions and the public part's times
  },
  roster(event) {
    room.rosterEvents += 1;
    updatePerson({
      id: event.participant,
      side_id: event.side,
      name: event.name,
      role: event.role,
      presence: event.presence,
    });
  },
  feeds() {
    syncFeeds();
  },
  e2ee() {
    if (state.stage === "call") keep("e2ee", () => room.e2ee.refresh());
  },
  speaking(event) {
    if (event.speaking) state.speaking.add(event.participant);
    else state.speaking.delete(event.participant);
    renderTiles();
  },
  media_state(event) {
    state.feeds = state.feeds.map((f) =>
      f.participant_id === event.participant ? { ...f, audio: event.audio, video: event.video } : f,
    );
    renderTiles();
  },
  media_reset() {
    if (state.stage === "call") restartMedia("the media server restarted");
  },
};

// --- retrying ------------------------------------------------------------------------

/**
 * Runs `work` until it succeeds, with backoff, while it still makes sense (in the call,
 * unless `always`). Calls made while it runs make it run once more afterwards.
 */
function keep(name, work, { always = false } = {}) {
  const running = room.jobs.get(name);
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
      room.jobs.delete(name);
    }
  })();
  room.jobs.set(name, job);
  return job.promise;
}

function notice(text, sticky = false) {
  const el = $("#call-notice");
  el.textContent = text;
  el.classList.toggle("shown", Boolean(text));
  clearTimeout(room.noticeTimer);
  if (text && !sticky) room.noticeTimer = setTimeout(() => notice(""), 6000);
}

// --- local camera and microphone -----------------------------------------------------

function canPublish() {
  return state.me && state.me.role !== "observer";
}

async function startPreview() {
  if (!canPublish()) return;
  if (!window.isSecureContext) {
    // Browsers give the camera and microphone only to HTTPS pages (and localhost).
    lobbyError(
      `This page came over plain HTTP, which is not secure, so your browser offers no camera or microphone. Open your invitation link as https://${location.host}${location.pathname} (with the code after #).`,
    );
    room.localStream = new MediaStream();
    applyLocalState();
    return;
  }
  const p = prefs();
  try {
    room.localStream = await openCamera({ cameraId: p.camera, micId: p.mic, quality: p.quality });
  } catch (error) {
    try {
      room.localStream = await openCamera({ quality: p.quality }); // the remembered device is gone
    } catch {
      lobbyError(`Camera or microphone unavailable: ${error.message}. Allow access and reload.`);
      room.localStream = new MediaStream();
    }
  }
  applyLocalState();
  $("#preview").srcObject = room.localStream;
  watchPreviewLevel();
  await fillDevices();
}

function watchPreviewLevel() {
  room.previewMeter?.stop();
  room.previewMeter = null;
  const track = room.localStream?.getAudioTracks()[0];
  if (!track) return;
  try {
    room.previewMeter = new LevelMeter(track);
  } catch {
    return;
  }
  const fill = $("#preview-meter");
  const meter = room.previewMeter;
  const tick = setInterval(() => {
    if (room.previewMeter !== meter) {
      clearInterval(tick);
      return;
    }
    const level = state.local.audio ? Math.min(1, meter.level * 6) : 0;
    fill.style.transform = `scaleX(${level.toFixed(3)})`;
    room.localTile?.setSpeaking(level > 0.25);
  }, 100);
}

async function fillDevices() {
  let devices;
  try {
    devices = await listDevices();
  } catch {
    return;
  }
  const current = (kind) => room.localStream?.getTracks().find((t) => t.kind === kind)?.getSettings().deviceId;
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
  const old = room.localStream.getTracks().find((t) => t.kind === kind);
  if (old) {
    room.localStream.removeTrack(old);
    old.stop();
  }
  room.localStream.addTrack(track);
  track.enabled = video ? state.local.video : state.local.audio;
  $("#preview").srcObject = room.localStream;
  room.localTile?.setStream(room.localStream);
  if (!video) watchPreviewLevel();
  if (room.publisher?.layeringChanges(track)) keep("publish", publish);
  else await room.publisher?.replaceTrack(track);
}

function applyLocalState() {
  for (const track of room.localStream?.getTracks() || []) {
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
  room.localTile?.setMedia({ audio, video });
}

function setLocal(kind, on) {
  state.local[kind] = on;
  applyLocalState();
  if (state.stage === "call" && room.publisher) sendMediaState();
}

/** Tells the room our microphone and camera state: one request at a time, the latest wins. */
function sendMediaState() {
  if (room.mediaState.sending) {
    room.mediaState.again = true;
    return room.mediaState.sending;
  }
  room.mediaState.sending = (async () => {
    try {
      do {
        room.mediaState.again = false;
        try {
          await room.api.put("/media-state", { ...state.local });
        } catch (error) {
          notice(`The others may not see that change yet: ${error.message}`);
        }
      } while (room.mediaState.again);
    } finally {
      room.mediaState.sending = null;
    }
  })();
  return room.mediaState.sending;
}

// --- the call ------------------------------------------------------------------------

async function join() {
  if (!move("join")) return;
  lobbyError("");
  renderLobby();
  LevelMeter.context?.resume().catch(() => {});
  try {
    updatePerson(await room.api.post("/lobby"));
  } catch (error) {
    move("failed");
    lobbyError(error.message);
  }
  renderAll();
}

/** Into the call (the stage is "call" already): the stage, our media and the others'. */
async function enterCall() {
  show("call");
  $("#controls").classList.toggle("observer", !canPublish());
  $("#settings-popover").append($("#devices"));
  if (canPublish()) {
    room.localTile = makeLocalTile();
    room.localTile.setStream(room.localStream);
    applyLocalState();
  }
  room.e2ee ||= new EndToEnd(room.api, summitId, state.me.participant.id, {
    onChange: () => {
      renderSecurity();
      renderTiles();
      room.consoleView?.renderKeyChanges();
    },
  });
  room.e2ee.setPhase(state.summit.phase);
  renderAll();
  await Promise.all([
    keep("e2ee", () => room.e2ee.start()),
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

/** The summit's TURN servers for this browser, fetched again once their credential is
 * about to expire (a minute early). */
async function iceServers() {
  const soon = Date.now() + 60_000;
  if (!room.ice || (room.ice.expires_at && Date.parse(room.ice.expires_at) < soon)) {
    room.ice = await room.api.get("/ice-servers");
  }
  return room.ice.ice_servers;
}

async function publish() {
  await room.publisher?.stop();
  if (!E2EE_SUPPORTED && state.summit.phase === "private") {
    notice("This browser cannot encrypt end to end, so it does not send your camera and microphone in the private talks.", true);
    return;
  }
  room.publisher = new Publisher(room.api, {
    e2ee: room.e2ee,
    iceServers: await iceServers(),
    onTrouble: (why) => restartPart("publish", why),
    onState: (connection) => (state.media.publish = connection),
  });
  state.media.publish = "starting";
  await room.publisher.start(room.localStream);
  if (!state.local.audio || !state.local.video) await sendMediaState();
}

async function subscribe() {
  await room.subscription?.stop();
  state.media.subscribe = "starting";
  room.subscription = new RoomSubscription(room.api, {
    e2ee: room.e2ee,
    iceServers: await iceServers(),
    onState: (connection) => (state.media.subscribe = connection),
    onChange: (feeds, media) => {
      state.feeds = feeds;
      renderTiles(media);
    },
    onTrouble: (why) => restartPart("subscribe", why),
  });
  await room.subscription.start();
}

function syncFeeds() {
  if (state.stage !== "call") return;
  keep("sync", async () => {
    if (!room.subscription || room.subscription.closed) return;
    try {
      await room.subscription.sync();
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
  if (canPublish() && !room.jobs.has("publish")) {
    const feeds = await room.api.get("/feeds");
    if (!feeds.some((f) => f.participant_id === state.me.participant.id)) {
      keep("publish", publish); // the server restarted, or dropped us
    }
  }
  syncFeeds();
}

function stopMedia({ tellServer }) {
  for (const name of ["publish", "subscribe", "sync", "e2ee"]) room.jobs.delete(name);
  room.e2ee?.stop();
  const p = room.publisher;
  const s = room.subscription;
  room.publisher = null;
  room.subscription = null;
  state.media.publish = state.media.subscribe = "none";
  p?.stop({ tellServer });
  s?.stop({ tellServer });
  state.feeds = [];
  state.speaking.clear();
  for (const tile of room.remoteTiles.values()) tile.remove();
  room.remoteTiles.clear();
  room.localTile?.remove();
  room.localTile = null;
  if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
  $("#preview-controls").after($("#devices"));
  $("#settings-popover").hidden = true;
}

function stopEverything() {
  stopMedia({ tellServer: true });
  room.e2ee?.forget();
  room.events?.stop();
  room.previewMeter?.stop();
  for (const track of room.localStream?.getTracks() || []) track.stop();
}

async function leave() {
  if (!move("leave")) return;
  stopMedia({ tellServer: true });
  show("lobby");
  renderAll();
  try {
    updatePerson(await room.api.post("/leave"));
  } catch (error) {
    lobbyError(error.message);
  }
}

function renderTiles(media) {
  if (media) room.lastMedia = media;
  const stage = $("#stage");
  if (state.stage !== "call") {
    stage.replaceChildren();
    stage.dataset.count = "0";
    return;
  }
  const present = new Set();
  for (const feed of state.feeds) {
    present.add(feed.participant_id);
    let tile = room.remoteTiles.get(feed.participant_id);
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
      room.remoteTiles.set(feed.participant_id, tile);
    }
    tile.feedId = feed.feed_id;
    tile.setMedia({ audio: feed.audio, video: feed.video });
    tile.setReceivers(room.lastMedia.get(feed.feed_id) || {}, (track) => {
      try {
        return new LevelMeter(track);
      } catch {
        return null;
      }
    });
    tile.setSpeaking(state.speaking.has(feed.participant_id));
  }
  for (const [id, tile] of room.remoteTiles) {
    if (!present.has(id)) {
      tile.remove();
      room.remoteTiles.delete(id);
    }
  }
  const tiles = [...(room.localTile ? [room.localTile] : []), ...sortTiles([...room.remoteTiles.values()])];
  const wanted = tiles.map((t) => t.el);
  if (wanted.length !== stage.children.length || wanted.some((el, i) => stage.children[i] !== el)) {
    stage.replaceChildren(...wanted);
  }
  stage.dataset.count = String(Math.min(wanted.length, 10));
  if (!wanted.length || (wanted.length === 1 && room.localTile)) {
    // Without the key, private feeds are withheld: the others may well be here.
    const why =
      room.e2ee?.status === "waiting"
        ? "You will see and hear the others once your browser holds the key."
        : "Nobody else is here yet.";
    stage.append(h("div.stage-empty", {}, h("p", { text: "You are in the call." }), h("p", { text: why })));
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
  for (const [participantId, tile] of room.remoteTiles) {
    const video = await inbound(tile.receivers.video, "video");
    const audio = await inbound(tile.receivers.audio, "audio");
    result.push({
      participant_id: participantId,
      name: tile.el.dataset.name,
      framesDecoded: video?.framesDecoded ?? 0,
      frameWidth: video?.frameWidth ?? 0,
      layer: tile.el.dataset.layer || "high",
      audioEnergy: audio?.totalAudioEnergy ?? 0,
      // null: this tile has no receiver of that kind
      audioPackets: audio ? audio.packetsReceived : null,
      videoPackets: video ? video.packetsReceived : null,
      audioRms: tile.meter ? tile.meter.take() : 0,
      playing: !tile.video.paused && tile.video.readyState >= 2,
      network: tile.bars.dataset.level,
    });
  }
  return result;
}

/** What this page sends of its camera, per layer (rid): the picture width and the
 * frames sent so far (a layer the sender holds back sends none). */
async function sent() {
  if (!room.publisher?.pc) return [];
  const report = await room.publisher.pc.getStats();
  return [...report.values()]
    .filter((entry) => entry.type === "outbound-rtp" && entry.kind === "video")
    .map((entry) => ({ rid: entry.rid ?? "", frameWidth: entry.frameWidth ?? 0, framesSent: entry.framesSent ?? 0 }));
}

/** How each of this page's connections reaches the media server: the candidate pair in
 * use (a relay, and over what, when TURN carries it). */
async function paths() {
  const result = {};
  for (const [part, holder] of [["publish", room.publisher], ["subscribe", room.subscription]]) {
    if (holder?.pc) result[part] = await selectedPath(holder.pc);
  }
  return result;
}

async function selectedPath(pc) {
  const report = await pc.getStats();
  for (const entry of report.values()) {
    if (entry.type !== "transport" || !entry.selectedCandidatePairId) continue;
    const pair = report.get(entry.selectedCandidatePairId);
    const local = report.get(pair.localCandidateId);
    const remote = report.get(pair.remoteCandidateId);
    return {
      local: local.candidateType,
      protocol: local.protocol,
      relayProtocol: local.relayProtocol || null,
      remote: remote.candidateType,
      remoteAddress: `${remote.address}:${remote.port}`,
      rtt: pair.currentRoundTripTime ?? null,
    };
  }
  return null;
}

/** Receives `participantId`'s video at `layer` ("low", "medium", "high") until the
 * page's own choice next changes (for diagnosis and the tests). */
function receiveLayer(participantId, layer) {
  const tile = room.remoteTiles.get(participantId);
  return room.subscription?.chooseLayers(new Map([[tile.feedId, layer]]));
}

window.summitry = { state, stats, sent, paths, receiveLayer, e2ee: () => room.e2ee };

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
    room.publisher?.release();
    room.subscription?.release();
  });
  setInterval(() => {
    if (state.summit?.phase === "public") renderHeader();
  }, 1000);
  setInterval(() => showQuality().catch(() => {}), QUALITY_EVERY_MS);
  // Waiting is where a missed event costs most (admitted, and never told): a stream can
  // stall unseen behind a buffering proxy, so the lobby also asks now and then.
  setInterval(() => {
    if (state.stage === "waiting") resync();
  }, WAITING_RECHECK_MS);
}

const WAITING_RECHECK_MS = 10_000;

const QUALITY_EVERY_MS = 2000;
// What a tile's tooltip says of a feed that comes in at a lower layer.
const SMALLER = { low: " (video at a quarter size)", medium: " (video at half size)" };

/** Every tile's network bars: how the others' media reaches this browser, and how this
 * browser's own reaches the server (from what the server reports back). */
async function showQuality() {
  if (state.stage !== "call") return;
  const layers = new Map();
  for (const tile of room.remoteTiles.values()) {
    const receivers = [tile.receivers.audio, tile.receivers.video].filter(Boolean);
    const reports = await Promise.all(receivers.map((receiver) => receiver.getStats()));
    const layer = chooseLayer(tile, tile.receivers.video ? reports.at(-1) : null);
    if (layer !== undefined) layers.set(tile.feedId, layer);
    showFigures(tile, receivedTotals(reports), `Reaching you${SMALLER[tile.el.dataset.layer] || ""}`);
  }
  if (layers.size) await room.subscription?.chooseLayers(layers);
  if (room.localTile && room.publisher?.pc) {
    showFigures(room.localTile, sentTotals(await room.publisher.pc.getStats()), "Your media reaching the server");
  }
}

/** The video layer a tile's feed should come in at now, if that changed. */
function chooseLayer(tile, videoReport) {
  if (!videoReport) return undefined;
  const carrying = `${room.subscription?.id}:${tile.feedId}`;
  if (tile.layersOf !== carrying) {
    tile.layersOf = carrying; // a new feed or subscription starts at the top, as Janus does
    tile.layers = new FeedLayers();
    delete tile.el.dataset.layer;
  }
  const layer = tile.layers.take(videoReport);
  if (layer) tile.el.dataset.layer = layer;
  return layer;
}

function showFigures(tile, totals, what) {
  tile.quality ??= new QualityMeter();
  const figures = tile.quality.take(totals);
  if (!figures) return;
  const sending = tile.el.dataset.audio !== "false" || tile.el.dataset.video !== "false";
  if (figures.level === "none" && !sending) tile.setQuality("unknown", "");
  else tile.setQuality(figures.level, `${LEVELS[figures.level]} · ${what}: ${describe(figures)}`);
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
  room.api = new Api(summitId, token);
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
    room.consoleView = new CoordinatorConsole(aside, {
      api: room.api,
      state,
      setSummit,
      updatePerson,
      resync,
      keyChanges: () => room.e2ee?.view?.key_changes || [],
      refreshKeys: () => room.e2ee?.refresh(),
    });
  }
  $("#preview-avatar span").textContent = initials(state.me.participant.name);
  const presence = state.me.participant.presence;
  state.stage = firstStage(presence, state.summit.phase);
  show("lobby");
  renderAll();
  openEvents();
  await startPreview();
  if (presence === "admitted" && !OVER.has(state.summit.phase)) {
    // Back after a reload: still admitted, so straight into the call.
    await join();
  }
}

boot();
