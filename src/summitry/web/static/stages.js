// The stages of the room page, as a table like the server's phase machine:
// stage -> event -> next stage. The events are our own presence as the server reports it
// (admitted, waiting, denied, left, removed), the summit being `over`, and what the
// person does: `join`, a join that `failed`, `leave`. An event that a stage does not list
// changes nothing. The page leaves `loading` for the stage its first load says
// (`firstStage`); any stage ends in `fatal` on an error such as a grant that no longer
// works, and nothing leads out of `fatal`.

import { OVER } from "./phases.js";

export const STAGES = {
  loading: { denied: "denied", removed: "fatal" },
  lobby: { join: "joining", waiting: "waiting", denied: "denied", removed: "fatal" },
  joining: {
    admitted: "call",
    waiting: "waiting",
    denied: "denied",
    failed: "lobby",
    removed: "fatal",
  },
  waiting: { admitted: "call", denied: "denied", removed: "fatal" },
  denied: { admitted: "call", waiting: "waiting", removed: "fatal" },
  left: { join: "joining", denied: "denied", removed: "fatal" },
  over: { denied: "denied", removed: "fatal" },
  call: { leave: "left", left: "left", over: "over", denied: "denied", removed: "fatal" },
  fatal: {},
};

/** The stage after `event` in `stage`, or null when the event changes nothing there. */
export function nextStage(stage, event) {
  return STAGES[stage][event] || null;
}

/** The stage the page opens in, from our presence and the phase at its first load. */
export function firstStage(presence, phase) {
  if (OVER.has(phase)) return "over";
  return presence === "waiting" || presence === "denied" ? presence : "lobby";
}
