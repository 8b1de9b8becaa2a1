"""The summit, its two sides and their participants, as plain validated values."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from summitry.domain.errors import InvalidInput
from summitry.domain.times import require_aware, require_zone

MAX_TITLE = 200
MAX_AGENDA = 4000
MAX_NAME = 120
MAX_READOUT = 20_000
MAX_SUMMIT_LENGTH = timedelta(hours=24)
MAX_LOBBY_LEAD = timedelta(hours=24)


class Role(enum.StrEnum):
    COORDINATOR = "coordinator"
    PRINCIPAL = "principal"
    DELEGATE = "delegate"
    INTERPRETER = "interpreter"
    OBSERVER = "observer"

    @property
    def publishes(self) -> bool:
        return self is not Role.OBSERVER


class GoLiveConsent(enum.StrEnum):
    """Whose consent takes a summit live: both coordinators, or either one."""

    BOTH = "both"
    EITHER = "either"


class Presence(enum.StrEnum):
    """Where a participant is, seen from the lobby."""

    INVITED = "invited"
    WAITING = "waiting"
    ADMITTED = "admitted"
    DENIED = "denied"
    LEFT = "left"
    REMOVED = "removed"


# Who reads the talks (the roster, the feeds, the key exchange, the readouts, the event
# stream): coordinators, who run the summit from their consoles, and those admitted to
# the call, or who were and left. The invited, the waiting and the denied see the
# lobby's own state: the summit, their own presence and the phase.
READERS = frozenset({Presence.ADMITTED.value, Presence.LEFT.value})


def reads_the_talks(role: str, presence: str) -> bool:
    return role == Role.COORDINATOR.value or presence in READERS


@dataclass(frozen=True)
class SideDraft:
    name: str
    time_zone: str
    coordinator_name: str

    def __post_init__(self) -> None:
        require_text(self.name, "side name", MAX_NAME)
        require_text(self.coordinator_name, "coordinator name", MAX_NAME)
        require_zone(self.time_zone)


@dataclass(frozen=True)
class SummitDraft:
    """What an organiser asks for; validation happens here, before anything is written."""

    title: str
    agenda: str
    starts_at: datetime
    planned_length: timedelta
    public_length: timedelta
    sides: tuple[SideDraft, ...]
    go_live_consent: GoLiveConsent = GoLiveConsent.BOTH
    lobby_lead: timedelta = timedelta(minutes=30)
    end_grace: timedelta = timedelta(minutes=5)

    def validate(self, now: datetime) -> None:
        require_text(self.title, "title", MAX_TITLE)
        if len(self.agenda) > MAX_AGENDA:
            raise InvalidInput(f"agenda is longer than {MAX_AGENDA} characters", field="agenda")
        require_aware(self.starts_at, "starts_at")
        if self.starts_at <= now:
            raise InvalidInput(
                f"starts_at {self.starts_at.isoformat()} is in the past", field="starts_at"
            )
        if not timedelta(minutes=1) <= self.planned_length <= MAX_SUMMIT_LENGTH:
            raise InvalidInput(
                "planned length must be between 1 minute and 24 hours", field="planned_minutes"
            )
        if self.public_length < timedelta(0):
            raise InvalidInput("planned public length cannot be negative", field="public_minutes")
        if self.public_length > self.planned_length:
            raise InvalidInput(
                "the planned public part is longer than the summit itself",
                field="public_minutes",
            )
        if len(self.sides) != 2:
            raise InvalidInput(
                f"a summit has exactly two sides, not {len(self.sides)}", field="sides"
            )
        if self.sides[0].name.casefold() == self.sides[1].name.casefold():
            raise InvalidInput("the two sides need different names", field="sides")
        if not timedelta(0) <= self.lobby_lead <= MAX_LOBBY_LEAD:
            raise InvalidInput(
                "the lobby opens between 0 and 24 hours early", field="lobby_minutes"
            )


def require_text(value: str, what: str, limit: int) -> None:
    if not value.strip():
        raise InvalidInput(f"{what} is empty", field=what.replace(" ", "_"))
    if len(value) > limit:
        raise InvalidInput(
            f"{what} is longer than {limit} characters", field=what.replace(" ", "_")
        )


_SLUG_UNSAFE = re.compile(r"[^a-z0-9]+")


def slugify(title: str, suffix: str) -> str:
    """A readable public slug: the title's words plus a random suffix nobody can guess."""
    stem = _SLUG_UNSAFE.sub("-", title.casefold()).strip("-")[:48].strip("-")
    return f"{stem}-{suffix}" if stem else suffix
