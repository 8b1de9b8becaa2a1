// The coordinator's console: the phase controls, the lobby's waiting list, the own side's
// roster and invitations, what the other side is doing, and the audit receipt: the head of
// the summit's audit trail signed by the server, fetched again at every phase change, for
// the coordinator to keep (`summitry audit verify SUMMIT --receipt FILE` checks the trail
// against it).

import { ApiError } from "./api.js";
import { fingerprint } from "./e2ee.js";
import { phaseOf } from "./phases.js";
import { h, icon, PRESENCE, ROLES } from "./ui.js";

const ACTIONS = [
  {
    action: "open_lobby",
    label: "Open lobby",
    working: "Opening",
    hint: "Let people in to wait for admission",
  },
  {
    action: "consent",
    label: "Consent to go live",
    working: "Consenting",
    hint: "The broadcast starts when both sides consent",
    kind: "live",
  },
  {
    action: "skip_public",
    label: "Skip public part",
    working: "Going private",
    hint: "Go straight to private talks",
  },
  {
    action: "cut",
    label: "Cut to private",
    working: "Cutting",
    hint: "Stops the broadcast at once; cannot be undone",
    kind: "cut",
  },
  {
    action: "end",
    label: "End summit",
    working: "Ending",
    hint: "Closes the call for everyone",
    confirm: true,
  },
  {
    action: "cancel",
    label: "Cancel summit",
    working: "Cancelling",
    hint: "Calls the summit off",
    confirm: true,
  },
];

// Coordinators come with the summit (the operator makes them): a console invites the rest.
const INVITE_ROLES = ["principal", "delegate", "interpreter", "observer"];

const HEARTBEAT_MS = 3000;

export class CoordinatorConsole {
  /** `app`: {api, state, setSummit(view), resync()} from the room page. */
  constructor(root, app) {
    this.root = root;
    this.app = app;
    this.armed = null; // the action waiting for its confirming second click
    this.pending = null; // the action sent and not answered yet
    this.build();
    // The console's heartbeat: while the summit is live, a console silent for 10 s is a
    // lost control connection and the server cuts the broadcast.
    this.heartbeat = setInterval(() => {
      this.app.api.post("/heartbeat").catch(() => {});
    }, HEARTBEAT_MS);
    this.app.api.post("/heartbeat").catch(() => {});
  }

  get state() {
    return this.app.state;
  }

