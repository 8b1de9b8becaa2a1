// The public page of a summit (/s/<slug>): no account, only what the public may see.
// Before the start a countdown; while live both sides' pictures over WHEP (hls.js as the
// fallback); after the cut a notice, then the recordings of the public part and the
// readouts. The phase comes from the public event stream; every event re-reads the view.

import { ApiError, PublicApi } from "./api.js";
import { EventStream } from "./events.js";
import { PHASES, phaseOf, showPhase } from "./phases.js";
import { $, h, icon, VIEWER_ZONE, wallTime } from "./ui.js";
import { negotiate } from "./whip.js";

const SLUG = decodeURIComponent(location.pathname.split("/").filter(Boolean)[1] || "");
const api = new PublicApi(SLUG);
const PARAMS = new URLSearchParams(location.search);
const FORCED_PATH = PARAMS.get("player"); // "hls" skips WebRTC (tests, troubleshooting)

const WHEP_FIRST_FRAME_MS = 5000;
const WHEP_ATTEMPTS = 2;
const HLS_SCRIPT = "/static/vendor/hls.min.js";
// MEDIA-NOTES.md: ~1.84 s glass to glass with 0.5 s segments. The transmuxer runs as a
// same-origin worker file: the CSP forbids the blob: worker hls.js makes by default.
const HLS_CONFIG = {
  liveSyncDuration: 1.0,
  liveMaxLatencyDuration: 6,
  maxLiveSyncPlaybackRate: 1.5,
  enableWorker: true,
  workerPath: "/static/vendor/hls.worker.js",
  backBufferLength: 10,
};
const HLS_RETRY_MS = 1500;
const REFRESH_MIN_MS = 2000;
const REFRESH_MAX_MS = 30000;

// Pictograms the shared set in ui.js lacks: drawn by ui.js's `icon` with another path.
const PATHS = {
  play: "M8 5.14v13.72a1 1 0 0 0 1.5.86l11-6.86a1 1 0 0 0 0-1.72l-11-6.86A1 1 0 0 0 8 5.14z",
  pause: "M6 5h4v14H6V5zm8 0h4v14h-4V5z",
  volume:
    "M3 9v6h4l5 5V4L7 9H3zm13.5 3A4.5 4.5 0 0 0 14 7.97v8.05A4.47 4.47 0 0 0 16.5 12zM14 3.23v2.06a7 7 0 0 1 0 13.42v2.06A9 9 0 0 0 14 3.23z",
  volumeOff:
    "M16.5 12A4.5 4.5 0 0 0 14 7.97v2.21l2.45 2.45c.03-.2.05-.41.05-.63zm2.5 0c0 .94-.2 1.82-.54 2.64l1.51 1.51A8.8 8.8 0 0 0 21 12a9 9 0 0 0-7-8.77v2.06A7 7 0 0 1 19 12zM4.27 3 3 4.27 7.73 9H3v6h4l5 5v-6.73l4.25 4.25A7 7 0 0 1 14 18.7v2.06a9 9 0 0 0 3.69-1.81L19.73 21 21 19.73l-9-9L4.27 3zM12 4 9.91 6.09 12 8.18V4z",
  share:
    "M18 16.08c-.76 0-1.44.3-1.96.77L8.91 12.7a3.3 3.3 0 0 0 0-1.39l7.05-4.11A3 3 0 1 0 15 5c0 .24.04.47.09.7L8.04 9.81a3 3 0 1 0 0 4.38l7.12 4.16c-.05.21-.08.43-.08.65A2.92 2.92 0 1 0 18 16.08z",
  download: "M19 9h-4V3H9v6H5l7 7 7-7zM5 18v2h14v-2H5z",
  audio: "M12 3v10.55A4 4 0 1 0 14 17V7h4V3h-6z",
  statement:
    "M14 2H6a2 2 0 0 0-2 2v16a2 2 0 0 0 2 2h12a2 2 0 0 0 2-2V8l-6-6zm2 16H8v-2h8v2zm0-4H8v-2h8v2zm-3-5V3.5L18.5 9H13z",
};

function pictogram(name) {
  if (!PATHS[name]) return icon(name);
  const svg = icon("check");
  svg.firstChild.setAttribute("d", PATHS[name]);
  return svg;
}

function iconButton(button, name, text) {
  button.replaceChildren(pictogram(name), h("span", { text }));
  button.setAttribute("aria-label", text);
  button.title = text;
}

