// Small DOM helpers, icons, role and time formatting, and the video tile.

/** h("div.tile.local", {data: {participant: id}, onclick}, child, "text") */
export function h(tag, props = {}, ...children) {
  const [name, ...classes] = tag.split(".");
  const el = document.createElement(name || "div");
  if (classes.length) el.classList.add(...classes);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "data") Object.assign(el.dataset, value);
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "text") el.textContent = value;
    else if (key in el && typeof value !== "string") el[key] = value;
    else el.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export const $ = (selector, root = document) => root.querySelector(selector);

const SVG = "http://www.w3.org/2000/svg";
const ICONS = {
  mic: "M12 14a3 3 0 0 0 3-3V5a3 3 0 0 0-6 0v6a3 3 0 0 0 3 3zm5-3a5 5 0 0 1-10 0H5a7 7 0 0 0 6 6.92V21h2v-3.08A7 7 0 0 0 19 11h-2z",
  micOff:
    "M19 11h-2c0 .74-.16 1.44-.45 2.07l1.46 1.46A6.96 6.96 0 0 0 19 11zM15 11V5a3 3 0 0 0-5.94-.6L15 10.34V11zM4.27 3 3 4.27l6 6V11a3 3 0 0 0 4.18 2.76l1.53 1.53A5 5 0 0 1 7 11H5a7 7 0 0 0 6 6.92V21h2v-3.08a6.9 6.9 0 0 0 2.96-1.07L19.73 21 21 19.73 4.27 3z",
  cam: "M17 10.5V7a1 1 0 0 0-1-1H4a1 1 0 0 0-1 1v10a1 1 0 0 0 1 1h12a1 1 0 0 0 1-1v-3.5l4 4v-11l-4 4z",
  camOff:
    "M21 6.5l-4 4V7a1 1 0 0 0-1-1H9.82L21 17.18V6.5zM3.27 2 2 3.27 4.73 6H4a1 1 0 0 0-1 1v10a1 1 0 0 0 1 1h12c.21 0 .39-.08.55-.18L19.73 21 21 19.73 3.27 2z",
  fullscreen: "M7 14H5v5h5v-2H7v-3zm-2-4h2V7h3V5H5v5zm12 7h-3v2h5v-5h-2v3zM14 5v2h3v3h2V5h-5z",
  leave:
    "M12 9c-1.6 0-3.15.25-4.6.72v3.1c0 .39-.23.74-.56.9-.98.49-1.87 1.12-2.66 1.85a1 1 0 0 1-1.41-.02L.29 13.08a1 1 0 0 1 0-1.41C3.34 8.78 7.46 7 12 7s8.66 1.78 11.71 4.67a1 1 0 0 1 0 1.41l-2.48 2.48a1 1 0 0 1-1.41.02 11.3 11.3 0 0 0-2.67-1.85.99.99 0 0 1-.56-.9v-3.1A15.4 15.4 0 0 0 12 9z",
  settings:
    "M19.14 12.94a7.1 7.1 0 0 0 0-1.88l2.03-1.58a.5.5 0 0 0 .12-.64l-1.92-3.32a.5.5 0 0 0-.61-.22l-2.39.96a7 7 0 0 0-1.62-.94l-.36-2.54A.5.5 0 0 0 13.9 2h-3.84a.5.5 0 0 0-.49.42l-.36 2.54c-.59.24-1.13.56-1.62.94l-2.39-.96a.5.5 0 0 0-.61.22L2.67 8.48a.5.5 0 0 0 .12.64l2.03 1.58a7.1 7.1 0 0 0 0 1.88l-2.03 1.58a.5.5 0 0 0-.12.64l1.92 3.32c.13.22.39.3.61.22l2.39-.96c.5.38 1.03.7 1.62.94l.36 2.54c.05.24.26.42.49.42h3.84c.25 0 .45-.18.49-.42l.36-2.54c.59-.24 1.13-.56 1.62-.94l2.39.96c.22.08.48 0 .61-.22l1.92-3.32a.5.5 0 0 0-.12-.64l-2.01-1.58zM12 15.6a3.6 3.6 0 1 1 0-7.2 3.6 3.6 0 0 1 0 7.2z",
  copy: "M16 1H4a2 2 0 0 0-2 2v14h2V3h12V1zm3 4H8a2 2 0 0 0-2 2v14a2 2 0 0 0 2 2h11a2 2 0 0 0 2-2V7a2 2 0 0 0-2-2zm0 16H8V7h11v14z",
  lock: "M18 8h-1V6A5 5 0 0 0 7 6v2H6a2 2 0 0 0-2 2v10a2 2 0 0 0 2 2h12a2 2 0 0 0 2-2V10a2 2 0 0 0-2-2zM9 6a3 3 0 0 1 6 0v2H9V6zm9 14H6V10h12v10zm-6-3a2 2 0 1 0 0-4 2 2 0 0 0 0 4z",
  check: "M9 16.17 4.83 12l-1.42 1.41L9 19 21 7l-1.41-1.41z",
  clock: "M12 2a10 10 0 1 0 0 20 10 10 0 0 0 0-20zm0 18a8 8 0 1 1 0-16 8 8 0 0 1 0 16zm.5-13H11v6l5.25 3.15.75-1.23-4.5-2.67V7z",
};

