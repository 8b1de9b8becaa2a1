"""What the orchestrator hands back: read-only views, independent of the web layer."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from summitry.domain import phases
from summitry.domain.events import PhaseChanged
from summitry.domain.times import offset_change, wall_time
from summitry.security.turn import TurnRelay, credential
from summitry.store.models import ParticipantRow, ReadoutRow, SideRow, SummitRow
from summitry.store.repository import state_of


class Links(Protocol):
    """Where things are on the web: the web layer knows its addresses, the control plane
    only which ones a view carries."""

    def invitation(self, summit_id: str, token: str) -> str: ...

    def public_page(self, slug: str) -> str: ...

    def whep(self, slug: str) -> str: ...

    def live_playlist(self, slug: str, position: int) -> str: ...

    def recording(self, slug: str, position: int, kind: str) -> str: ...


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
class PublicReadoutView:
    """A readout as the public reads it: by side name, no ids."""

    side_name: str
    statement: str | None
    no_statement: bool
    embargo_until: datetime | None
    published_at: datetime

    @classmethod
    def of(cls, readout: ReadoutView) -> PublicReadoutView:
        return cls(
            readout.side_name,
            readout.statement,
            readout.no_statement,
            readout.embargo_until,
            readout.published_at,
        )


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
    readouts: list[PublicReadoutView]
    # The Ed25519 key that signs the summit's audit trail and receipts: raw, base64url.
    audit_public_key: str
    whep: str | None = None
    watching: int = 0  # WHEP viewers now (HLS viewers are not counted)
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
class IceServerView:
    urls: list[str]
    username: str
    credential: str


@dataclass(frozen=True)
class IceServersView:
    """The TURN servers a browser may relay through, with a credential that expires."""

    ice_servers: list[IceServerView]
    expires_at: datetime | None


def turn_offer(turn: TurnRelay, holder: str, expires_at: datetime) -> IceServersView:
    """Every TURN URL with one credential of `holder`'s own, good until `expires_at`."""
    issued = credential(turn.secret, holder, expires_at)
    return IceServersView(
        [IceServerView(list(turn.urls), issued.username, issued.password)], issued.expires_at
    )


@dataclass(frozen=True)
class TranscriptMemberView:
    participant_id: str
    name: str
    public_key: str  # the key this member's copy was wrapped for


@dataclass(frozen=True)
class WrappedKeyView:
    """A media key wrapped for the caller, with the transcript its maker bound into the
    wrap: a browser that opens it knows for whom, and by whom, the key was made."""

    epoch: int
    sender_id: str
    wrapped: str
    transcript: list[TranscriptMemberView]


@dataclass(frozen=True)
class KeyChangeView:
    """A participant whose browser posted another key than the one everyone saw: they get
    no media key until a coordinator accepts it."""

    participant_id: str
    name: str
    side_id: str
    public_key: str
    pinned_key: str


@dataclass(frozen=True)
class KeyExchangeView:
    private: bool
    in_force: int | None
    pending: int | None
    members: list[KeyMemberView]
    keys_for_you: list[WrappedKeyView]
    key_changes: list[KeyChangeView]
    receives_private: bool
    make_key: bool
    next_epoch: int


def summit_view(
    row: SummitRow, sides: list[SideRow], viewer_zone: str | None, today: datetime
) -> SummitView:
    state = state_of(row, sides)
    return SummitView(
        id=row.id,
        slug=row.slug,
        title=row.title,
        agenda=row.agenda,
        starts_at=row.starts_at,
        ends_at=row.starts_at + timedelta(seconds=row.planned_seconds),
        planned_minutes=row.planned_seconds // 60,
        public_minutes=row.public_seconds // 60,
        go_live_consent=row.go_live_consent,
        phase=row.phase,
        version=row.version,
        allowed_actions=phases.allowed_events(state.phase),
        public_since=row.public_since,
        public_ends_at=state.public_ends_at,
        private_since=row.private_since,
        ended_at=row.ended_at,
        sides=[
            SideView(
                id=side.id,
                name=side.name,
                time_zone=side.time_zone,
                local_start=wall_time(row.starts_at, side.time_zone),
                offset_warning=getattr(
                    offset_change(side.time_zone, row.starts_at, today), "message", None
                ),
                consented=side.id in row.consents,
            )
            for side in sides
        ],
        viewer_local_start=wall_time(row.starts_at, viewer_zone) if viewer_zone else None,
    )


def phase_changed(view: SummitView, at: datetime) -> PhaseChanged:
    """The summit's phase on its event stream: the news of a change, and the first
    thing every stream sends."""
    return PhaseChanged(
        phase=view.phase,
        version=view.version,
        consents=[side.id for side in view.sides if side.consented],
        allowed_actions=view.allowed_actions,
        public_since=view.public_since,
        public_ends_at=view.public_ends_at,
        private_since=view.private_since,
        at=at,
    )


def participant_view(person: ParticipantRow) -> ParticipantView:
    return ParticipantView(person.id, person.side_id, person.name, person.role, person.presence)


def readout_views(readouts: list[ReadoutRow], sides: list[SideRow]) -> list[ReadoutView]:
    """The readouts in the order of the sides."""
    names = {side.id: side.name for side in sides}
    order = {side.id: side.position for side in sides}
    return [
        ReadoutView(
            side_id=r.side_id,
            side_name=names[r.side_id],
            statement=r.text,
            no_statement=r.text is None,
            embargo_until=r.embargo_until,
            published_at=r.published_at,
        )
        for r in sorted(readouts, key=lambda r: order[r.side_id])
    ]