const state = {
  view: null, // the last PublicView
  phase: "",
  player: null, // WhepPlayer | HlsPlayer while live
  paused: false,
  muted: true,
  refreshTimer: null,
  refreshDelay: REFRESH_MIN_MS,
  ticker: null,
  toastTimer: null,
  events: null, // the EventStream
};

// --- the public view ----------------------------------------------------------------

let lastRead = Promise.resolve();
let nextRead = null;

/** Re-reads the public view; calls made while a read runs share the one after it. */
function refresh() {
  if (!nextRead) {
    nextRead = lastRead.then(() => {
      nextRead = null;
      return readView();
    });
    lastRead = nextRead;
  }
  return nextRead;
}

async function readView() {
  let view;
  try {
    view = await api.view();
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) return fatal();
    setConnection("reconnecting");
    return scheduleRefresh(REFRESH_MIN_MS);
  }
  setConnection("online");
  render(view);
}

/**
 * Some changes come without a phase event (the recordings are sealed a few seconds
 * after the cut; readouts are published after the end): look again, less and less often.
 */
function scheduleRefresh(delay) {
  clearTimeout(state.refreshTimer);
  state.refreshTimer = setTimeout(() => {
    state.refreshDelay = Math.min(state.refreshDelay * 1.5, REFRESH_MAX_MS);
    refresh();
  }, delay ?? state.refreshDelay);
}

function awaitsMore(view) {
  if (view.phase === "private") return view.recordings.length === 0;
  if (view.phase === "ended") return view.readouts.length < view.sides.length;
  return false;
}

// --- rendering ------------------------------------------------------------------------

function render(view) {
  const changed = view.phase !== state.phase;
  state.view = view;
  state.phase = view.phase;
  const phase = phaseOf(view.phase).public;

  document.title = `${view.title} · summitry`;
  $("#summit-title").textContent = view.title;
  $("#title").textContent = view.title;
  $("#agenda").textContent = view.agenda || "";
  showPhase(view.phase, phase.label, phase.detail);

  const root = $("#state");
  root.dataset.phase = view.phase;
  root.dataset.view = phase.view;
  root.removeAttribute("aria-busy");
  $("#screen-loading").hidden = true;
  $("#public-grid").hidden = false;

  renderTimes(view);
  $("#upcoming").hidden = phase.view !== "upcoming";
  $("#player").hidden = phase.view !== "live";
  $("#closed").hidden = !["private", "ended", "cancelled"].includes(phase.view);
  renderClosed(view);
  renderAfter(view);
  tick();
  syncPlayer(view);

  if (changed) state.refreshDelay = REFRESH_MIN_MS;
  if (awaitsMore(view)) scheduleRefresh();
  else clearTimeout(state.refreshTimer);
}

function zoneName(zone) {
  return zone.replace(/_/g, " ");
}

function renderTimes(view) {
  const row = (term, zone, sideIndex) => {
    const { when, offset } = wallTime(view.starts_at, zone);
    return [
      h(
        "dt",
        {},
        sideIndex === null ? pictogram("clock") : h("span.side-dot", { data: { side: String(sideIndex) } }),
        term,
      ),
      h("dd", {}, h("span.when", { text: when }), h("span.zone", { text: `${zoneName(zone)} · ${offset}` })),
    ];
  };
  const rows = view.sides.map((side, index) => row(side.name, side.time_zone, index));
  if (VIEWER_ZONE) rows.push(row("Your time", VIEWER_ZONE, null));
  $("#times").replaceChildren(...rows.flat());
  const zone = VIEWER_ZONE || "UTC";
  const { when, offset } = wallTime(view.starts_at, zone);
  $("#upcoming-start").replaceChildren(
    `Starts ${when} your time `,
    h("span.zone", { text: `(${zoneName(zone)} · ${offset})` }),
  );
}

function plural(count, word) {
  return `${count} ${word}${count === 1 ? "" : "s"}`;
}

