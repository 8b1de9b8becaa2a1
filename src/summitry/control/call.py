"""The call's media: publishing (WHIP), the room subscription, media state and who is on
air. Only admitted participants of a summit whose room is open reach the media plane,
and in the private phase only browsers holding the key receive feeds."""

from __future__ import annotations

import logging
from datetime import timedelta

from summitry.control.caller import (
    CallerContext,
    actor_of,
    require_coordinator,
    require_own_side,
    require_summit,
)
from summitry.control.events import Announce
from summitry.control.keys import KeyExchange
from summitry.control.media import (
    BroadcastControl,
    Feed,
    Offered,
    Published,
    Publisher,
    RoomMedia,
    peer_safe,
    peer_safe_candidates,
    require_media,
)
from summitry.control.unit import UnitOfWork
from summitry.control.views import IceServersView, turn_offer
from summitry.domain.errors import InvalidInput, NotFound, NotPermitted
from summitry.domain.events import OnAirChanged
from summitry.domain.model import Role
from summitry.domain.phases import Phase
from summitry.domain.sdp import PeerPolicy, check_description, trickle_fragment
from summitry.security.grants import Grant
from summitry.security.turn import TurnRelay, expiry

log = logging.getLogger(__name__)

# How long the credential of an operator's preflight check lasts.
PREFLIGHT = timedelta(minutes=10)


