"""What a summit tells those who follow it, on its event stream: one frozen dataclass per
kind of event. Each knows its name on the wire, whether the public may see it, and what
of it the public sees (of a phase change, only the phase: never who consented or when)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from summitry.domain.model import Presence


@dataclass(frozen=True)
class SummitEvent:
    kind: ClassVar[str]
    public: ClassVar[bool] = False
    # The fields the public stream passes on, beside the event's name.
    public_fields: ClassVar[tuple[str, ...]] = ()

    def body(self) -> dict[str, Any]:
        """The event as participants receive it."""
        return {"type": self.kind, **dataclasses.asdict(self)}

    def public_body(self) -> dict[str, Any] | None:
        """The event as the public receives it, or None if the public never does."""
        if not self.public:
            return None
        return {"type": self.kind, **{name: getattr(self, name) for name in self.public_fields}}


@dataclass(frozen=True)
class PhaseChanged(SummitEvent):
    kind: ClassVar[str] = "phase"
    public: ClassVar[bool] = True
    public_fields: ClassVar[tuple[str, ...]] = ("phase",)

    phase: str
    version: int
    consents: list[str]
    allowed_actions: list[str]
    public_since: datetime | None
    public_ends_at: datetime | None
    private_since: datetime | None
    at: datetime


@dataclass(frozen=True)
class RosterChanged(SummitEvent):
    kind: ClassVar[str] = "roster"

    participant: str
    name: str
    side: str
    role: str
    presence: str

    def removes(self, participant_id: str) -> bool:
        return self.participant == participant_id and self.presence == Presence.REMOVED.value


def lobby_sees(event: SummitEvent, participant_id: str) -> bool:
    """What a participant who does not read the talks (invited, waiting, denied) gets
    on their stream: the phase, and news of themselves (being admitted, above all)."""
    if isinstance(event, RosterChanged):
        return event.participant == participant_id
    return isinstance(event, PhaseChanged)


@dataclass(frozen=True)
class FeedsChanged(SummitEvent):
    """The feeds someone may receive changed: subscriptions sync."""

    kind: ClassVar[str] = "feeds"


@dataclass(frozen=True)
class MediaReset(SummitEvent):
    """The media server came back afresh: everyone publishes and subscribes again."""

    kind: ClassVar[str] = "media_reset"

    generation: int


@dataclass(frozen=True)
class MediaStateChanged(SummitEvent):
    kind: ClassVar[str] = "media_state"

    participant: str
    audio: bool
    video: bool


@dataclass(frozen=True)
class Speaking(SummitEvent):
    kind: ClassVar[str] = "speaking"

    participant: str
    speaking: bool


@dataclass(frozen=True)
class OnAirChanged(SummitEvent):
    kind: ClassVar[str] = "on_air"

    on_air: dict[str, str | None]


@dataclass(frozen=True)
class KeysChanged(SummitEvent):
    """The key exchange moved: browsers look at what they should make, share or open."""

    kind: ClassVar[str] = "e2ee"

    in_force: int | None
    pending: int | None


@dataclass(frozen=True)
class ReadoutPublished(SummitEvent):
    kind: ClassVar[str] = "readout"
    public: ClassVar[bool] = True

    side: str


@dataclass(frozen=True)
class RecordingsReady(SummitEvent):
    kind: ClassVar[str] = "recordings"
    public: ClassVar[bool] = True