/** The countdown to the start, and the sides' clocks under their pictures. */
function tick() {
  const view = state.view;
  if (!view) return;
  for (const clock of document.querySelectorAll("[data-clock-zone]")) {
    const { when } = wallTime(new Date().toISOString(), clock.dataset.clockZone);
    clock.textContent = `${clock.dataset.clockCity} ${when.slice(-5)}`;
  }
  if (PHASES[view.phase]?.public.view !== "upcoming") return;
  const left = Math.max(0, new Date(view.starts_at).getTime() - Date.now());
  const seconds = Math.floor(left / 1000);
  const parts = [
    [Math.floor(seconds / 86400), "days"],
    [Math.floor(seconds / 3600) % 24, "hours"],
    [Math.floor(seconds / 60) % 60, "minutes"],
    [seconds % 60, "seconds"],
  ];
  const countdown = $("#countdown");
  countdown.hidden = left === 0;
  countdown.replaceChildren(
    ...parts
      .filter(([value], index) => index > 0 || value > 0)
      .map(([value, unit]) =>
        h("div.count-cell", { data: { unit } }, h("span.count-value", { text: String(value).padStart(2, "0") }), h("span.count-unit", { text: unit })),
      ),
  );
  countdown.setAttribute(
    "aria-label",
    parts.filter(([value]) => value > 0).map(([value, unit]) => plural(value, unit.slice(0, -1))).join(", "),
  );
  $("#upcoming-kicker").textContent =
    left > 0 ? "The broadcast is due to begin in" : "The broadcast will begin shortly";
  $("#upcoming-note").textContent =
    view.phase === "lobby"
      ? "The delegations are gathering. This page shows the live picture by itself as soon as both sides go on air."
      : "This page shows the live picture by itself as soon as both sides go on air. Keep it open, or come back at the start.";
}

const CLOSED = {
  private: {
    mark: "lock",
    title: "The talks continue in private",
    text: "The public part of the summit is over; the broadcast has ended and will not resume.",
  },
  ended: {
    mark: "check",
    title: "The summit has ended",
    text: "The talks are over. The sides' readouts appear below as they are published.",
  },
  cancelled: {
    mark: "clock",
    title: "This summit was cancelled",
    text: "It will not take place as scheduled.",
  },
};

function renderClosed(view) {
  const closed = CLOSED[view.phase];
  if (!closed) return;
  $("#closed").dataset.phase = view.phase;
  $("#closed-mark").replaceChildren(icon(closed.mark));
  $("#closed-title").textContent = closed.title;
  $("#closed-text").textContent = closed.text;
}

function formatBytes(bytes) {
  if (bytes >= 1e9) return `${(bytes / 1e9).toFixed(2)} GB`;
  if (bytes >= 1e6) return `${(bytes / 1e6).toFixed(1)} MB`;
  if (bytes >= 1e3) return `${Math.round(bytes / 1e3)} kB`;
  return `${bytes} B`;
}

function renderAfter(view) {
  const readouts = view.phase === "ended" ? view.sides : [];
  const recordings = view.recordings || [];
  $("#after").hidden = readouts.length === 0 && recordings.length === 0;

  $("#readouts-section").hidden = readouts.length === 0;
  $("#readouts").replaceChildren(
    ...readouts.map((side, index) => {
      const readout = view.readouts.find((r) => r.side_name === side.name);
      const status = !readout ? "pending" : readout.no_statement ? "none" : "statement";
      return h(
        "article.readout",
        { data: { side: String(index), name: side.name, status } },
        h("header.readout-head", {}, h("span.side-mark"), h("h3", { text: side.name })),
        status === "statement"
          ? h("blockquote.statement", { text: readout.statement })
          : h("p.readout-empty", {
              text: status === "none" ? "No statement" : "No readout published yet",
            }),
        readout
          ? h("p.readout-time", {
              text: `Published ${wallTime(readout.published_at, VIEWER_ZONE || "UTC").when}`,
            })
          : null,
      );
    }),
  );

  $("#recordings-section").hidden = recordings.length === 0;
  const bySide = view.sides
    .map((side, index) => ({
      side,
      index,
      video: recordings.find((r) => r.side === side.name && r.kind === "video"),
      audio: recordings.find((r) => r.side === side.name && r.kind === "audio"),
    }))
    .filter((entry) => entry.video || entry.audio);
  const shown = $("#recordings");
  const key = JSON.stringify(bySide.map((e) => [e.video?.sha256, e.audio?.sha256]));
  if (shown.dataset.key === key) return; // keep a recording that is playing as it is
  shown.dataset.key = key;
  shown.replaceChildren(...bySide.map(recordingCard));
}

