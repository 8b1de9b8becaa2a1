// The summit's phases as people read them, defined once for every page: what the banner
// says to the participants (room page and console) and to the public, and which view
// the public page shows.

import { $ } from "./ui.js";

export const PHASES = {
  scheduled: {
    label: "Scheduled",
    detail: "the lobby is not open yet",
    public: { label: "Upcoming", detail: "not started yet", view: "upcoming" },
  },
  lobby: {
    label: "Lobby",
    detail: "not broadcast",
    public: { label: "Upcoming", detail: "the delegations are gathering", view: "upcoming" },
  },
  public: {
    label: "Live",
    detail: "broadcasting to the public",
    public: { label: "Live", detail: "broadcasting now", view: "live" },
  },
  private: {
    label: "Private",
    detail: "private — not broadcast",
    public: { label: "Private", detail: "the talks continue in private", view: "private" },
  },
  ended: {
    label: "Ended",
    detail: "the summit is over",
    public: { label: "Ended", detail: "the summit is over", view: "ended" },
  },
  cancelled: {
    label: "Cancelled",
    detail: "the summit was cancelled",
    public: { label: "Cancelled", detail: "the summit will not take place", view: "cancelled" },
  },
};

/** The phases after which nothing more happens in the summit. */
export const OVER = new Set(["ended", "cancelled"]);

/** The words for `phase`; a phase this page does not know is shown by its name. */
export function phaseOf(phase) {
  return PHASES[phase] || { label: phase, detail: "", public: { label: phase, detail: "", view: "upcoming" } };
}

/** The phase banner at the top of the room and the public page. */
export function showPhase(phase, label, detail) {
  $("#phase-banner").dataset.phase = phase;
  $("#phase-label").textContent = label.toUpperCase();
  $("#phase-detail").textContent = detail;
}