  build() {
    this.phaseBox = h("div.phase-box");
    this.consentBox = h("div.consents");
    this.actionButtons = new Map(
      ACTIONS.map((spec) => [
        spec.action,
        h(`button.action${spec.kind ? `.action-${spec.kind}` : ""}`, {
          type: "button",
          data: { action: spec.action },
          disabled: true,
          title: spec.hint,
          text: spec.label,
          onclick: () => this.act(spec),
        }),
      ]),
    );
    this.actionsBox = h("div.actions", {}, [...this.actionButtons.values()]);
    this.actionMessage = h("p.console-message", { role: "alert", id: "action-message" });
    this.waitingList = h("ul.people.waiting-list", { id: "waiting-list" });
    this.waitingCount = h("span.count", { text: "0" });
    this.ownTitle = h("h2");
    this.ownList = h("ul.people", { id: "own-roster" });
    this.otherTitle = h("h2");
    this.otherConsent = h("p.other-consent");
    this.otherList = h("ul.people", { id: "other-roster" });
    this.rosterMessage = h("p.console-message", { role: "alert" });
    this.receipt = null; // the newest receipt of the audit trail's head
    this.receiptVersion = null; // the summit version it was asked for
    this.receiptButton = h("button.small", {
      type: "button",
      id: "receipt-download",
      disabled: true,
      title: "The server's signed record of the audit trail so far: keep it",
      onclick: () => this.downloadReceipt(),
      text: "Download audit receipt",
    });
    this.receiptNote = h("p.hint", { id: "receipt-note", text: "Fetching the audit receipt…" });
    this.keyChangeList = h("ul.people", { id: "key-changes" });
    this.keyChangeMessage = h("p.console-message", { role: "alert" });
    this.keyChangePanel = h(
      "section.panel.panel-keys",
      { id: "console-keys", hidden: true },
      h("h2", { text: "New keys to accept" }),
      h("p.hint", {
        text: "Before you accept, ask the person by another channel (a call, in the room) to read you the fingerprint their screen shows.",
      }),
      this.keyChangeList,
      this.keyChangeMessage,
    );

    this.inviteName = h("input", {
      id: "invite-name",
      name: "name",
      required: true,
      maxLength: 120,
      autocomplete: "off",
      placeholder: "Full name",
    });
    this.inviteRole = h(
      "select",
      { id: "invite-role", name: "role" },
      INVITE_ROLES.map((role) => h("option", { value: role, text: ROLES[role] })),
    );
    this.inviteResult = h("div.invite-result", { id: "invite-result", hidden: true });
    this.inviteMessage = h("p.console-message", { role: "alert" });
    const inviteForm = h(
      "form.invite-form",
      { id: "invite-form", onsubmit: (event) => this.invite(event) },
      h("label", {}, "Name", this.inviteName),
      h("label", {}, "Role", this.inviteRole),
      h("button.primary", { type: "submit", id: "invite-submit", text: "Invite" }),
    );

    this.root.replaceChildren(
      h("div.console-head", {}, h("h1", { text: "Coordinator console" })),
      h(
        "section.panel",
        { id: "console-phase" },
        h("h2", { text: "Phase" }),
        this.phaseBox,
        this.consentBox,
        this.actionsBox,
        this.actionMessage,
        h("div.receipt", { id: "console-receipt" }, this.receiptButton, this.receiptNote),
      ),
      this.keyChangePanel,
      h(
        "section.panel.panel-waiting",
        { id: "console-waiting" },
        h("h2", {}, "Waiting for admission ", this.waitingCount),
        this.waitingList,
      ),
      h("section.panel", { id: "console-own" }, this.ownTitle, this.ownList, this.rosterMessage),
      h(
        "section.panel",
        { id: "console-invite" },
        h("h2", { text: "Invite to your side" }),
        inviteForm,
        this.inviteMessage,
        this.inviteResult,
      ),
      h(
        "section.panel",
        { id: "console-other" },
        this.otherTitle,
        this.otherConsent,
        this.otherList,
      ),
    );
  }

  render() {
    const { summit, me, people } = this.state;
    if (!summit || !me) return;
    this.renderActions(summit, me);
    if (summit.version !== this.receiptVersion) this.fetchReceipt(summit.version);
    // Lists are rebuilt only when what they show changed, so their buttons stay put.
    const signature = JSON.stringify([
      [...people.values()].map((p) => [p.id, p.name, p.role, p.presence]),
      summit.sides.map((s) => [s.id, s.consented]),
      this.armed,
    ]);
    if (signature === this.signature) return;
    this.signature = signature;
    this.renderPeople(summit, me, people);
  }

  /** Participants whose browser has a new key: anyone but them may accept it. */
  async renderKeyChanges() {
    const me = this.state.me?.participant.id;
    const changes = this.app.keyChanges();
    const signature = JSON.stringify(changes.map((c) => [c.participant_id, c.public_key]));
    if (signature === this.keySignature) return;
    this.keySignature = signature;
    const sides = new Map((this.state.summit?.sides || []).map((s) => [s.id, s.name]));
    const items = await Promise.all(
      changes.map(async (change) =>
        h(
          "li.person",
          { data: { name: change.name } },
          h(
            "div.person-main",
            {},
            h("span.person-name", { text: change.name }),
            h("span.person-role", {
              text: `${sides.get(change.side_id) || ""} · new key ${await fingerprint(change.public_key)} (was ${await fingerprint(change.pinned_key)})`,
            }),
          ),
          change.participant_id === me
            ? h("span.hint", { text: "Another coordinator accepts yours." })
            : h(
                "div.person-actions",
                {},
                h("button.small.primary.accept-key", {
                  type: "button",
                  text: "Accept new key",
                  onclick: () => this.acceptKey(change),
                }),
              ),
        ),
      ),
    );
    const grew = items.length > this.keyChangeList.children.length;
    this.keyChangeList.replaceChildren(...items);
    this.keyChangePanel.hidden = changes.length === 0;
    if (grew) this.keyChangePanel.scrollIntoView({ block: "nearest" }); // it needs a decision
  }