function recordingCard({ side, index, video, audio }) {
  const file = (item, label, pictogramName) =>
    h(
      "div.file",
      { data: { kind: item.kind } },
      h(
        "a.download",
        { href: item.url, download: "", data: { kind: item.kind } },
        pictogram(pictogramName),
        h("span", { text: label }),
        h("span.size", { text: formatBytes(item.bytes) }),
      ),
      h(
        "div.sha-row",
        {},
        h("span.sha-label", { text: "SHA-256" }),
        h("code.sha", { title: "SHA-256 of the file", text: item.sha256 }),
      ),
    );
  return h(
    "article.recording",
    { data: { side: String(index), name: side.name } },
    video
      ? h("video.recording-video", { src: video.url, controls: true, preload: "metadata", playsInline: true })
      : null,
    h("header.readout-head", {}, h("span.side-mark"), h("h3", { text: side.name })),
    h(
      "div.files",
      {},
      video ? file(video, "Video (.mp4)", "download") : null,
      audio ? file(audio, "Audio only (.ogg)", "audio") : null,
    ),
    h("p.hint", { text: "Compare the SHA-256 with your download to check it is the original." }),
  );
}

function fatal() {
  $("#screen-loading").hidden = true;
  $("#public-grid").hidden = true;
  $("#screen-fatal").hidden = false;
  $("#state").dataset.view = "fatal";
  $("#fatal-text").textContent = "Check the address you were given: it may be mistyped or out of date.";
  $("#phase-banner").hidden = true;
  state.events.stop();
}

function setConnection(value) {
  const el = $("#connection");
  el.dataset.state = value;
  el.textContent = value === "online" ? "" : "Connection lost — reconnecting…";
}

function toast(text) {
  const el = $("#toast");
  el.textContent = text;
  el.classList.add("shown");
  clearTimeout(state.toastTimer);
  state.toastTimer = setTimeout(() => el.classList.remove("shown"), 2500);
}

// --- the live player -----------------------------------------------------------------

/** One side's picture and sound, labelled with its name and its local clock. */
class Feed {
  constructor(side, index) {
    this.video = h("video", { autoplay: true, playsInline: true, muted: true });
    this.video.muted = true; // the property: autoplay needs it
    const city = side.time_zone.split("/").at(-1).replace(/_/g, " ");
    this.el = h(
      "figure.tile.feed",
      { data: { side: String(index), name: side.name } },
      this.video,
      h("div.status", { text: "Connecting…" }),
      h(
        "figcaption.label",
        {},
        h("span.side-mark"),
        h("span.name", { text: side.name }),
        h("span.meta", { data: { clockZone: side.time_zone, clockCity: city } }),
      ),
    );
    this.video.addEventListener("playing", () => this.el.classList.add("playing"));
    this.video.addEventListener("emptied", () => this.el.classList.remove("playing"));
  }

  play() {
    this.video.play().catch(() => {});
  }
}

/** Standard WHEP (client offer, server answer): two video + two audio, one pair a side. */
class WhepPlayer {
  path = "whep";

  constructor(url, feeds) {
    this.url = url;
    this.feeds = feeds;
    this.pc = null;
    this.location = null;
    this.closed = false;
  }

  async start(onTrouble) {
    const pc = new RTCPeerConnection({ iceServers: await api.iceServers(), bundlePolicy: "max-bundle" });
    this.pc = pc;
    this.pairs = this.feeds.map((feed) => {
      const video = pc.addTransceiver("video", { direction: "recvonly" });
      const audio = pc.addTransceiver("audio", { direction: "recvonly" });
      feed.video.srcObject = new MediaStream([video.receiver.track, audio.receiver.track]);
      return { video, audio };
    });
    pc.addEventListener("connectionstatechange", () => {
      if (!this.closed && pc.connectionState === "failed") onTrouble("the connection failed");
    });
    await negotiate(this, pc, (sdp) => api.whep(this.url, sdp));
    if (this.closed) return this.release();
    for (const feed of this.feeds) feed.play();
  }

  async frames() {
    return Promise.all(
      (this.pairs || []).map(async ({ video }) => {
        if (this.closed) return 0;
        const report = await video.receiver.getStats();
        for (const entry of report.values()) {
          if (entry.type === "inbound-rtp" && entry.kind === "video") return entry.framesDecoded || 0;
        }
        return 0;
      }),
    );
  }