class CallMedia:
    def __init__(
        self,
        work: UnitOfWork,
        announce: Announce,
        keys: KeyExchange,
        room: RoomMedia | None,
        broadcast: BroadcastControl | None,
        peers: PeerPolicy,
        turn: TurnRelay | None,
    ) -> None:
        self._work = work
        self._announce = announce
        self._keys = keys
        self._room = room
        self._broadcast = broadcast
        self._peers = peers
        self._turn = turn

    async def ice_servers(self, grant: Grant, summit_id: str) -> IceServersView:
        """TURN for the caller's browser, with a credential of its own that lasts the
        summit (and its overrun), a few hours at most; issuing it is audited, the secret
        never leaves the server."""
        if self._turn is None:
            return IceServersView([], None)
        now = self._work.clock.now()
        async with self._work.command(summit_id) as repo:
            caller = await CallerContext.in_call(repo, grant, summit_id)
            row = caller.summit
            ends_at = row.starts_at + timedelta(seconds=row.planned_seconds)
            until = expiry(ends_at, now)
            await repo.audit(
                summit_id,
                caller.actor,
                "turn_credential_issued",
                {"participant": grant.participant_id, "expires_at": until.isoformat()},
                now,
            )
        return turn_offer(self._turn, grant.participant_id, until)

    def preflight_ice_servers(self) -> IceServersView:
        """For the operator's `summitry check`: TURN with a credential that lasts ten
        minutes, for no summit (logged, not in any summit's audit trail)."""
        if self._turn is None:
            return IceServersView([], None)
        expires_at = self._work.clock.now() + PREFLIGHT
        log.info("TURN credential for a preflight check, until %s", expires_at.isoformat())
        return turn_offer(self._turn, "preflight", expires_at)

    async def preflight(self, offer: str) -> str:
        """For the operator's `summitry check`: Janus's answer to one audio offer, so
        the check can prove ICE reaches Janus's media ports from where it runs."""
        offer = peer_safe(self._peers, check_description(offer), "the operator's preflight")
        return await require_media(self._room).preflight(offer)

    async def publish(self, grant: Grant, summit_id: str, offer: str) -> Published:
        require_summit(grant, summit_id)
        if not grant.role.publishes:
            raise NotPermitted("observers see and hear the talks; they do not publish")
        offer = peer_safe(self._peers, check_description(offer), actor_of(grant))
        caller = await self._in_call(grant, summit_id)
        person = caller.person
        return await require_media(self._room).publish(
            summit_id,
            Publisher(person.id, person.name, person.side_id, person.role),
            offer,
            encrypted=caller.phase is Phase.PRIVATE,
        )

    async def trickle(self, grant: Grant, summit_id: str, resource_id: str, fragment: str) -> None:
        self._own_resource(grant, summit_id, resource_id)
        candidates, completed = trickle_fragment(fragment)
        candidates = peer_safe_candidates(self._peers, candidates, actor_of(grant))
        await require_media(self._room).trickle(resource_id, candidates, completed)

    async def subscribe(self, grant: Grant, summit_id: str) -> Offered:
        await self._in_call(grant, summit_id)
        sees = await self._keys.receives_feeds(summit_id, grant.participant_id)
        return await require_media(self._room).subscribe(
            summit_id, grant.participant_id, sees_feeds=sees
        )

    async def answer(self, grant: Grant, summit_id: str, resource_id: str, answer: str) -> None:
        self._own_resource(grant, summit_id, resource_id)
        answer = peer_safe(self._peers, check_description(answer, "answer"), actor_of(grant))
        await require_media(self._room).answer(resource_id, answer)

    async def sync(self, grant: Grant, summit_id: str, resource_id: str) -> Offered:
        self._own_resource(grant, summit_id, resource_id)
        await self._in_call(grant, summit_id)
        sees = await self._keys.receives_feeds(summit_id, grant.participant_id)
        return await require_media(self._room).sync(resource_id, sees_feeds=sees)

    async def choose_layers(
        self, grant: Grant, summit_id: str, resource_id: str, layers: dict[int, int]
    ) -> None:
        """The receiving browser picks each feed's video layer: a poor path takes a lower
        one instead of freezing on the highest."""
        self._own_resource(grant, summit_id, resource_id)
        await require_media(self._room).choose_layers(resource_id, layers)

    async def leave(self, grant: Grant, summit_id: str, resource_id: str) -> None:
        self._own_resource(grant, summit_id, resource_id)
        await require_media(self._room).leave(resource_id)

    async def set_media_state(self, grant: Grant, summit_id: str, audio: bool, video: bool) -> None:
        await self._in_call(grant, summit_id)
        await require_media(self._room).set_media_state(
            summit_id, grant.participant_id, audio, video
        )

    async def feeds(self, grant: Grant, summit_id: str) -> list[Feed]:
        async with self._work.reading() as repo:
            await CallerContext.reader(repo, grant, summit_id)
        return require_media(self._room).feeds(summit_id)

    async def choose_on_air(
        self, grant: Grant, summit_id: str, participant_id: str | None
    ) -> dict[str, str | None]:
        """A coordinator puts someone of their own side on air (None: the default)."""
        require_summit(grant, summit_id)
        require_coordinator(grant)
        now = self._work.clock.now()
        async with self._work.command(summit_id) as repo:
            await repo.summit(summit_id)
            if participant_id is not None:
                person = await repo.participant(summit_id, participant_id)
                require_own_side(grant, person.side_id)
                if not Role(person.role).publishes:
                    raise InvalidInput(
                        f"{person.name} is an observer and never on air", field="participant_id"
                    )
            await repo.audit(
                summit_id,
                actor_of(grant),
                "on_air_chosen",
                {"side": grant.side_id, "participant": participant_id},
                now,
            )
        broadcast = require_media(self._broadcast)
        await broadcast.choose_on_air(summit_id, grant.side_id, participant_id)
        on_air = broadcast.on_air(summit_id)
        self._announce(summit_id, OnAirChanged(on_air))
        return on_air

    async def on_air(self, grant: Grant, summit_id: str) -> dict[str, str | None]:
        require_summit(grant, summit_id)
        return require_media(self._broadcast).on_air(summit_id)

    async def _in_call(self, grant: Grant, summit_id: str) -> CallerContext:
        async with self._work.reading() as repo:
            return await CallerContext.in_call(repo, grant, summit_id)

    def _own_resource(self, grant: Grant, summit_id: str, resource_id: str) -> None:
        require_summit(grant, summit_id)
        owner = require_media(self._room).owner(resource_id)
        if owner is None or owner[0] != summit_id:
            raise NotFound("no such media resource in this summit")
        if owner[1] != grant.participant_id:
            raise NotPermitted("this media resource belongs to someone else")