  async acceptKey(change) {
    this.say(this.keyChangeMessage, "");
    try {
      await this.app.api.post(`/e2ee/key-changes/${change.participant_id}/acceptance`, {
        public_key: change.public_key,
      });
      this.say(this.keyChangeMessage, `${change.name}'s new key is accepted; they get the next media key.`);
      await this.app.refreshKeys();
    } catch (error) {
      this.say(this.keyChangeMessage, messageOf(error), "error");
    }
  }

  renderActions(summit, me) {
    const own = summit.sides.find((s) => s.id === me.side_id);
    const phase = phaseOf(summit.phase);

    this.phaseBox.replaceChildren(
      h("span.phase-pill", { data: { phase: summit.phase }, text: phase.label }),
      h("span.version", { text: `version ${summit.version}` }),
    );

    const needsBoth = summit.go_live_consent !== "either";
    this.consentBox.replaceChildren(
      h("p.consent-rule", {
        text: needsBoth
          ? "Going live needs the consent of both coordinators."
          : "Going live needs the consent of either coordinator.",
      }),
      ...summit.sides.map((side) =>
        h(
          "div.consent-row",
          { data: { side: side.id, consented: String(side.consented) } },
          h("span.consent-side", { text: side.name + (side.id === me.side_id ? " (you)" : "") }),
          h(
            "span.consent-state",
            {},
            side.consented ? icon("check") : null,
            side.consented ? "Consented" : "Not yet",
          ),
        ),
      ),
    );

    // The buttons stay the same elements (a click must never land between two renders).
    const allowed = new Set(summit.allowed_actions || []);
    for (const spec of ACTIONS) {
      const button = this.actionButtons.get(spec.action);
      const alreadyConsented =
        spec.action === "consent" && own?.consented && summit.phase === "lobby";
      const armed = this.armed === spec.action;
      const pending = this.pending === spec.action;
      button.disabled =
        !allowed.has(spec.action) || Boolean(alreadyConsented) || Boolean(this.pending);
      button.classList.toggle("armed", armed);
      button.classList.toggle("pending", pending);
      button.textContent = pending
        ? `${spec.working}…`
        : armed
          ? `Confirm: ${spec.label.toLowerCase()}`
          : alreadyConsented
            ? "You consented"
            : spec.label;
    }
  }