  describe() {
    return {
      location: this.location,
      connectionState: this.pc?.connectionState || "new",
    };
  }

  /** Ends the WHEP session: closes the connection and deletes the resource. */
  stop() {
    this.closed = true;
    this.pc?.close();
    return this.release();
  }

  release() {
    const location = this.location;
    this.location = null;
    if (!location) return Promise.resolve();
    return api.release(location).catch(() => {});
  }
}

let hlsLoaded = null;

function loadHls() {
  hlsLoaded ||= new Promise((resolve, reject) => {
    if (window.Hls) return resolve(window.Hls);
    const script = h("script", { src: HLS_SCRIPT });
    script.addEventListener("load", () => resolve(window.Hls));
    script.addEventListener("error", () => {
      hlsLoaded = null;
      reject(new Error("hls.js could not be loaded"));
    });
    document.head.append(script);
  });
  return hlsLoaded;
}

/** Each side's HLS playlist through hls.js (or the browser's own HLS, where it has one). */
class HlsPlayer {
  path = "hls";

  constructor(streams, feeds) {
    this.streams = streams;
    this.feeds = feeds;
    this.instances = [];
    this.timers = [];
    this.closed = false;
  }

  async start() {
    const Hls = await loadHls().catch(() => null);
    this.feeds.forEach((feed, index) => {
      const url = this.streams[index]?.hls;
      if (!url || this.closed) return;
      if (Hls?.isSupported()) this.attach(Hls, feed, url, index);
      else if (feed.video.canPlayType("application/vnd.apple.mpegurl")) {
        feed.video.src = url;
        feed.play();
      } else throw new Error("this browser cannot play HLS");
    });
  }

  attach(Hls, feed, url, index) {
    const hls = new Hls(HLS_CONFIG);
    this.instances[index] = hls;
    hls.on(Hls.Events.MANIFEST_PARSED, () => feed.play());
    hls.on(Hls.Events.ERROR, (_event, data) => {
      if (!data.fatal || this.closed) return;
      // The playlist may not exist for a moment after go-live: start again.
      hls.destroy();
      this.timers[index] = setTimeout(() => {
        if (!this.closed) this.attach(Hls, feed, url, index);
      }, HLS_RETRY_MS);
    });
    hls.loadSource(url);
    hls.attachMedia(feed.video);
  }

  async frames() {
    return this.feeds.map((feed) => feed.video.getVideoPlaybackQuality?.().totalVideoFrames || 0);
  }

  describe() {
    return null;
  }

  async stop() {
    this.closed = true;
    this.timers.forEach(clearTimeout);
    this.instances.forEach((hls) => hls?.destroy());
    for (const feed of this.feeds) {
      feed.video.removeAttribute("src");
      feed.video.load();
    }
  }
}

function syncPlayer(view) {
  if (view.live && !state.player) startPlayer(view);
  else if (!view.live && state.player) stopPlayer();
}

function startPlayer(view) {
  const feeds = view.sides.map((side, index) => new Feed(side, index));
  $("#feeds").replaceChildren(...feeds.map((feed) => feed.el));
  $("#feeds").dataset.count = String(feeds.length);
  state.paused = false;
  applyPlayback(feeds);
  const session = { feeds, player: null };
  state.player = session;
  const useHls = FORCED_PATH === "hls" || !view.whep || !window.RTCPeerConnection;
  (useHls ? startHls(session, view) : startWhep(session, view)).catch(() => {});
}

async function startWhep(session, view) {
  for (let attempt = 1; attempt <= WHEP_ATTEMPTS; attempt++) {
    const player = new WhepPlayer(view.whep, session.feeds);
    session.player = player;
    showPath(player);
    const fallBack = (reason) => {
      if (state.player !== session || session.player !== player) return;
      console.warn(`WHEP: ${reason}; playing HLS instead`);
      player.stop();
      startHls(session, state.view);
    };
    try {
      await player.start(fallBack);
    } catch (error) {
      player.stop();
      if (state.player !== session) return;
      if (attempt < WHEP_ATTEMPTS) {
        await new Promise((resolve) => setTimeout(resolve, 800));
        continue;
      }
      return fallBack(error.message);
    }
    setTimeout(async () => {
      const frames = await player.frames();
      if (!frames.some((count) => count > 0)) fallBack(`no picture within ${WHEP_FIRST_FRAME_MS / 1000} s`);
    }, WHEP_FIRST_FRAME_MS);
    return;
  }
}

