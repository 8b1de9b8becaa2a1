"""What the orchestrator hands back: read-only views, independent of the web layer."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class SideView:
    id: str
    name: str
    time_zone: str
    local_start: datetime
    offset_warning: str | None
    consented: bool


@dataclass(frozen=True)
class SummitView:
    id: str
    slug: str
    title: str
    agenda: str
    starts_at: datetime
    ends_at: datetime
    planned_minutes: int
    public_minutes: int
    go_live_consent: str
    phase: str
    version: int
    allowed_actions: list[str]
    public_since: datetime | None
    public_ends_at: datetime | None
    private_since: datetime | None
    ended_at: datetime | None
    sides: list[SideView]
    viewer_local_start: datetime | None


@dataclass(frozen=True)
class ParticipantView:
    id: str
    side_id: str
    name: str
    role: str
    presence: str


@dataclass(frozen=True)
class Invite:
    participant: ParticipantView
    token: str
    link: str


@dataclass(frozen=True)
class ReadoutView:
    side_id: str
    side_name: str
    statement: str | None
    no_statement: bool
    embargo_until: datetime | None
    published_at: datetime


@dataclass(frozen=True)
class PublicSideView:
    name: str
    time_zone: str
    local_start: datetime


@dataclass(frozen=True)
class PublicStream:
    """One side's live picture and sound for players that cannot use WHEP."""

    side: str
    hls: str


@dataclass(frozen=True)
class PublicRecording:
    side: str
    kind: str
    url: str
    sha256: str
    bytes: int


@dataclass(frozen=True)
class PublicView:
    slug: str
    title: str
    agenda: str
    starts_at: datetime
    phase: str
    live: bool
    sides: list[PublicSideView]
    viewer_local_start: datetime | None
    readouts: list[ReadoutView]
    whep: str | None = None
    streams: list[PublicStream] = field(default_factory=list)
    recordings: list[PublicRecording] = field(default_factory=list)


@dataclass(frozen=True)
class KeyMemberView:
    participant_id: str
    name: str
    side_id: str
    role: str
    public_key: str
    holds: list[int]


@dataclass(frozen=True)
class WrappedKeyView:
    epoch: int
    sender_id: str
    wrapped: str


@dataclass(frozen=True)
class KeyExchangeView:
    private: bool
    in_force: int | None
    pending: int | None
    members: list[KeyMemberView]
    keys_for_you: list[WrappedKeyView]
    receives_private: bool
    make_key: bool
    next_epoch: int
    share: dict[str, list[int]]
