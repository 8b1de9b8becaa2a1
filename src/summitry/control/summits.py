"""The orchestrator of summits: the one place that applies commands to the phase
machine, persists the new state with its audit record in one transaction, and then
carries out the effects and announces them."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from summitry.control.events import EventHub
from summitry.control.media import Feed, MediaPlane, Offered, Published, Publisher
from summitry.control.views import (
    Invite,
    KeyExchangeView,
    KeyMemberView,
    ParticipantView,
    PublicRecording,
    PublicSideView,
    PublicStream,
    PublicView,
    ReadoutView,
    SideView,
    SummitView,
    WrappedKeyView,
)
from summitry.domain import e2ee, phases
from summitry.domain.errors import (
    Conflict,
    IllegalTransition,
    InvalidInput,
    MediaUnavailable,
    NotAuthenticated,
    NotFound,
    NotPermitted,
    StaleVersion,
)
from summitry.domain.invitation import Invitation, to_ics
from summitry.domain.model import (
    MAX_LOBBY_LEAD,
    MAX_NAME,
    MAX_READOUT,
    GoLiveConsent,
    Presence,
    Role,
    SummitDraft,
    require_text,
    slugify,
)
from summitry.domain.sdp import check_description, trickle_fragment
from summitry.domain.times import offset_change, require_aware, require_zone, wall_time
from summitry.security import audit, grants
from summitry.security.grants import Grant
from summitry.store.models import (
    AuditRow,
    KeyEpochRow,
    ParticipantRow,
    PublicKeyRow,
    ReadoutRow,
    SideRow,
    SummitRow,
    WrappedKeyRow,
)

log = logging.getLogger(__name__)

CLOCK_ACTOR = "clock"
OPERATOR_ACTOR = "operator"
IN_CALL = (Presence.ADMITTED.value,)


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


def new_id() -> str:
    return secrets.token_hex(8)


class Summits:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        grant_secret: bytes,
        public_url: str,
        hub: EventHub,
        clock: Clock | None = None,
        media: MediaPlane | None = None,
    ) -> None:
        self._sessions = sessions
        self._secret = grant_secret
        self._public_url = public_url
        self.hub = hub
        self.clock: Clock = clock or SystemClock()
        self._media = media
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        # When each coordinator's console last reported in, per summit (in memory: a
        # restarted server starts watching again from the next heartbeat).
        self._control_seen: defaultdict[str, dict[str, datetime]] = defaultdict(dict)
        self._tasks: set[asyncio.Task[None]] = set()

    # --- creating and reading summits

    async def create(self, draft: SummitDraft) -> tuple[SummitView, list[Invite]]:
        now = self.clock.now()
        draft.validate(now)
        summit_id = new_id()
        row = SummitRow(
            id=summit_id,
            slug=slugify(draft.title, secrets.token_hex(3)),
            title=draft.title.strip(),
            agenda=draft.agenda.strip(),
            starts_at=require_aware(draft.starts_at, "starts_at"),
            planned_seconds=int(draft.planned_length.total_seconds()),
            public_seconds=int(draft.public_length.total_seconds()),
            lobby_lead_seconds=int(draft.lobby_lead.total_seconds()),
            end_grace_seconds=int(draft.end_grace.total_seconds()),
            go_live_consent=draft.go_live_consent.value,
            phase=phases.Phase.SCHEDULED.value,
            version=0,
            consents=[],
            created_at=now,
        )
        sides = [
            SideRow(
                id=new_id(),
                summit_id=summit_id,
                position=index,
                name=side.name.strip(),
                time_zone=side.time_zone,
            )
            for index, side in enumerate(draft.sides)
        ]
        coordinators = [
            self._participant_row(row, side, draft_side.coordinator_name, Role.COORDINATOR, now)
            for side, draft_side in zip(sides, draft.sides, strict=True)
        ]
        async with self._sessions.begin() as session:
            session.add(row)
            await session.flush()
            session.add_all(sides)
            await session.flush()
            session.add_all(coordinators)
            await self._audit(
                session,
                row.id,
                OPERATOR_ACTOR,
                "summit_created",
                {
                    "title": row.title,
                    "starts_at": row.starts_at.isoformat(),
                    "sides": [
                        {"id": side.id, "name": side.name, "time_zone": side.time_zone}
                        for side in sides
                    ],
                    "coordinators": [p.id for p in coordinators],
                },
                now,
            )
        invites = [self._invite(row, p) for p in coordinators]
        return self._view(row, sides, None), invites

    async def list_all(self) -> list[SummitView]:
        async with self._sessions() as session:
            rows = (await session.scalars(select(SummitRow).order_by(SummitRow.starts_at))).all()
            views = []
            for row in rows:
                views.append(self._view(row, await self._sides(session, row.id), None))
            return views

    async def get(self, summit_id: str, viewer_zone: str | None = None) -> SummitView:
        if viewer_zone is not None:
            require_zone(viewer_zone, "tz")
        async with self._sessions() as session:
            row = await self._summit(session, summit_id)
            return self._view(row, await self._sides(session, row.id), viewer_zone)

    async def public(self, slug: str, viewer_zone: str | None = None) -> PublicView:
        if viewer_zone is not None:
            require_zone(viewer_zone, "tz")
        now = self.clock.now()
        async with self._sessions() as session:
            row = await session.scalar(select(SummitRow).where(SummitRow.slug == slug))
            if row is None:
                raise NotFound("there is no public summit at this address")
            sides = await self._sides(session, row.id)
            readouts = await self._readouts(session, row.id, sides)
        return PublicView(
            slug=row.slug,
            title=row.title,
            agenda=row.agenda,
            starts_at=row.starts_at,
            phase=row.phase,
            live=row.phase == phases.Phase.PUBLIC.value,
            sides=[
                PublicSideView(s.name, s.time_zone, wall_time(row.starts_at, s.time_zone))
                for s in sides
            ],
            viewer_local_start=wall_time(row.starts_at, viewer_zone) if viewer_zone else None,
            readouts=[r for r in readouts if r.embargo_until is None or r.embargo_until <= now],
            **self._public_media(row, sides),
        )

    def _public_media(self, row: SummitRow, sides: list[SideRow]) -> dict[str, Any]:
        """Where the public watches: WHEP and HLS while live, the recordings afterwards."""
        if self._media is None:
            return {}
        names = {side.position: side.name for side in sides}
        base = f"/s/{row.slug}"
        media: dict[str, Any] = {
            "recordings": [
                PublicRecording(
                    names[r.position],
                    r.kind,
                    f"{base}/recording/{r.position}.{'mp4' if r.kind == 'video' else 'ogg'}",
                    r.sha256,
                    r.bytes,
                )
                for r in self._media.recordings(row.id)
            ]
        }
        if row.phase == phases.Phase.PUBLIC.value:
            media["whep"] = f"/api/v1/public/{row.slug}/whep"
            media["streams"] = [
                PublicStream(names[side.position], f"{base}/live/{side.position}/index.m3u8")
                for side in sides
            ]
        return media

    async def watch(self, slug: str, offer: str) -> tuple[str, str]:
        """A public viewer's WHEP offer: the live broadcast, nothing else."""
        check_description(offer)
        summit_id = await self.summit_id_for(slug)
        async with self._sessions() as session:
            row = await self._summit(session, summit_id)
        if row.phase != phases.Phase.PUBLIC.value:
            raise IllegalTransition("the summit is not being broadcast now")
        return await self.media.watch_broadcast(summit_id, offer)

    async def stop_watching(self, slug: str, resource_id: str) -> None:
        summit_id = await self.summit_id_for(slug)
        await self.media.stop_watching(summit_id, resource_id)

    async def public_file(self, slug: str, position: int, name: str) -> str:
        """The path of a public output file of this summit, if the public may have it now:
        the live playlist and segments while live, the recordings once sealed."""
        summit_id = await self.summit_id_for(slug)
        folder = self.media.broadcast_folder(summit_id, position)
        if folder is None or position not in (0, 1):
            raise NotFound("no such file")
        if name in ("recording.mp4", "audio.ogg"):
            if not any(r.position == position for r in self.media.recordings(summit_id)):
                raise NotFound("the recording is not finished")
            return f"{folder}/{name}"
        return f"{folder}/live/{name}"

    async def summit_id_for(self, slug: str) -> str:
        async with self._sessions() as session:
            summit_id = await session.scalar(select(SummitRow.id).where(SummitRow.slug == slug))
        if summit_id is None:
            raise NotFound("there is no public summit at this address")
        return summit_id

    # --- grants

    async def authenticate(self, token: str, audience: str = grants.AUDIENCE) -> Grant:
        """The grant `token` carries, if its participant still holds it."""
        grant = grants.read(token, self._secret, self.clock.now(), audience)
        async with self._sessions() as session:
            person = await session.get(ParticipantRow, grant.participant_id)
        if (
            person is None
            or person.revoked
            or person.grant_id != grant.grant_id
            or person.summit_id != grant.summit_id
        ):
            raise NotAuthenticated("this invitation link has been revoked")
        return grant

    def events_ticket(self, grant: Grant, summit_id: str) -> tuple[str, datetime]:
        """A ticket to open this summit's event stream, good for a minute."""
        require_summit(grant, summit_id)
        return grants.events_ticket(grant, self._secret, self.clock.now())

    # --- roster and lobby

    async def participants(self, grant: Grant, summit_id: str) -> list[ParticipantView]:
        require_summit(grant, summit_id)
        async with self._sessions() as session:
            rows = (
                await session.scalars(
                    select(ParticipantRow)
                    .where(ParticipantRow.summit_id == summit_id, ParticipantRow.revoked.is_(False))
                    .order_by(ParticipantRow.created_at)
                )
            ).all()
        return [participant_view(p) for p in rows]

    async def invite(
        self, grant: Grant, summit_id: str, name: str, role: Role, side_id: str | None
    ) -> Invite:
        require_summit(grant, summit_id)
        require_coordinator(grant)
        if side_id is not None and side_id != grant.side_id:
            raise NotPermitted("a coordinator invites people to their own side only")
        require_text(name, "name", MAX_NAME)
        now = self.clock.now()
        async with self._command(summit_id) as session:
            row = await self._summit(session, summit_id)
            if phases.Phase(row.phase).is_over:
                raise IllegalTransition(f"the summit is {row.phase}; nobody can be invited")
            side = await session.get(SideRow, grant.side_id)
            assert side is not None
            await self._refuse_duplicate(session, side.id, name)
            person = self._participant_row(row, side, name, role, now)
            session.add(person)
            await self._audit(
                session,
                summit_id,
                actor_of(grant),
                "participant_invited",
                {
                    "participant": person.id,
                    "side": side.id,
                    "role": role.value,
                    "name": person.name,
                },
                now,
            )
        self._announce_roster(summit_id, person, "invited")
        return self._invite(row, person)

    async def invitation(
        self, grant: Grant, summit_id: str, participant_id: str
    ) -> tuple[Invite, bytes]:
        """The participant's link and calendar file: for the participant, or their coordinator."""
        require_summit(grant, summit_id)
        async with self._sessions() as session:
            row = await self._summit(session, summit_id)
            person = await self._participant(session, summit_id, participant_id)
            if grant.participant_id != person.id:
                require_coordinator(grant)
                require_own_side(grant, person.side_id)
            side = await session.get(SideRow, person.side_id)
            assert side is not None
        invite = self._invite(row, person)
        ics = to_ics(
            Invitation(
                uid=f"{row.id}-{person.id}@summitry",
                title=row.title,
                agenda=row.agenda,
                starts_at=row.starts_at,
                length=timedelta(seconds=row.planned_seconds),
                time_zone=side.time_zone,
                attendee=person.name,
                role=person.role,
                side=side.name,
                link=invite.link,
                issued_at=row.created_at,
            )
        )
        return invite, ics

    async def remove(self, grant: Grant, summit_id: str, participant_id: str) -> ParticipantView:
        require_summit(grant, summit_id)
        require_coordinator(grant)
        if participant_id == grant.participant_id:
            raise NotPermitted("a coordinator cannot remove themselves")
        return await self._set_presence(
            grant,
            summit_id,
            participant_id,
            Presence.REMOVED,
            "participant_removed",
            allowed_from=None,
        )

    async def admit(self, grant: Grant, summit_id: str, participant_id: str) -> ParticipantView:
        require_summit(grant, summit_id)
        require_coordinator(grant)
        return await self._set_presence(
            grant,
            summit_id,
            participant_id,
            Presence.ADMITTED,
            "participant_admitted",
            allowed_from=(Presence.WAITING, Presence.DENIED),
        )

    async def deny(self, grant: Grant, summit_id: str, participant_id: str) -> ParticipantView:
        require_summit(grant, summit_id)
        require_coordinator(grant)
        return await self._set_presence(
            grant,
            summit_id,
            participant_id,
            Presence.DENIED,
            "participant_denied",
            allowed_from=(Presence.WAITING, Presence.ADMITTED),
        )

    async def knock(self, grant: Grant, summit_id: str) -> ParticipantView:
        """The participant arrives: a coordinator walks in, everyone else waits in the lobby."""
        require_summit(grant, summit_id)
        now = self.clock.now()
        async with self._command(summit_id) as session:
            row = await self._summit(session, summit_id)
            phase = phases.Phase(row.phase)
            if phase is phases.Phase.SCHEDULED:
                opens = row.starts_at - timedelta(seconds=row.lobby_lead_seconds)
                raise IllegalTransition(
                    f"the lobby is not open yet; it opens at {opens.isoformat()}"
                )
            if phase.is_over:
                raise IllegalTransition(f"the summit is {phase.value}")
            person = await self._participant(session, summit_id, grant.participant_id)
            if person.presence == Presence.ADMITTED.value:
                return participant_view(person)
            if person.presence == Presence.DENIED.value:
                raise NotPermitted("your coordinator did not admit you to this summit")
            coordinator = person.role == Role.COORDINATOR.value
            person.presence = (Presence.ADMITTED if coordinator else Presence.WAITING).value
            if coordinator:
                row.empty_since = None
            await self._audit(
                session,
                summit_id,
                actor_of(grant),
                "participant_joined" if coordinator else "participant_waiting",
                {"participant": person.id},
                now,
            )
        self._announce_roster(summit_id, person, person.presence)
        return participant_view(person)

    async def leave(self, grant: Grant, summit_id: str) -> ParticipantView:
        require_summit(grant, summit_id)
        return await self._set_presence(
            grant,
            summit_id,
            grant.participant_id,
            Presence.LEFT,
            "participant_left",
            allowed_from=(Presence.WAITING, Presence.ADMITTED),
            own_side_only=False,
        )

    # --- phases

    async def heartbeat(self, grant: Grant, summit_id: str) -> None:
        """A coordinator's console reports in; while live, its silence cuts the broadcast."""
        require_summit(grant, summit_id)
        require_coordinator(grant)
        self._control_seen[summit_id][grant.participant_id] = self.clock.now()

    async def act(
        self, grant: Grant, summit_id: str, action: str, expected_version: int | None
    ) -> SummitView:
        """A coordinator's phase action, refused if it acts on a stale version."""
        require_summit(grant, summit_id)
        require_coordinator(grant)
        builder = ACTIONS.get(action)
        if builder is None:
            raise InvalidInput(
                f"unknown action {action!r}; one of: {', '.join(ACTIONS)}", field="action"
            )
        return await self._apply(
            summit_id, builder(grant.side_id), actor_of(grant), expected_version
        )

    async def fail(self, summit_id: str, reason: phases.CutReason) -> SummitView:
        """The media plane or a lost control connection forces the cut."""
        return await self._apply(
            summit_id, phases.Cut(reason=reason), f"system:{reason.value}", None
        )

    async def tick(self) -> list[str]:
        """Raises the events the clock makes due; returns the summits that moved."""
        now = self.clock.now()
        # Only summits the clock can move (see phases.due_event): a lobby about to open, a
        # broadcast, an emptied private room. Months of scheduled summits cost nothing.
        may_fall_due = (
            (
                (SummitRow.phase == phases.Phase.SCHEDULED.value)
                & (SummitRow.starts_at <= now + MAX_LOBBY_LEAD)
            )
            | (SummitRow.phase == phases.Phase.PUBLIC.value)
            | ((SummitRow.phase == phases.Phase.PRIVATE.value) & SummitRow.empty_since.is_not(None))
        )
        async with self._sessions() as session:
            rows = (await session.scalars(select(SummitRow).where(may_fall_due))).all()
            sides: dict[str, list[SideRow]] = defaultdict(list)
            if rows:
                for side in await session.scalars(
                    select(SideRow)
                    .where(SideRow.summit_id.in_([row.id for row in rows]))
                    .order_by(SideRow.summit_id, SideRow.position)
                ):
                    sides[side.summit_id].append(side)
            states = [(row, state_of(row, sides[row.id])) for row in rows]
        moved = []
        for row, state in states:
            event = phases.due_event(
                state, now, row.empty_since, self._control_seen.get(row.id, {}).values()
            )
            if event is None:
                continue
            try:
                await self._apply(row.id, event, CLOCK_ACTOR, row.version)
            except (IllegalTransition, StaleVersion):
                continue  # someone acted first; the next tick looks again
            moved.append(row.id)
        for summit_id in set(await self.overdue_keys()):
            await self._settle_keys(summit_id)
        return moved

    async def _apply(
        self, summit_id: str, event: phases.Event, actor: str, expected_version: int | None
    ) -> SummitView:
        now = self.clock.now()
        started = time.perf_counter()
        async with self._command(summit_id) as session:
            row = await self._summit(session, summit_id)
            if expected_version is not None and expected_version != row.version:
                raise StaleVersion(
                    f"the summit changed since you looked (version {row.version}, you acted on "
                    f"{expected_version}); reload and decide again"
                )
            before = row.phase
            sides = await self._sides(session, summit_id)
            transition = phases.apply(state_of(row, sides), event, now)
            store_state(row, transition.state)
            if (
                transition.state.phase is phases.Phase.PRIVATE
                and row.empty_since is None
                and await self._call_is_empty(session, summit_id)
            ):
                row.empty_since = now
            await self._audit(
                session,
                summit_id,
                actor,
                phases.EVENT_NAMES[type(event)],
                {
                    "from": before,
                    "to": row.phase,
                    "version": row.version,
                    "reason": event.reason.value if isinstance(event, phases.Cut) else None,
                    "consents": sorted(row.consents),
                    "effects": [type(effect).__name__ for effect in transition.effects],
                },
                now,
            )
        persisted = time.perf_counter()
        for effect in transition.effects:
            if self._media is not None:
                await self._media.carry_out(summit_id, effect)
        if row.phase == phases.Phase.PRIVATE.value and before != row.phase:
            await self._settle_keys(summit_id)  # off private feeds: whoever lacks the key
        log.info(
            "summit %s: %s -> %s (persisted in %.1f ms, effects in %.1f ms)",
            summit_id,
            before,
            row.phase,
            (persisted - started) * 1000,
            (time.perf_counter() - persisted) * 1000,
        )
        view = self._view(row, sides, None)
        self.hub.announce(
            summit_id,
            {
                "type": "phase",
                "phase": view.phase,
                "version": view.version,
                "consents": sorted(row.consents),
                "allowed_actions": view.allowed_actions,
                "public_since": view.public_since,
                "public_ends_at": view.public_ends_at,
                "private_since": view.private_since,
                "at": now.isoformat(),
            },
        )
        return view

    # --- media: publishing (WHIP) and the room subscription

    @property
    def media_plane(self) -> MediaPlane | None:
        return self._media

    @property
    def media(self) -> MediaPlane:
        if self._media is None:
            raise MediaUnavailable("this server runs without a media plane")
        return self._media

    async def active_summits(self) -> list[str]:
        """Summits whose room should exist: lobby, public or private."""
        async with self._sessions() as session:
            return list(
                (
                    await session.scalars(
                        select(SummitRow.id).where(
                            SummitRow.phase.in_(
                                [
                                    phases.Phase.LOBBY.value,
                                    phases.Phase.PUBLIC.value,
                                    phases.Phase.PRIVATE.value,
                                ]
                            )
                        )
                    )
                ).all()
            )

    async def public_summits(self) -> list[str]:
        async with self._sessions() as session:
            return list(
                (
                    await session.scalars(
                        select(SummitRow.id).where(SummitRow.phase == phases.Phase.PUBLIC.value)
                    )
                ).all()
            )

    async def _in_call(self, grant: Grant, summit_id: str) -> ParticipantRow:
        """The caller, if admitted to a summit whose room is open."""
        async with self._sessions() as session:
            return await self._check_in_call(session, grant, summit_id)

    async def _check_in_call(
        self, session: AsyncSession, grant: Grant, summit_id: str
    ) -> ParticipantRow:
        require_summit(grant, summit_id)
        row = await self._summit(session, summit_id)
        person = await self._participant(session, summit_id, grant.participant_id)
        phase = phases.Phase(row.phase)
        if phase is phases.Phase.SCHEDULED:
            raise IllegalTransition("the room is not open yet")
        if phase.is_over:
            raise IllegalTransition(f"the summit is {phase.value}; the room is closed")
        if person.presence != Presence.ADMITTED.value:
            raise NotPermitted(
                "you are not in the call: your coordinator admits you from the lobby"
            )
        return person

    async def publish(self, grant: Grant, summit_id: str, offer: str) -> Published:
        require_summit(grant, summit_id)
        if not grant.role.publishes:
            raise NotPermitted("observers see and hear the talks; they do not publish")
        check_description(offer)
        person = await self._in_call(grant, summit_id)
        private = await self._phase(summit_id) is phases.Phase.PRIVATE
        return await self.media.publish(
            summit_id,
            Publisher(person.id, person.name, person.side_id, person.role),
            offer,
            encrypted=private,
        )

    async def trickle(self, grant: Grant, summit_id: str, resource_id: str, fragment: str) -> None:
        self._own_resource(grant, summit_id, resource_id)
        candidates, completed = trickle_fragment(fragment)
        await self.media.trickle(resource_id, candidates, completed)

    async def subscribe(self, grant: Grant, summit_id: str) -> Offered:
        await self._in_call(grant, summit_id)
        sees = await self._receives_feeds(summit_id, grant.participant_id)
        return await self.media.subscribe(summit_id, grant.participant_id, sees_feeds=sees)

    async def answer_subscription(
        self, grant: Grant, summit_id: str, resource_id: str, answer: str
    ) -> None:
        self._own_resource(grant, summit_id, resource_id)
        check_description(answer, "answer")
        await self.media.answer(resource_id, answer)

    async def sync_subscription(self, grant: Grant, summit_id: str, resource_id: str) -> Offered:
        self._own_resource(grant, summit_id, resource_id)
        await self._in_call(grant, summit_id)
        sees = await self._receives_feeds(summit_id, grant.participant_id)
        return await self.media.sync(resource_id, sees_feeds=sees)

    async def leave_media(self, grant: Grant, summit_id: str, resource_id: str) -> None:
        self._own_resource(grant, summit_id, resource_id)
        await self.media.leave(resource_id)

    async def set_media_state(self, grant: Grant, summit_id: str, audio: bool, video: bool) -> None:
        await self._in_call(grant, summit_id)
        await self.media.set_media_state(summit_id, grant.participant_id, audio, video)

    async def choose_on_air(
        self, grant: Grant, summit_id: str, participant_id: str | None
    ) -> dict[str, str | None]:
        """A coordinator puts someone of their own side on air (None: the default)."""
        require_summit(grant, summit_id)
        require_coordinator(grant)
        now = self.clock.now()
        async with self._command(summit_id) as session:
            await self._summit(session, summit_id)
            if participant_id is not None:
                person = await self._participant(session, summit_id, participant_id)
                require_own_side(grant, person.side_id)
                if not Role(person.role).publishes:
                    raise InvalidInput(
                        f"{person.name} is an observer and never on air", field="participant_id"
                    )
            await self._audit(
                session,
                summit_id,
                actor_of(grant),
                "on_air_chosen",
                {"side": grant.side_id, "participant": participant_id},
                now,
            )
        await self.media.choose_on_air(summit_id, grant.side_id, participant_id)
        on_air = self.media.on_air(summit_id)
        self.hub.announce(summit_id, {"type": "on_air", "on_air": on_air})
        return on_air

    async def on_air(self, grant: Grant, summit_id: str) -> dict[str, str | None]:
        require_summit(grant, summit_id)
        return self.media.on_air(summit_id)

    async def feeds(self, grant: Grant, summit_id: str) -> list[Feed]:
        require_summit(grant, summit_id)
        return self.media.feeds(summit_id)

    def _own_resource(self, grant: Grant, summit_id: str, resource_id: str) -> None:
        require_summit(grant, summit_id)
        owner = self.media.owner(resource_id)
        if owner is None or owner[0] != summit_id:
            raise NotFound("no such media resource in this summit")
        if owner[1] != grant.participant_id:
            raise NotPermitted("this media resource belongs to someone else")

    # --- end-to-end encryption: the server relays public and wrapped keys

    async def key_exchange(self, grant: Grant, summit_id: str) -> KeyExchangeView:
        """What the caller's browser needs to hold the key: the members' public keys,
        the keys wrapped for it, and whether it should make or share a key now."""
        require_summit(grant, summit_id)
        async with self._sessions() as session:
            row = await self._summit(session, summit_id)
            state = await self._key_state(session, summit_id)
            people = {
                p.id: p
                for p in (
                    await session.scalars(
                        select(ParticipantRow).where(ParticipantRow.summit_id == summit_id)
                    )
                ).all()
            }
        me = grant.participant_id
        mine = state.member(me)
        keys_for_me = [
            WrappedKeyView(epoch.number, wrap.sender_id, wrap.wrapped)
            for epoch in (state.in_force, state.pending)
            if epoch is not None and mine is not None
            for wrap in [epoch.wraps.get(me)]
            if wrap is not None and wrap.public_key == mine.public_key
        ]
        private = row.phase == phases.Phase.PRIVATE.value
        return KeyExchangeView(
            private=private,
            in_force=state.in_force.number if state.in_force else None,
            pending=state.pending.number if state.pending else None,
            members=[
                KeyMemberView(
                    participant_id=m.participant_id,
                    name=people[m.participant_id].name,
                    side_id=people[m.participant_id].side_id,
                    role=people[m.participant_id].role,
                    public_key=m.public_key,
                    holds=[e.number for e in state.epochs if state.holds(m.participant_id, e)],
                )
                for m in state.members
            ],
            keys_for_you=keys_for_me,
            receives_private=state.may_receive_private(me),
            make_key=state.key_maker == me,
            next_epoch=(state.newest.number if state.newest else 0) + 1,
            share=state.missing() if state.distributor == me else {},
        )

    async def post_public_key(self, grant: Grant, summit_id: str, public_key: str) -> None:
        """The caller's browser joins the key exchange (again, after a reload)."""
        e2ee.decode_public_key(public_key)
        now = self.clock.now()
        async with self._command(summit_id) as session:
            await self._check_in_call(session, grant, summit_id)
            row = await session.get(PublicKeyRow, grant.participant_id)
            if row is not None and row.public_key == public_key:
                return
            if row is None:
                session.add(
                    PublicKeyRow(
                        participant_id=grant.participant_id,
                        summit_id=summit_id,
                        public_key=public_key,
                        posted_at=now,
                    )
                )
            else:
                row.public_key, row.posted_at = public_key, now
            await self._audit(
                session,
                summit_id,
                actor_of(grant),
                "e2ee_public_key",
                {"participant": grant.participant_id, "fingerprint": e2ee.fingerprint(public_key)},
                now,
            )
        await self._settle_keys(summit_id)

    async def make_key(
        self, grant: Grant, summit_id: str, epoch: int, wraps: dict[str, str]
    ) -> None:
        """A member's browser made a new media key and wrapped it for every member."""
        e2ee.check_wraps(wraps)
        async with self._key_command(grant, summit_id) as (session, state):
            state.check_new_epoch(grant.participant_id, epoch, set(wraps))
            session.add(
                KeyEpochRow(
                    summit_id=summit_id,
                    epoch=epoch,
                    made_by=grant.participant_id,
                    made_at=self.clock.now(),
                )
            )
            await self._add_wraps(session, state, grant, epoch, wraps, "e2ee_key_made")
        loop = asyncio.get_running_loop()
        loop.call_later(
            e2ee.IN_FORCE_AFTER.total_seconds(),
            lambda: self._background(self._settle_keys(summit_id)),
        )
        await self._settle_keys(summit_id)

    async def share_key(
        self, grant: Grant, summit_id: str, epoch: int, wraps: dict[str, str]
    ) -> None:
        """A holder wraps a key in use for members who joined after it was made."""
        e2ee.check_wraps(wraps)
        async with self._key_command(grant, summit_id) as (session, state):
            known = state.check_shared(grant.participant_id, epoch, set(wraps))
            fresh = {r: w for r, w in wraps.items() if not state.has_wrap(r, known)}
            if not fresh:
                return
            for recipient in fresh:
                stale = await session.get(WrappedKeyRow, (summit_id, epoch, recipient))
                if stale is not None:
                    await session.delete(stale)
            await session.flush()
            await self._add_wraps(session, state, grant, epoch, fresh, "e2ee_key_shared")
        await self._settle_keys(summit_id)

    async def confirm_key(self, grant: Grant, summit_id: str, epoch: int) -> None:
        """The caller's browser unwrapped the key of `epoch`."""
        async with self._key_command(grant, summit_id) as (session, state):
            state.check_confirm(grant.participant_id, epoch)
            wrap = await session.get(WrappedKeyRow, (summit_id, epoch, grant.participant_id))
            assert wrap is not None
            if wrap.confirmed_at is not None:
                return
            wrap.confirmed_at = self.clock.now()
        await self._settle_keys(summit_id)

    @asynccontextmanager
    async def _key_command(
        self, grant: Grant, summit_id: str
    ) -> AsyncIterator[tuple[AsyncSession, e2ee.KeyState]]:
        """A command of the key exchange: its caller in the call, on the current keys."""
        async with self._command(summit_id) as session:
            await self._check_in_call(session, grant, summit_id)
            yield session, await self._key_state(session, summit_id)

    async def _add_wraps(
        self,
        session: AsyncSession,
        state: e2ee.KeyState,
        grant: Grant,
        epoch: int,
        wraps: dict[str, str],
        action: str,
    ) -> None:
        """The caller's key of `epoch`, wrapped for each recipient; audited as `action`."""
        for recipient, wrapped in wraps.items():
            member = state.member(recipient)
            assert member is not None  # checked against the members just before
            session.add(
                WrappedKeyRow(
                    summit_id=grant.summit_id,
                    epoch=epoch,
                    recipient_id=recipient,
                    sender_id=grant.participant_id,
                    public_key=member.public_key,
                    wrapped=wrapped,
                )
            )
        await self._audit(
            session,
            grant.summit_id,
            actor_of(grant),
            action,
            {"epoch": epoch, "recipients": sorted(wraps)},
            self.clock.now(),
        )

    async def _settle_keys(self, summit_id: str) -> None:
        """Puts a key in force when it is due, keeps browsers without the key off private
        feeds, and tells every browser that the key exchange moved."""
        now = self.clock.now()
        async with self._command(summit_id) as session:
            row = await self._summit(session, summit_id)
            state = await self._key_state(session, summit_id)
            due = state.due_in_force(now)
            if due is not None:
                epoch_row = await session.get(KeyEpochRow, (summit_id, due.number))
                assert epoch_row is not None
                epoch_row.in_force_at = now
                recipients = [
                    m.participant_id for m in state.members if m.participant_id in due.wraps
                ]
                await self._audit(
                    session,
                    summit_id,
                    CLOCK_ACTOR,
                    "e2ee_key_in_force",
                    {
                        "epoch": due.number,
                        "confirmed": sum(state.holds(r, due) for r in recipients),
                        "recipients": len(recipients),
                    },
                    now,
                )
                state = await self._key_state(session, summit_id)
        private = row.phase == phases.Phase.PRIVATE.value
        if private and self._media is not None:
            await self._media.withhold_feeds(
                summit_id,
                {
                    m.participant_id
                    for m in state.members
                    if state.may_receive_private(m.participant_id)
                },
            )
        self.hub.announce(
            summit_id,
            {
                "type": "e2ee",
                "in_force": state.in_force.number if state.in_force else None,
                "pending": state.pending.number if state.pending else None,
            },
        )
        if private:  # only then do keys decide who receives feeds: some may sync now
            self.hub.announce(summit_id, {"type": "feeds"})

    async def _receives_feeds(self, summit_id: str, participant_id: str) -> bool:
        """In the private phase only browsers that hold the key receive feeds."""
        async with self._sessions() as session:
            row = await self._summit(session, summit_id)
            if row.phase != phases.Phase.PRIVATE.value:
                return True
            return (await self._key_state(session, summit_id)).may_receive_private(participant_id)

    async def _phase(self, summit_id: str) -> phases.Phase:
        async with self._sessions() as session:
            return phases.Phase((await self._summit(session, summit_id)).phase)

    async def _key_state(self, session: AsyncSession, summit_id: str) -> e2ee.KeyState:
        members = (
            await session.scalars(
                select(PublicKeyRow)
                .where(PublicKeyRow.summit_id == summit_id)
                .order_by(PublicKeyRow.posted_at, PublicKeyRow.participant_id)
            )
        ).all()
        epochs = (
            await session.scalars(
                select(KeyEpochRow)
                .where(KeyEpochRow.summit_id == summit_id)
                .order_by(KeyEpochRow.epoch)
            )
        ).all()
        wraps = (
            await session.scalars(select(WrappedKeyRow).where(WrappedKeyRow.summit_id == summit_id))
        ).all()
        by_epoch: defaultdict[int, dict[str, e2ee.Wrap]] = defaultdict(dict)
        for wrap in wraps:
            by_epoch[wrap.epoch][wrap.recipient_id] = e2ee.Wrap(
                wrap.recipient_id, wrap.sender_id, wrap.public_key, wrap.wrapped, wrap.confirmed_at
            )
        return e2ee.KeyState(
            members=[e2ee.Member(m.participant_id, m.public_key, m.posted_at) for m in members],
            epochs=[
                e2ee.Epoch(e.epoch, e.made_by, e.made_at, e.in_force_at, by_epoch[e.epoch])
                for e in epochs
            ],
        )

    async def overdue_keys(self) -> list[str]:
        """Summits with a key that should be in force by now (after a restart)."""
        due = self.clock.now() - e2ee.IN_FORCE_AFTER
        newer = aliased(KeyEpochRow)
        async with self._sessions() as session:
            return list(
                (
                    await session.scalars(
                        select(KeyEpochRow.summit_id)
                        .join(SummitRow, SummitRow.id == KeyEpochRow.summit_id)
                        .where(
                            KeyEpochRow.in_force_at.is_(None),
                            KeyEpochRow.made_at <= due,
                            SummitRow.phase.in_([p.value for p in phases.Phase if not p.is_over]),
                            ~select(newer.epoch)
                            .where(
                                newer.summit_id == KeyEpochRow.summit_id,
                                newer.epoch > KeyEpochRow.epoch,
                            )
                            .exists(),
                        )
                    )
                ).all()
            )

    def _background(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- readouts

    async def publish_readout(
        self, grant: Grant, summit_id: str, statement: str | None, embargo_until: datetime | None
    ) -> ReadoutView:
        """The side's statement after the talks; `None` publishes "no statement"."""
        require_summit(grant, summit_id)
        require_coordinator(grant)
        if statement is not None:
            require_text(statement, "statement", MAX_READOUT)
        if embargo_until is not None:
            embargo_until = require_aware(embargo_until, "embargo_until")
        now = self.clock.now()
        async with self._command(summit_id) as session:
            row = await self._summit(session, summit_id)
            if row.phase != phases.Phase.ENDED.value:
                raise IllegalTransition("readouts are published once the summit has ended")
            if await session.get(ReadoutRow, (summit_id, grant.side_id)) is not None:
                raise Conflict("your side has already published its readout")
            readout = ReadoutRow(
                summit_id=summit_id,
                side_id=grant.side_id,
                text=statement.strip() if statement else None,
                embargo_until=embargo_until,
                published_at=now,
            )
            session.add(readout)
            await self._audit(
                session,
                summit_id,
                actor_of(grant),
                "readout_published",
                {
                    "side": grant.side_id,
                    "no_statement": statement is None,
                    "embargo_until": embargo_until.isoformat() if embargo_until else None,
                },
                now,
            )
            sides = await self._sides(session, summit_id)
        self.hub.announce(summit_id, {"type": "readout", "side": grant.side_id})
        return readout_view(readout, sides)

    async def readouts(self, grant: Grant, summit_id: str) -> list[ReadoutView]:
        require_summit(grant, summit_id)
        async with self._sessions() as session:
            return await self._readouts(session, summit_id, await self._sides(session, summit_id))

    # --- audit

    async def audit_trail(self, summit_id: str) -> list[audit.AuditEntry]:
        async with self._sessions() as session:
            await self._summit(session, summit_id)
            rows = (
                await session.scalars(
                    select(AuditRow).where(AuditRow.summit_id == summit_id).order_by(AuditRow.seq)
                )
            ).all()
        return [
            audit.AuditEntry(
                r.summit_id,
                r.seq,
                r.at,
                r.actor,
                r.action,
                json.loads(r.details),
                r.prev_hash,
                r.hash,
            )
            for r in rows
        ]

    # --- internals

    @asynccontextmanager
    async def _command(self, summit_id: str) -> AsyncIterator[AsyncSession]:
        """One transaction per command, one command at a time per summit."""
        async with self._locks[summit_id], self._sessions.begin() as session:
            yield session

    async def _set_presence(
        self,
        grant: Grant,
        summit_id: str,
        participant_id: str,
        presence: Presence,
        action: str,
        allowed_from: tuple[Presence, ...] | None,
        own_side_only: bool = True,
    ) -> ParticipantView:
        now = self.clock.now()
        async with self._command(summit_id) as session:
            row = await self._summit(session, summit_id)
            person = await self._participant(session, summit_id, participant_id)
            if own_side_only:
                require_own_side(grant, person.side_id)
            current = Presence(person.presence)
            if allowed_from is not None and current not in allowed_from:
                raise IllegalTransition(
                    f"{person.name} is {current.value}; cannot make them {presence.value}"
                )
            person.presence = presence.value
            if presence is Presence.REMOVED:
                person.revoked = True
            if presence is Presence.ADMITTED:
                row.empty_since = None
            elif current is Presence.ADMITTED and await self._call_is_empty(session, summit_id):
                row.empty_since = now
            left_call = current is Presence.ADMITTED and presence is not Presence.ADMITTED
            if left_call and (key := await session.get(PublicKeyRow, person.id)) is not None:
                await session.delete(key)  # out of the key exchange: the next key skips them
            await self._audit(
                session,
                summit_id,
                actor_of(grant),
                action,
                {"participant": person.id, "from": current.value},
                now,
            )
        self._control_seen[summit_id].pop(person.id, None)  # a console that left is not lost
        if current is Presence.ADMITTED and self._media is not None:
            await self._media.drop_participant(summit_id, person.id)
        self._announce_roster(summit_id, person, presence.value)
        if left_call:
            await self._settle_keys(summit_id)
        return participant_view(person)

    def _participant_row(
        self, summit: SummitRow, side: SideRow, name: str, role: Role, now: datetime
    ) -> ParticipantRow:
        return ParticipantRow(
            id=new_id(),
            summit_id=summit.id,
            side_id=side.id,
            name=name.strip(),
            name_key=name.strip().casefold(),
            role=role.value,
            presence=Presence.INVITED.value,
            grant_id=grants.new_grant_id(),
            revoked=False,
            created_at=now,
        )

    def _invite(self, summit: SummitRow, person: ParticipantRow) -> Invite:
        ends_at = summit.starts_at + timedelta(seconds=summit.planned_seconds)
        token = grants.issue(
            Grant(
                summit_id=summit.id,
                participant_id=person.id,
                side_id=person.side_id,
                role=Role(person.role),
                grant_id=person.grant_id,
                # Derived from the summit, so the same link can be shown again later.
                expires_at=grants.lifetime_for(ends_at, summit.created_at),
            ),
            self._secret,
        )
        return Invite(
            participant_view(person), token, f"{self._public_url}/room/{summit.id}#{token}"
        )

    def _announce_roster(self, summit_id: str, person: ParticipantRow, presence: str) -> None:
        self.hub.announce(
            summit_id,
            {
                "type": "roster",
                "participant": person.id,
                "name": person.name,
                "side": person.side_id,
                "role": person.role,
                "presence": presence,
            },
        )

    async def _refuse_duplicate(self, session: AsyncSession, side_id: str, name: str) -> None:
        existing = await session.scalar(
            select(ParticipantRow).where(
                ParticipantRow.side_id == side_id,
                ParticipantRow.name_key == name.strip().casefold(),
            )
        )
        if existing is not None:
            raise Conflict(f"{existing.name} is already on this side's roster")

    async def _call_is_empty(self, session: AsyncSession, summit_id: str) -> bool:
        in_call = await session.scalar(
            select(func.count())
            .select_from(ParticipantRow)
            .where(ParticipantRow.summit_id == summit_id, ParticipantRow.presence.in_(IN_CALL))
        )
        return not in_call

    async def _summit(self, session: AsyncSession, summit_id: str) -> SummitRow:
        row = await session.get(SummitRow, summit_id)
        if row is None:
            raise NotFound(f"no summit {summit_id!r}")
        return row

    async def _participant(
        self, session: AsyncSession, summit_id: str, participant_id: str
    ) -> ParticipantRow:
        person = await session.get(ParticipantRow, participant_id)
        if person is None or person.summit_id != summit_id:
            raise NotFound(f"no participant {participant_id!r} in this summit")
        return person

    async def _sides(self, session: AsyncSession, summit_id: str) -> list[SideRow]:
        return list(
            (
                await session.scalars(
                    select(SideRow).where(SideRow.summit_id == summit_id).order_by(SideRow.position)
                )
            ).all()
        )

    async def _readouts(
        self, session: AsyncSession, summit_id: str, sides: list[SideRow]
    ) -> list[ReadoutView]:
        rows = (
            await session.scalars(select(ReadoutRow).where(ReadoutRow.summit_id == summit_id))
        ).all()
        order = {side.id: side.position for side in sides}
        return [readout_view(r, sides) for r in sorted(rows, key=lambda r: order[r.side_id])]

    async def _audit(
        self,
        session: AsyncSession,
        summit_id: str,
        actor: str,
        action: str,
        details: dict[str, Any],
        now: datetime,
    ) -> None:
        last = await session.scalar(
            select(AuditRow)
            .where(AuditRow.summit_id == summit_id)
            .order_by(AuditRow.seq.desc())
            .limit(1)
        )
        entry = audit.seal(
            summit_id,
            (last.seq if last else 0) + 1,
            now,
            actor,
            action,
            details,
            last.hash if last else audit.GENESIS,
        )
        session.add(
            AuditRow(
                summit_id=summit_id,
                seq=entry.seq,
                at=entry.at,
                actor=actor,
                action=action,
                details=json.dumps(details, sort_keys=True),
                prev_hash=entry.prev_hash,
                hash=entry.hash,
            )
        )

    def _view(self, row: SummitRow, sides: list[SideRow], viewer_zone: str | None) -> SummitView:
        state = state_of(row, sides)
        today = self.clock.now()
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


# --- pure helpers


def state_of(row: SummitRow, sides: list[SideRow]) -> phases.SummitState:
    first, second = (side.id for side in sides)
    return phases.SummitState(
        phase=phases.Phase(row.phase),
        sides=(first, second),
        starts_at=row.starts_at,
        public_length=timedelta(seconds=row.public_seconds),
        go_live_consent=GoLiveConsent(row.go_live_consent),
        lobby_lead=timedelta(seconds=row.lobby_lead_seconds),
        end_grace=timedelta(seconds=row.end_grace_seconds),
        consents=frozenset(row.consents),
        version=row.version,
        public_since=row.public_since,
        private_since=row.private_since,
        ended_at=row.ended_at,
    )


def store_state(row: SummitRow, state: phases.SummitState) -> None:
    row.phase = state.phase.value
    row.version = state.version
    row.consents = sorted(state.consents)
    row.public_since = state.public_since
    row.private_since = state.private_since
    row.ended_at = state.ended_at


def participant_view(person: ParticipantRow) -> ParticipantView:
    return ParticipantView(person.id, person.side_id, person.name, person.role, person.presence)


def readout_view(readout: ReadoutRow, sides: list[SideRow]) -> ReadoutView:
    side_name = next(side.name for side in sides if side.id == readout.side_id)
    return ReadoutView(
        side_id=readout.side_id,
        side_name=side_name,
        statement=readout.text,
        no_statement=readout.text is None,
        embargo_until=readout.embargo_until,
        published_at=readout.published_at,
    )


def actor_of(grant: Grant) -> str:
    return f"{grant.role.value}:{grant.participant_id}"


def require_summit(grant: Grant, summit_id: str) -> None:
    if grant.summit_id != summit_id:
        raise NotPermitted("your invitation is for another summit")


def require_coordinator(grant: Grant) -> None:
    if grant.role is not Role.COORDINATOR:
        raise NotPermitted(f"only a coordinator may do this; you are {grant.role.value}")


def require_own_side(grant: Grant, side_id: str) -> None:
    if grant.side_id != side_id:
        raise NotPermitted("a coordinator acts on their own side only")


ACTIONS: dict[str, Callable[[str], phases.Event]] = {
    "open_lobby": lambda side: phases.OpenLobby(side),
    "consent": phases.ConsentToGoLive,
    "skip_public": phases.SkipPublic,
    "cut": lambda side: phases.Cut(side),
    "end": lambda side: phases.End(side),
    "cancel": phases.Cancel,
}