async function startHls(session, view) {
  if (state.player !== session || !view?.live) return;
  for (const feed of session.feeds) feed.video.srcObject = null;
  const player = new HlsPlayer(view.streams, session.feeds);
  session.player = player;
  showPath(player);
  await player.start();
}

function stopPlayer() {
  const session = state.player;
  state.player = null;
  session?.player?.stop();
  for (const feed of session?.feeds || []) feed.video.srcObject = null;
  $("#feeds").replaceChildren();
  $("#player").dataset.path = "";
  if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
}

function showPath(player) {
  $("#player").dataset.path = player.path;
  $("#player-path").textContent = player.path === "whep" ? "WebRTC · real time" : "HLS";
}

function applyPlayback(feeds = state.player?.feeds || []) {
  for (const feed of feeds) {
    feed.video.muted = state.muted;
    if (state.paused) feed.video.pause();
    else feed.play();
  }
  const player = $("#player");
  player.dataset.playing = String(!state.paused);
  player.dataset.muted = String(state.muted);
  iconButton($("#play"), state.paused ? "play" : "pause", state.paused ? "Play" : "Pause");
  iconButton($("#mute"), state.muted ? "volumeOff" : "volume", state.muted ? "Unmute" : "Mute");
  $("#unmute").hidden = !state.muted;
}

async function share() {
  const url = location.origin + location.pathname;
  if (navigator.share) {
    try {
      await navigator.share({ title: state.view?.title || document.title, url });
      return;
    } catch (error) {
      if (error?.name === "AbortError") return;
    }
  }
  await copyLink();
}

async function copyLink() {
  const input = $("#page-link");
  try {
    await navigator.clipboard.writeText(input.value);
  } catch {
    input.select();
    document.execCommand?.("copy");
  }
  toast("Link copied");
}

function wireControls() {
  $("#page-link").value = location.origin + location.pathname;
  iconButton($("#copy-link"), "copy", "Copy");
  $("#copy-link").addEventListener("click", copyLink);
  $("#unmute").replaceChildren(pictogram("volumeOff"), h("span", { text: "Sound is off — click to listen" }));
  $("#unmute").addEventListener("click", () => {
    state.muted = false;
    applyPlayback();
  });
  $("#play").addEventListener("click", () => {
    state.paused = !state.paused;
    applyPlayback();
  });
  $("#mute").addEventListener("click", () => {
    state.muted = !state.muted;
    applyPlayback();
  });
  iconButton($("#share"), "share", "Share");
  $("#share").addEventListener("click", share);
  iconButton($("#fullscreen"), "fullscreen", "Full screen");
  $("#fullscreen").addEventListener("click", () => {
    if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
    else $("#player").requestFullscreen?.().catch(() => {});
  });
  applyPlayback([]);
  addEventListener("pagehide", () => state.player?.player?.stop());
}

// --- the event stream ------------------------------------------------------------------

function openEvents() {
  const reread = () => {
    state.refreshDelay = REFRESH_MIN_MS;
    refresh();
  };
  state.events = new EventStream({
    url: () => api.eventsUrl(),
    // A phase change, a published readout or sealed recordings: read the view again.
    handlers: { phase: reread, readout: reread, recordings: reread },
    onUp: () => {
      setConnection("online");
      refresh(); // anything missed while away
    },
    onDown: () => setConnection("reconnecting"),
    retry: { first: 3000, longest: 3000 },
  });
  state.events.open();
}

// --- for the tests ----------------------------------------------------------------------

window.summitryPublic = {
  /** Which path plays, and per side the frames decoded (WHEP) or shown (HLS). */
  async stats() {
    const session = state.player;
    const player = session?.player || null;
    const frames = player ? await player.frames() : [];
    return {
      phase: state.phase,
      path: player?.path || null,
      whep: player?.path === "whep" ? player.describe() : null,
      sides: (session?.feeds || []).map((feed, index) => ({
        side: feed.el.dataset.name,
        framesDecoded: frames[index] || 0,
        playing: !feed.video.paused && feed.video.readyState >= 2,
        muted: feed.video.muted,
      })),
    };
  },
};

wireControls();
openEvents();
refresh();
state.ticker = setInterval(tick, 1000);
