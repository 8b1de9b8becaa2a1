"""Who a side puts on air while its summit is broadcast.

A side's slot shows one person: the participant its coordinator chose, while that
person publishes for the side in a role that may speak for it; otherwise its principal,
else whoever ranks next in `ON_AIR_ORDER`. Observers never go on air. No I/O: the
broadcast chain passes in who publishes now and forwards whoever this names."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from summitry.domain.model import Role

# Who speaks for a side, first to last; a role not listed never goes on air.
ON_AIR_ORDER: tuple[Role, ...] = (Role.PRINCIPAL, Role.DELEGATE, Role.COORDINATOR, Role.INTERPRETER)


@dataclass(frozen=True)
class Speaker:
    """Someone publishing in the room: who, for which side, in what role."""

    participant_id: str
    side_id: str
    role: Role


def on_air(speakers: Iterable[Speaker], side_id: str, chosen: str | None = None) -> Speaker | None:
    """Who `side_id` has on air: `chosen` (its coordinator's choice) if that person is
    one of its candidates, else its best-ranked candidate (the first of them in
    `speakers` on a tie), else nobody."""
    candidates = [s for s in speakers if s.side_id == side_id and s.role in ON_AIR_ORDER]
    for candidate in candidates:
        if candidate.participant_id == chosen:
            return candidate
    if not candidates:
        return None
    return min(candidates, key=lambda s: ON_AIR_ORDER.index(s.role))