export function icon(name, extra = "") {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("class", `icon ${extra}`.trim());
  const path = document.createElementNS(SVG, "path");
  path.setAttribute("d", ICONS[name]);
  svg.append(path);
  return svg;
}

export const ROLES = {
  coordinator: "Coordinator",
  principal: "Principal",
  delegate: "Delegate",
  interpreter: "Interpreter",
  observer: "Observer",
};

export const PRESENCE = {
  invited: "Invited",
  waiting: "Waiting",
  admitted: "In the call",
  denied: "Denied",
  left: "Left",
  removed: "Removed",
};

/** The browser's time zone, or "" where it has none. */
export const VIEWER_ZONE = (() => {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || "";
  } catch {
    return "";
  }
})();

export function initials(name) {
  const parts = String(name || "?").trim().split(/\s+/);
  return ((parts[0]?.[0] || "") + (parts.length > 1 ? parts.at(-1)[0] : "")).toUpperCase();
}

/** "Mon 7 Dec 2026, 18:00" in `zone`, and the zone's UTC offset at that instant. */
export function wallTime(iso, zone) {
  const date = new Date(iso);
  const options = {
    weekday: "short",
    day: "numeric",
    month: "short",
    year: "numeric",
    hour: "2-digit",
    minute: "2-digit",
    hourCycle: "h23",
  };
  try {
    const when = new Intl.DateTimeFormat("en-GB", { ...options, timeZone: zone }).format(date);
    const offset =
      new Intl.DateTimeFormat("en-GB", { timeZone: zone, timeZoneName: "shortOffset" })
        .formatToParts(date)
        .find((p) => p.type === "timeZoneName")?.value || "";
    return { when, offset };
  } catch {
    return { when: date.toUTCString(), offset: "UTC" };
  }
}

export function clockTime(iso, zone) {
  return new Intl.DateTimeFormat("en-GB", {
    hour: "2-digit",
    minute: "2-digit",
    hourCycle: "h23",
    timeZone: zone,
  }).format(new Date(iso));
}

/** One person on the stage: video, or their initials when the camera is off. */
export class Tile {
  constructor({ participantId, name, sideName, sideIndex, role, local = false, onFullscreen }) {
    this.video = h("video", { autoplay: true, playsInline: true, muted: local });
    this.video.muted = local; // the property, not only the attribute
    this.micBadge = h("span.badge.mic-badge", { title: "Microphone off" }, icon("micOff"));
    this.bars = h("span.net-bars", { role: "img", data: { level: "unknown" } }, h("i"), h("i"), h("i"));
    this.nameEl = h("span.name", { text: local ? `${name} (you)` : name });
    this.el = h(
      "figure.tile",
      {
        data: {
          participant: participantId,
          name,
          role,
          side: String(sideIndex),
        },
      },
      this.video,
      h("div.avatar", {}, h("span", { text: initials(name) })),
      h("div.status", { text: local ? "" : "Connecting…" }),
      h(
        "figcaption.label",
        {},
        this.bars,
        this.micBadge,
        h("span.side-mark"),
        this.nameEl,
        h("span.meta", { text: `${sideName} · ${ROLES[role] || role}` }),
      ),
      h(
        "button.tile-fullscreen",
        { type: "button", title: "Full screen", "aria-label": `Show ${name} full screen`,
          onclick: () => onFullscreen?.(this.el) },
        icon("fullscreen"),
      ),
    );
    if (local) this.el.classList.add("local");
    this.video.addEventListener("loadeddata", () => this.setPlaying(true));
    this.video.addEventListener("emptied", () => this.setPlaying(false));
    this.stream = new MediaStream();
    this.video.srcObject = this.stream;
    this.receivers = {};
    this.meter = null;
  }

  setStream(stream) {
    this.stream = stream;
    this.video.srcObject = stream;
  }

  /** Shows the tracks of these receivers ({audio, video}); returns true if any changed. */
  setReceivers(receivers, makeMeter) {
    let changed = false;
    for (const kind of ["audio", "video"]) {
      const receiver = receivers[kind];
      if (this.receivers[kind] === receiver) continue;
      changed = true;
      const old = this.receivers[kind]?.track;
      if (old) this.stream.removeTrack(old);
      if (kind === "audio") {
        this.meter?.stop();
        this.meter = null;
      }
      if (receiver) {
        this.stream.addTrack(receiver.track);
        if (kind === "audio") this.meter = makeMeter(receiver.track);
      }
    }
    this.receivers = { ...receivers };
    if (changed) {
      this.video.srcObject = this.stream;
      this.video.play().catch(() => {});
    }
    return changed;
  }

  setMedia({ audio, video }) {
    this.el.classList.toggle("mic-off", !audio);
    this.el.classList.toggle("cam-off", !video);
    this.el.dataset.audio = String(audio);
    this.el.dataset.video = String(video);
  }

  /** Network bars: `level` good, fair, poor or none, and the figures behind it. */
  setQuality(level, label) {
    this.bars.dataset.level = level;
    this.bars.title = label;
    this.bars.setAttribute("aria-label", label);
  }

  setSpeaking(speaking) {
    this.el.classList.toggle("speaking", speaking);
  }

  setPlaying(playing) {
    this.el.classList.toggle("playing", playing);
  }

  remove() {
    this.meter?.stop();
    this.video.srcObject = null;
    this.el.remove();
  }
}