  renderPeople(summit, me, people) {
    const own = summit.sides.find((s) => s.id === me.side_id);
    const other = summit.sides.find((s) => s.id !== me.side_id);
    const mine = [...people.values()].filter((p) => p.side_id === me.side_id);
    const waiting = mine.filter((p) => p.presence === "waiting");
    this.waitingCount.textContent = String(waiting.length);
    this.waitingCount.classList.toggle("hot", waiting.length > 0);
    this.waitingList.replaceChildren(
      ...(waiting.length
        ? waiting.map((p) =>
            this.person(p, [
              h("button.small.primary.admit", {
                type: "button",
                text: "Admit",
                onclick: () => this.presence(p, "admit"),
              }),
              h("button.small.deny", {
                type: "button",
                text: "Deny",
                onclick: () => this.presence(p, "deny"),
              }),
            ]),
          )
        : [h("li.empty", { text: "Nobody is waiting." })]),
    );

    this.ownTitle.textContent = `Your side — ${own?.name || ""}`;
    const order = { admitted: 0, waiting: 1, invited: 2, denied: 3, left: 4, removed: 5 };
    const sorted = (list) =>
      [...list].sort((a, b) => (order[a.presence] ?? 9) - (order[b.presence] ?? 9) || a.name.localeCompare(b.name));
    this.ownList.replaceChildren(
      ...sorted(mine).map((p) => {
        const actions = [];
        if (p.id !== me.participant.id && p.presence !== "removed") {
          if (p.presence === "denied") {
            actions.push(
              h("button.small", { type: "button", text: "Admit", onclick: () => this.presence(p, "admit") }),
            );
          }
          actions.push(
            h("button.small", { type: "button", text: "Link", title: "Show the invitation link", onclick: () => this.showLink(p) }),
          );
          if (p.role !== "coordinator") {
            actions.push(
              h(
                `button.small.reissue${this.armed === `reissue:${p.id}` ? ".armed" : ""}`,
                { type: "button", title: "A new link; the old one stops working", onclick: () => this.reissue(p) },
                this.armed === `reissue:${p.id}` ? "Confirm" : "New link",
              ),
              h(
                `button.small.remove${this.armed === `remove:${p.id}` ? ".armed" : ""}`,
                { type: "button", onclick: () => this.remove(p) },
                this.armed === `remove:${p.id}` ? "Confirm" : "Remove",
              ),
            );
          }
        }
        return this.person(p, actions);
      }),
    );

    this.otherTitle.textContent = `Other side — ${other?.name || ""}`;
    this.otherConsent.replaceChildren(
      other?.consented ? icon("check") : icon("clock"),
      other?.consented ? "Has consented to go live" : "Has not consented to go live",
    );
    this.otherConsent.dataset.consented = String(Boolean(other?.consented));
    const theirs = [...people.values()].filter((p) => p.side_id !== me.side_id && p.presence !== "removed");
    this.otherList.replaceChildren(
      ...(theirs.length ? sorted(theirs).map((p) => this.person(p, [])) : [h("li.empty", { text: "Nobody yet." })]),
    );
  }

  person(p, actions) {
    return h(
      "li.person",
      { data: { participant: p.id, name: p.name, presence: p.presence } },
      h(
        "div.person-main",
        {},
        h("span.person-name", { text: p.name + (p.id === this.state.me.participant.id ? " (you)" : "") }),
        h("span.person-role", { text: ROLES[p.role] || p.role }),
      ),
      h("span.presence", { data: { presence: p.presence }, text: PRESENCE[p.presence] || p.presence }),
      actions.length ? h("div.person-actions", {}, actions) : null,
    );
  }

  async act(spec) {
    if (spec.confirm && this.armed !== spec.action) {
      this.arm(spec.action);
      return;
    }
    this.armed = null;
    this.pending = spec.action;
    this.say(this.actionMessage, "");
    this.render();
    try {
      const view = await this.app.api.act(spec.action, this.state.summit.version);
      this.app.setSummit(view);
    } catch (error) {
      this.say(this.actionMessage, messageOf(error), "error");
      if (error instanceof ApiError && error.code === "stale_version") this.app.resync();
    } finally {
      this.pending = null;
    }
    this.render();
  }

  arm(key) {
    this.armed = key;
    clearTimeout(this.armTimer);
    this.armTimer = setTimeout(() => {
      this.armed = null;
      this.render();
    }, 4000);
    this.render();
  }

  async presence(p, verb) {
    this.say(this.rosterMessage, "");
    try {
      const view = await this.app.api.post(`/participants/${p.id}/${verb}`);
      this.app.updatePerson(view);
    } catch (error) {
      this.say(this.rosterMessage, messageOf(error), "error");
    }
  }

  /** Runs `work` on the second click of an armed button (`key`), and says what failed. */
  async confirmed(key, work) {
    if (this.armed !== key) {
      this.arm(key);
      return;
    }
    this.armed = null;
    try {
      await work();
    } catch (error) {
      this.say(this.rosterMessage, messageOf(error), "error");
    }
    this.render();
  }

  remove(p) {
    return this.confirmed(`remove:${p.id}`, async () => {
      this.app.updatePerson(await this.app.api.del(`/participants/${p.id}`));
      this.say(this.rosterMessage, `${p.name} was removed; their link no longer works.`);
    });
  }

