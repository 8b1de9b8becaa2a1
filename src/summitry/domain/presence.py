"""Where a participant is, seen from the lobby: the presence machine.

Theory of operation
-------------------
Everyone starts ``invited``. Arriving (``knock``) puts a coordinator in the call at once
and everyone else in the lobby, ``waiting``, until their own side's coordinator admits or
denies them::

    invited/left --knock--> waiting --admit--> admitted --leave--> left
        (coordinator: --knock--> admitted)    denied <--deny--'  \\--deny--> denied
    anyone --remove--> removed (for ever: the grant dies with it)

Invariants, enforced here and nowhere else:

* A denied participant cannot let themselves back in; only an admission can.
* ``removed`` is final: nothing leads out of it, and removal revokes the grant.
* Knocking again while in the call changes nothing (and writes nothing).
* Any move the table lacks raises `IllegalTransition` (or `NotPermitted` for a denied
  participant's knock) and changes nothing.

What leaving or joining the call means for the rest of the summit (the room empties, the
key exchange goes on without them) comes out as effects the orchestrator carries out.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from summitry.domain.errors import IllegalTransition, NotPermitted
from summitry.domain.model import Presence, Role


class Move(enum.StrEnum):
    KNOCK = "knock"
    ADMIT = "admit"
    DENY = "deny"
    LEAVE = "leave"
    REMOVE = "remove"


# --- effects: what follows from a change of presence, in the order given.


@dataclass(frozen=True)
class JoinedCall:
    """The participant is in the call: the room is not empty."""


@dataclass(frozen=True)
class LeftCall:
    """The participant was in the call and is not any more: off the media, out of the key
    exchange (the next key is made without them), and the room may now be empty."""


@dataclass(frozen=True)
class Revoked:
    """The participant's grant is dead: their link no longer opens anything."""


Effect = JoinedCall | LeftCall | Revoked

ANY = frozenset(Presence)
# move -> the presences it may start from; the target is in TARGETS (or, for a knock,
# depends on the role).
ALLOWED_FROM: dict[Move, frozenset[Presence]] = {
    Move.KNOCK: frozenset({Presence.INVITED, Presence.WAITING, Presence.LEFT, Presence.ADMITTED}),
    Move.ADMIT: frozenset({Presence.WAITING, Presence.DENIED}),
    Move.DENY: frozenset({Presence.WAITING, Presence.ADMITTED}),
    Move.LEAVE: frozenset({Presence.WAITING, Presence.ADMITTED}),
    Move.REMOVE: ANY,  # removing again re-records it, and changes nothing else
}
TARGETS: dict[Move, Presence] = {
    Move.ADMIT: Presence.ADMITTED,
    Move.DENY: Presence.DENIED,
    Move.LEAVE: Presence.LEFT,
    Move.REMOVE: Presence.REMOVED,
}
# The audit record's action for each move (a knock's depends on where it leads).
AUDIT_ACTIONS: dict[Move, str] = {
    Move.ADMIT: "participant_admitted",
    Move.DENY: "participant_denied",
    Move.LEAVE: "participant_left",
    Move.REMOVE: "participant_removed",
}


@dataclass(frozen=True)
class Change:
    before: Presence
    after: Presence
    action: str
    effects: tuple[Effect, ...]

    @property
    def changed(self) -> bool:
        """False only for a knock from inside the call, which records nothing."""
        return bool(self.action)


def apply(current: Presence, move: Move, role: Role, name: str) -> Change:
    """The participant `name` (of `role`, now `current`) makes or undergoes `move`: the
    new presence and its effects, or a typed error with nothing changed."""
    if move is Move.KNOCK and current is Presence.DENIED:
        raise NotPermitted("your coordinator did not admit you to this summit")
    if current not in ALLOWED_FROM[move]:
        target = TARGETS.get(move, Presence.WAITING)
        raise IllegalTransition(f"{name} is {current.value}; cannot make them {target.value}")
    if move is Move.KNOCK:
        if current is Presence.ADMITTED:
            return Change(current, current, "", ())
        coordinator = role is Role.COORDINATOR
        after = Presence.ADMITTED if coordinator else Presence.WAITING
        action = "participant_joined" if coordinator else "participant_waiting"
    else:
        after, action = TARGETS[move], AUDIT_ACTIONS[move]
    effects: list[Effect] = []
    if after is Presence.ADMITTED:
        effects.append(JoinedCall())
    elif current is Presence.ADMITTED:
        effects.append(LeftCall())
    if after is Presence.REMOVED:
        effects.append(Revoked())
    return Change(current, after, action, tuple(effects))


def mermaid() -> str:
    """The presence diagram drawn from the tables (docs/architecture.md shows it)."""
    lines = ["stateDiagram-v2", "    [*] --> invited"]
    for move, sources in ALLOWED_FROM.items():
        if move is Move.KNOCK:
            targets = [(Presence.WAITING, "knock"), (Presence.ADMITTED, "knock (coordinator)")]
        else:
            targets = [(TARGETS[move], move.value)]
        order = list(Presence)
        for source in sorted(sources, key=order.index):
            if move is Move.KNOCK and source in (Presence.WAITING, Presence.ADMITTED):
                continue  # knocking again moves nobody
            for target, label in targets:
                if source is not target:
                    lines.append(f"    {source.value} --> {target.value}: {label}")
    lines.append("    removed --> [*]")
    return "\n".join(lines)
