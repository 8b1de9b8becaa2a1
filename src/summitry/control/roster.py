"""The roster and the lobby: invitations, arrival, admission, leaving and removal. Where a
participant may go is the presence machine's (`domain/presence.py`); this service loads,
applies, persists and carries out what follows."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from summitry.control.caller import (
    CallerContext,
    actor_of,
    require_coordinator,
    require_own_side,
    require_summit,
)
from summitry.control.consoles import Consoles
from summitry.control.events import Announce
from summitry.control.keys import KeyExchange
from summitry.control.media import RoomMedia
from summitry.control.unit import UnitOfWork
from summitry.control.views import Invite, Links, ParticipantView, participant_view
from summitry.domain import presence
from summitry.domain.errors import Conflict, IllegalTransition, NotPermitted
from summitry.domain.events import RosterChanged
from summitry.domain.invitation import Invitation, to_ics
from summitry.domain.model import MAX_NAME, Presence, Role, require_text
from summitry.domain.phases import Phase
from summitry.domain.presence import JoinedCall, LeftCall, Move, Revoked
from summitry.security import grants
from summitry.security.grants import Grant
from summitry.store.models import ParticipantRow, SideRow, SummitRow


def new_id() -> str:
    return secrets.token_hex(8)


# Each side's coordinators are made with the summit, by the operator: a coordinator
# cannot make another (who would skip the lobby) nor remove one.
COORDINATORS_COME_WITH_THE_SUMMIT = (
    "coordinators come with the summit, made by the operator; a coordinator invites "
    "principals, delegates, interpreters and observers"
)


def new_participant(
    summit: SummitRow, side: SideRow, name: str, role: Role, now: datetime
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


def invite_for(summit: SummitRow, person: ParticipantRow, secret: bytes, links: Links) -> Invite:
    """The participant's grant and link, derived from the summit so the same link can be
    shown again."""
    ends_at = summit.starts_at + timedelta(seconds=summit.planned_seconds)
    token = grants.issue(
        Grant(
            summit_id=summit.id,
            participant_id=person.id,
            side_id=person.side_id,
            role=Role(person.role),
            grant_id=person.grant_id,
            expires_at=grants.lifetime_for(ends_at, summit.created_at),
        ),
        secret,
    )
    return Invite(participant_view(person), token, links.invitation(summit.id, token))


def require_lobby_open(row: SummitRow) -> None:
    phase = Phase(row.phase)
    if phase is Phase.SCHEDULED:
        opens = row.starts_at - timedelta(seconds=row.lobby_lead_seconds)
        raise IllegalTransition(f"the lobby is not open yet; it opens at {opens.isoformat()}")
    if phase.is_over:
        raise IllegalTransition(f"the summit is {phase.value}")


def roster_event(person: ParticipantRow) -> RosterChanged:
    return RosterChanged(person.id, person.name, person.side_id, person.role, person.presence)


class Roster:
    def __init__(
        self,
        work: UnitOfWork,
        announce: Announce,
        grant_secret: bytes,
        links: Links,
        keys: KeyExchange,
        consoles: Consoles,
        media: RoomMedia | None,
    ) -> None:
        self._work = work
        self._announce = announce
        self._secret = grant_secret
        self._links = links
        self._keys = keys
        self._consoles = consoles
        self._media = media

    async def reads_the_talks(self, grant: Grant, summit_id: str) -> bool:
        async with self._work.reading() as repo:
            return (await CallerContext.load(repo, grant, summit_id)).reads_the_talks

    async def participants(self, grant: Grant, summit_id: str) -> list[ParticipantView]:
        """Everyone, for those who read the talks; the lobby sees only its own row."""
        async with self._work.reading() as repo:
            caller = await CallerContext.load(repo, grant, summit_id)
            if not caller.reads_the_talks:
                return [participant_view(caller.person)]
            return [participant_view(p) for p in await repo.roster(summit_id)]

    async def invite(
        self, grant: Grant, summit_id: str, name: str, role: Role, side_id: str | None
    ) -> Invite:
        require_summit(grant, summit_id)
        require_coordinator(grant)
        if side_id is not None and side_id != grant.side_id:
            raise NotPermitted("a coordinator invites people to their own side only")
        if role is Role.COORDINATOR:
            raise NotPermitted(COORDINATORS_COME_WITH_THE_SUMMIT)
        require_text(name, "name", MAX_NAME)
        now = self._work.clock.now()
        async with self._work.command(summit_id) as repo:
            row = await repo.summit(summit_id)
            if Phase(row.phase).is_over:
                raise IllegalTransition(f"the summit is {row.phase}; nobody can be invited")
            side = await repo.side(grant.side_id)
            existing = await repo.named(side.id, name)
            if existing is not None and not existing.revoked:
                raise Conflict(f"{existing.name} is already on this side's roster")
            if existing is None:
                person = new_participant(row, side, name, role, now)
                repo.add(person)
            else:  # removed before: invited again, with a new link (the old one stays dead)
                person = existing
                person.role, person.presence = role.value, Presence.INVITED.value
                person.grant_id, person.revoked = grants.new_grant_id(), False
            await repo.audit(
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
        self._announce(summit_id, roster_event(person))
        return invite_for(row, person, self._secret, self._links)

    async def reissue(self, grant: Grant, summit_id: str, participant_id: str) -> Invite:
        """A new link for someone of the coordinator's own side, or for the coordinator
        themselves: the old link stops working at once (it leaked, or was sent to the
        wrong person)."""
        require_summit(grant, summit_id)
        require_coordinator(grant)
        now = self._work.clock.now()
        async with self._work.command(summit_id) as repo:
            row = await repo.summit(summit_id)
            person = await repo.participant(summit_id, participant_id)
            require_own_side(grant, person.side_id)
            if person.role == Role.COORDINATOR.value and person.id != grant.participant_id:
                raise NotPermitted("a coordinator re-issues only their own link among coordinators")
            if person.revoked:
                raise Conflict(f"{person.name} was removed: invite them again instead")
            person.grant_id = grants.new_grant_id()
            await repo.audit(
                summit_id, actor_of(grant), "invitation_reissued", {"participant": person.id}, now
            )
        return invite_for(row, person, self._secret, self._links)

    async def invitation(
        self, grant: Grant, summit_id: str, participant_id: str
    ) -> tuple[Invite, bytes]:
        """The participant's link and calendar file: for the participant, or their coordinator."""
        require_summit(grant, summit_id)
        async with self._work.reading() as repo:
            row = await repo.summit(summit_id)
            person = await repo.participant(summit_id, participant_id)
            if grant.participant_id != person.id:
                require_coordinator(grant)
                require_own_side(grant, person.side_id)
            side = await repo.side(person.side_id)
        invite = invite_for(row, person, self._secret, self._links)
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

    async def knock(self, grant: Grant, summit_id: str) -> ParticipantView:
        """The participant arrives: a coordinator walks in, everyone else waits in the lobby."""
        require_summit(grant, summit_id)
        return await self._move(grant, summit_id, grant.participant_id, Move.KNOCK, own_side=False)

    async def admit(self, grant: Grant, summit_id: str, participant_id: str) -> ParticipantView:
        return await self._coordinator_move(grant, summit_id, participant_id, Move.ADMIT)

    async def deny(self, grant: Grant, summit_id: str, participant_id: str) -> ParticipantView:
        return await self._coordinator_move(grant, summit_id, participant_id, Move.DENY)

    async def remove(self, grant: Grant, summit_id: str, participant_id: str) -> ParticipantView:
        require_summit(grant, summit_id)
        require_coordinator(grant)
        if participant_id == grant.participant_id:
            raise NotPermitted("a coordinator cannot remove themselves")
        return await self._move(grant, summit_id, participant_id, Move.REMOVE, own_side=True)

    async def leave(self, grant: Grant, summit_id: str) -> ParticipantView:
        require_summit(grant, summit_id)
        return await self._move(grant, summit_id, grant.participant_id, Move.LEAVE, own_side=False)

    async def _coordinator_move(
        self, grant: Grant, summit_id: str, participant_id: str, move: Move
    ) -> ParticipantView:
        require_summit(grant, summit_id)
        require_coordinator(grant)
        return await self._move(grant, summit_id, participant_id, move, own_side=True)

    async def _move(
        self, grant: Grant, summit_id: str, participant_id: str, move: Move, own_side: bool
    ) -> ParticipantView:
        now = self._work.clock.now()
        async with self._work.command(summit_id) as repo:
            row = await repo.summit(summit_id)
            if move is Move.KNOCK:
                require_lobby_open(row)
            person = await repo.participant(summit_id, participant_id)
            if own_side:
                require_own_side(grant, person.side_id)
            if move is Move.REMOVE and person.role == Role.COORDINATOR.value:
                raise NotPermitted("a coordinator cannot remove another coordinator")
            change = presence.apply(Presence(person.presence), move, Role(person.role), person.name)
            if not change.changed:
                return participant_view(person)
            person.presence = change.after.value
            for effect in change.effects:
                if isinstance(effect, Revoked):
                    person.revoked = True
                elif isinstance(effect, JoinedCall):
                    row.empty_since = None
                elif isinstance(effect, LeftCall):
                    await self._keys.forget(repo, person.id)
                    await repo.flush()
                    if await repo.call_is_empty(summit_id):
                        row.empty_since = now
            details = {"participant": person.id}
            if move is not Move.KNOCK:
                details["from"] = change.before.value
            await repo.audit(summit_id, actor_of(grant), change.action, details, now)
        if move is not Move.KNOCK:
            self._consoles.forget(summit_id, person.id)  # a console that left is not lost
        left_call = LeftCall() in change.effects
        if left_call and self._media is not None:
            await self._media.drop_participant(summit_id, person.id)
        self._announce(summit_id, roster_event(person))
        if left_call:
            await self._keys.settle(summit_id)
        return participant_view(person)