  reissue(p) {
    return this.confirmed(`reissue:${p.id}`, async () => {
      const invite = await this.app.api.post(`/participants/${p.id}/invitation`);
      this.showResult(invite.participant, invite.link);
      this.say(this.rosterMessage, `${p.name} has a new link; the old one no longer works.`);
    });
  }

  async invite(event) {
    event.preventDefault();
    const name = this.inviteName.value.trim();
    if (!name) return;
    this.say(this.inviteMessage, "");
    const submit = event.target.querySelector("button[type=submit]");
    submit.disabled = true;
    try {
      const invite = await this.app.api.post("/participants", { name, role: this.inviteRole.value });
      this.app.updatePerson(invite.participant);
      this.inviteName.value = "";
      this.showResult(invite.participant, invite.link);
    } catch (error) {
      this.say(this.inviteMessage, messageOf(error), "error");
    } finally {
      submit.disabled = false;
    }
  }

  async showLink(p) {
    try {
      const invitation = await this.app.api.get(`/participants/${p.id}/invitation`);
      this.showResult(p, invitation.link);
    } catch (error) {
      this.say(this.rosterMessage, messageOf(error), "error");
    }
  }

  showResult(participant, link) {
    const field = h("input.link", { id: "invite-link", readOnly: true, value: link, "aria-label": "Invitation link" });
    field.value = link;
    const copy = h(
      "button.small.copy",
      {
        type: "button",
        id: "invite-copy",
        onclick: async () => {
          await copyText(field, link);
          copy.replaceChildren(icon("check"), "Copied");
        },
      },
      icon("copy"),
      "Copy",
    );
    const calendar = h("button.small", {
      type: "button",
      text: "Calendar (.ics)",
      onclick: () => this.downloadIcs(participant),
    });
    this.inviteResult.replaceChildren(
      h("p", {}, "Invitation for ", h("strong", { text: participant.name }), ` (${ROLES[participant.role] || participant.role})`),
      h("div.link-row", {}, field, copy),
      h("p.hint", { text: "Send it through a trusted channel: whoever has the link can knock as this person." }),
      calendar,
    );
    this.inviteResult.dataset.participant = participant.id;
    this.inviteResult.hidden = false;
  }

  async downloadIcs(p) {
    try {
      const response = await this.app.api.raw("GET", `/participants/${p.id}/invitation.ics`);
      saveFile(await response.blob(), `summit-${this.state.summitId}.ics`);
    } catch (error) {
      this.say(this.inviteMessage, messageOf(error), "error");
    }
  }

  /** The receipt of the trail's head after the summit reached `version`. */
  async fetchReceipt(version) {
    this.receiptVersion = version;
    try {
      const receipt = await this.app.api.get("/audit/receipt");
      if (version !== this.receiptVersion) return; // a newer one is on its way
      this.receipt = receipt;
      this.receiptButton.disabled = false;
      this.receiptButton.dataset.seq = String(receipt.seq);
      this.say(
        this.receiptNote,
        `Signed by the server at record ${receipt.seq} of the audit trail (${receipt.hash.slice(0, 12)}…). ` +
          "Keep it: no rewrite of the trail up to here can then go unnoticed.",
      );
    } catch (error) {
      if (version === this.receiptVersion) this.say(this.receiptNote, messageOf(error), "error");
    }
  }

  downloadReceipt() {
    const { receipt } = this;
    if (!receipt) return;
    const text = `${JSON.stringify(receipt, null, 2)}\n`;
    saveFile(new Blob([text], { type: "application/json" }), `summitry-receipt-${receipt.summit}-${receipt.seq}.json`);
  }

  say(el, text, kind = "info") {
    el.textContent = text;
    el.dataset.kind = kind;
  }
}

/** Saves `blob` as a file named `name` through the browser's downloads. */
function saveFile(blob, name) {
  const url = URL.createObjectURL(blob);
  const a = h("a", { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

function messageOf(error) {
  return error instanceof ApiError ? error.message : String(error?.message || error);
}

async function copyText(field, text) {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    field.select();
    document.execCommand?.("copy");
  }
}
