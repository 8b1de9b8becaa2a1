"""The phase machine of a summit.

Theory of operation
-------------------
A summit moves through phases::

    scheduled --open lobby--> lobby --go live--> public --cut--> private --end--> ended
        |                       |  `--------skip public----------->^
        `------cancel-----------+--> cancelled

Invariants, enforced here and nowhere else:

* **Never public after private.** ``public`` is reachable only from ``lobby``, and
  ``lobby`` only from ``scheduled``; a summit that has been private carries
  ``private_since`` for ever and `apply` refuses to return a public state for it.
* Going live needs the consent of both sides' coordinators, or of either one when the
  summit is configured so. Consent is collected while in the lobby.
* Any event the table does not allow raises `IllegalTransition` and the state the caller
  holds is untouched (states are frozen values).
* Every accepted event bumps ``version``, so a caller that acted on an older version can
  be refused before it changes anything (two coordinators cutting at once cut once).

The machine does no I/O. Time comes in as ``now``; what the world must do comes out as
effects that the orchestrator carries out in order.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from summitry.domain.errors import IllegalTransition, InvalidInput
from summitry.domain.model import GoLiveConsent


class Phase(enum.StrEnum):
    SCHEDULED = "scheduled"
    LOBBY = "lobby"
    PUBLIC = "public"
    PRIVATE = "private"
    ENDED = "ended"
    CANCELLED = "cancelled"

    @property
    def is_over(self) -> bool:
        return self in (Phase.ENDED, Phase.CANCELLED)


class CutReason(enum.StrEnum):
    COORDINATOR = "coordinator"
    PLANNED_END = "planned_end"
    BROADCAST_FAILURE = "broadcast_failure"
    CONTROL_LOST = "control_lost"


# --- events: what may happen to a summit. `side` is the acting coordinator's side;
# None means the summit's own clock or the media plane raised it.


@dataclass(frozen=True)
class OpenLobby:
    side: str | None = None


@dataclass(frozen=True)
class ConsentToGoLive:
    side: str


@dataclass(frozen=True)
class SkipPublic:
    side: str


@dataclass(frozen=True)
class Cut:
    side: str | None = None
    reason: CutReason = CutReason.COORDINATOR

    def __post_init__(self) -> None:
        if (self.side is None) == (self.reason is CutReason.COORDINATOR):
            raise InvalidInput("a coordinator's cut names its side; an automatic cut names none")


@dataclass(frozen=True)
class End:
    side: str | None = None


@dataclass(frozen=True)
class Cancel:
    side: str


Event = OpenLobby | ConsentToGoLive | SkipPublic | Cut | End | Cancel


# --- effects: what the orchestrator must carry out, in the order given.


@dataclass(frozen=True)
class OpenRoom:
    """Create the media room so admitted participants can join."""


@dataclass(frozen=True)
class StartBroadcast:
    """Open the forwards into the broadcast chain and start its outputs: one picture
    and sound per side, in the order of `sides`."""

    sides: tuple[str, str]


@dataclass(frozen=True)
class StopBroadcast:
    """Stop every forward of the summit, then finalise the public outputs."""

    reason: CutReason


@dataclass(frozen=True)
class EnterPrivate:
    """Tell every participant's browser to encrypt from now on, and keep everyone whose
    browser does not hold the key off the feeds."""


@dataclass(frozen=True)
class CloseRoom:
    """Destroy the media room; everyone is disconnected."""


Effect = OpenRoom | StartBroadcast | StopBroadcast | EnterPrivate | CloseRoom


TRANSITIONS: dict[Phase, dict[type[Event], Phase]] = {
    Phase.SCHEDULED: {OpenLobby: Phase.LOBBY, Cancel: Phase.CANCELLED},
    Phase.LOBBY: {
        ConsentToGoLive: Phase.PUBLIC,
        SkipPublic: Phase.PRIVATE,
        Cancel: Phase.CANCELLED,
    },
    Phase.PUBLIC: {Cut: Phase.PRIVATE},
    Phase.PRIVATE: {End: Phase.ENDED},
    Phase.ENDED: {},
    Phase.CANCELLED: {},
}

EVENT_NAMES: dict[type[Event], str] = {
    OpenLobby: "open_lobby",
    ConsentToGoLive: "consent",
    SkipPublic: "skip_public",
    Cut: "cut",
    End: "end",
    Cancel: "cancel",
}
EVENTS_BY_NAME: dict[str, type[Event]] = {name: event for event, name in EVENT_NAMES.items()}


def coordinator_event(name: str, side: str) -> Event:
    """The event a coordinator of `side` raises by its name (`cut`, `consent`...)."""
    event = EVENTS_BY_NAME.get(name)
    if event is None:
        raise InvalidInput(
            f"unknown action {name!r}; one of: {', '.join(EVENTS_BY_NAME)}", field="action"
        )
    return event(side)


@dataclass(frozen=True)
class SummitState:
    """Everything the machine needs to decide; nothing it does not."""

    phase: Phase
    sides: tuple[str, str]
    starts_at: datetime
    public_length: timedelta
    go_live_consent: GoLiveConsent = GoLiveConsent.BOTH
    lobby_lead: timedelta = timedelta(minutes=30)
    end_grace: timedelta = timedelta(minutes=5)
    consents: frozenset[str] = field(default_factory=frozenset)
    version: int = 0
    public_since: datetime | None = None
    private_since: datetime | None = None
    ended_at: datetime | None = None

    @property
    def public_ends_at(self) -> datetime | None:
        """When the planned public part is over, once the summit is live."""
        return None if self.public_since is None else self.public_since + self.public_length


@dataclass(frozen=True)
class Transition:
    state: SummitState
    effects: tuple[Effect, ...]


def allowed_events(phase: Phase) -> list[str]:
    return [EVENT_NAMES[event] for event in TRANSITIONS[phase]]


def apply(state: SummitState, event: Event, now: datetime) -> Transition:
    """Apply `event` at `now`: the new state and the effects to carry out, or
    IllegalTransition with the state left as it was."""
    target = TRANSITIONS[state.phase].get(type(event))
    name = EVENT_NAMES[type(event)]
    if target is None:
        raise IllegalTransition(_refusal(state.phase, name))
    side = getattr(event, "side", None)
    if side is not None and side not in state.sides:
        raise InvalidInput(f"{side!r} is not a side of this summit", field="side")

    after = replace(state, version=state.version + 1)
    effects: tuple[Effect, ...] = ()
    if isinstance(event, OpenLobby):
        after = replace(after, phase=target)
        effects = (OpenRoom(),)
    elif isinstance(event, ConsentToGoLive):
        if state.public_length <= timedelta(0):
            raise IllegalTransition(
                "this summit has no public part; skip straight to the private talks"
            )
        if event.side in state.consents:
            raise IllegalTransition("your side has already consented to go live")
        consents = state.consents | {event.side}
        ready = state.go_live_consent is GoLiveConsent.EITHER or consents == set(state.sides)
        if ready:
            after = replace(after, phase=target, consents=consents, public_since=now)
            effects = (StartBroadcast(state.sides),)
        else:
            after = replace(after, consents=consents)
    elif isinstance(event, SkipPublic):
        after = replace(after, phase=target, private_since=now)
        effects = (EnterPrivate(),)
    elif isinstance(event, Cut):
        after = replace(after, phase=target, private_since=now)
        effects = (StopBroadcast(event.reason), EnterPrivate())
    elif isinstance(event, End):
        after = replace(after, phase=target, ended_at=now)
        effects = (CloseRoom(),)
    else:  # Cancel
        after = replace(after, phase=target, ended_at=now)
        effects = (CloseRoom(),) if state.phase is Phase.LOBBY else ()

    if after.phase is Phase.PUBLIC and state.private_since is not None:
        raise IllegalTransition("a summit that went private can never broadcast again")
    return Transition(after, effects)


CONTROL_TIMEOUT = timedelta(seconds=10)


def due_event(
    state: SummitState,
    now: datetime,
    empty_since: datetime | None,
    control_seen: Iterable[datetime] = (),
) -> Event | None:
    """The event the summit's own clock raises at `now`, if any.

    `empty_since` is when the last participant left the call (None while anyone is in);
    `control_seen` holds when each connected coordinator's console last reported in:
    one silent for longer than CONTROL_TIMEOUT while live cuts the broadcast."""
    if state.phase is Phase.SCHEDULED and now >= state.starts_at - state.lobby_lead:
        return OpenLobby()
    if state.phase is Phase.PUBLIC:
        ends_at = state.public_ends_at
        if ends_at is not None and now >= ends_at:
            return Cut(reason=CutReason.PLANNED_END)
        if any(now - seen > CONTROL_TIMEOUT for seen in control_seen):
            return Cut(reason=CutReason.CONTROL_LOST)
    if (
        state.phase is Phase.PRIVATE
        and empty_since is not None
        and now >= empty_since + state.end_grace
    ):
        return End()
    return None


def _refusal(phase: Phase, name: str) -> str:
    if phase is Phase.PRIVATE and name in ("consent", "cut", "skip_public"):
        return "the summit is private; it can never broadcast again"
    if phase.is_over:
        return f"the summit is {phase.value}; nothing more can happen to it"
    allowed = ", ".join(allowed_events(phase)) or "nothing"
    return f"cannot {name.replace('_', ' ')} while the summit is {phase.value} (allowed: {allowed})"


def mermaid() -> str:
    """The state diagram drawn from the transition table (docs/architecture.md shows it)."""
    lines = ["stateDiagram-v2", "    [*] --> scheduled"]
    for phase, moves in TRANSITIONS.items():
        for event, target in moves.items():
            lines.append(f"    {phase.value} --> {target.value}: {EVENT_NAMES[event]}")
    lines += ["    ended --> [*]", "    cancelled --> [*]"]
    return "\n".join(lines)
