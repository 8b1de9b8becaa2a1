"""Summits as the organiser and their participants see them: creating, listing and reading
summits, reading grants and event tickets."""

from __future__ import annotations

import secrets
from datetime import datetime

from summitry.control.caller import OPERATOR_ACTOR, require_summit
from summitry.control.roster import invite_for, new_id, new_participant
from summitry.control.unit import UnitOfWork
from summitry.control.views import Invite, Links, SummitView, phase_changed, summit_view
from summitry.domain.errors import NotAuthenticated
from summitry.domain.events import PhaseChanged
from summitry.domain.model import Role, SummitDraft, slugify
from summitry.domain.phases import Phase
from summitry.domain.times import require_aware, require_zone
from summitry.security import grants
from summitry.security.grants import Grant
from summitry.store.models import SideRow, SummitRow


class Catalog:
    def __init__(self, work: UnitOfWork, grant_secret: bytes, links: Links) -> None:
        self._work = work
        self._secret = grant_secret
        self._links = links
        self._spent: dict[str, datetime] = {}  # event-stream tickets used, until they lapse

    async def create(self, draft: SummitDraft) -> tuple[SummitView, list[Invite]]:
        now = self._work.clock.now()
        draft.validate(now)
        summit_id = new_id()
        row = SummitRow(
            id=summit_id,
            slug=slugify(draft.title, secrets.token_hex(12)),
            title=draft.title.strip(),
            agenda=draft.agenda.strip(),
            starts_at=require_aware(draft.starts_at, "starts_at"),
            planned_seconds=int(draft.planned_length.total_seconds()),
            public_seconds=int(draft.public_length.total_seconds()),
            lobby_lead_seconds=int(draft.lobby_lead.total_seconds()),
            end_grace_seconds=int(draft.end_grace.total_seconds()),
            go_live_consent=draft.go_live_consent.value,
            phase=Phase.SCHEDULED.value,
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
            new_participant(row, side, draft_side.coordinator_name, Role.COORDINATOR, now)
            for side, draft_side in zip(sides, draft.sides, strict=True)
        ]
        async with self._work.writing() as repo:
            repo.add(row)
            await repo.flush()
            repo.add(*sides)
            await repo.flush()
            repo.add(*coordinators)
            await repo.audit(
                row.id,
                OPERATOR_ACTOR,
                "summit_created",
                {
                    "title": row.title,
                    "starts_at": row.starts_at.isoformat(),
                    "planned_seconds": row.planned_seconds,
                    "public_seconds": row.public_seconds,
                    "lobby_lead_seconds": row.lobby_lead_seconds,
                    "end_grace_seconds": row.end_grace_seconds,
                    "go_live_consent": row.go_live_consent,
                    "sides": [
                        {"id": side.id, "name": side.name, "time_zone": side.time_zone}
                        for side in sides
                    ],
                    "coordinators": [p.id for p in coordinators],
                },
                now,
            )
        invites = [invite_for(row, p, self._secret, self._links) for p in coordinators]
        return summit_view(row, sides, None, now), invites

    async def list_all(self) -> list[SummitView]:
        now = self._work.clock.now()
        async with self._work.reading() as repo:
            rows = await repo.summits()
            sides = await repo.sides_of([row.id for row in rows])
        return [summit_view(row, sides[row.id], None, now) for row in rows]

    async def get(self, summit_id: str, viewer_zone: str | None = None) -> SummitView:
        if viewer_zone is not None:
            require_zone(viewer_zone, "tz")
        async with self._work.reading() as repo:
            row = await repo.summit(summit_id)
            sides = await repo.sides(row.id)
        return summit_view(row, sides, viewer_zone, self._work.clock.now())

    async def phase_event(self, summit_id: str) -> PhaseChanged:
        """Where the summit stands now, as its event stream's first event."""
        return phase_changed(await self.get(summit_id), self._work.clock.now())

    async def authenticate(self, token: str, audience: str = grants.AUDIENCE) -> Grant:
        """The grant `token` carries, if its participant still holds it."""
        now = self._work.clock.now()
        grant = grants.read(token, self._secret, now, audience)
        if audience == grants.EVENTS_AUDIENCE:
            self._spend_ticket(grant, now)
        async with self._work.reading() as repo:
            person = await repo.person(grant.participant_id)
        if (
            person is None
            or person.revoked
            or person.grant_id != grant.grant_id
            or person.summit_id != grant.summit_id
        ):
            raise NotAuthenticated("this invitation link has been revoked")
        return grant

    def _spend_ticket(self, ticket: Grant, now: datetime) -> None:
        """A ticket opens one stream: one seen before is refused (it may have been read
        from a log or a proxy). Spent tickets are forgotten once they would have lapsed."""
        self._spent = {once: until for once, until in self._spent.items() if until > now}
        if ticket.once is None or ticket.once in self._spent:
            raise NotAuthenticated("this event-stream ticket was used already; ask for a new one")
        self._spent[ticket.once] = ticket.expires_at

    def events_ticket(self, grant: Grant, summit_id: str) -> tuple[str, datetime]:
        """A ticket to open this summit's event stream, good for a minute."""
        require_summit(grant, summit_id)
        return grants.events_ticket(grant, self._secret, self._work.clock.now())

    async def active_summits(self) -> list[str]:
        """Summits whose room should exist: lobby, public or private."""
        async with self._work.reading() as repo:
            return await repo.summit_ids_in((Phase.LOBBY, Phase.PUBLIC, Phase.PRIVATE))

    async def public_summits(self) -> list[str]:
        async with self._work.reading() as repo:
            return await repo.summit_ids_in((Phase.PUBLIC,))
