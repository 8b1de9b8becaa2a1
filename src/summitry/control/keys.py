"""The key exchange of the private phase: the server relays public keys and wrapped
media keys between browsers, names who makes the next key, puts keys in force, and
keeps every browser without the key off the private feeds. It never sees a media key."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from summitry.control.caller import CLOCK_ACTOR, CallerContext, require_coordinator
from summitry.control.events import Announce
from summitry.control.media import RoomMedia
from summitry.control.unit import Spawn, UnitOfWork
from summitry.control.views import (
    KeyChangeView,
    KeyExchangeView,
    KeyMemberView,
    TranscriptMemberView,
    WrappedKeyView,
)
from summitry.domain import e2ee
from summitry.domain.events import FeedsChanged, KeysChanged
from summitry.domain.phases import Phase
from summitry.security.grants import Grant
from summitry.store.models import KeyEpochRow, PinnedKeyRow, PublicKeyRow, WrappedKeyRow
from summitry.store.repository import Repository


class KeyExchange:
    def __init__(
        self, work: UnitOfWork, announce: Announce, spawn: Spawn, media: RoomMedia | None
    ) -> None:
        self._work = work
        self._announce = announce
        self._spawn = spawn
        self._media = media

    async def view(self, grant: Grant, summit_id: str) -> KeyExchangeView:
        """What the caller's browser needs to hold the key: the members' public keys,
        the keys wrapped for it, and whether it should make the next key now."""
        async with self._work.reading() as repo:
            caller = await CallerContext.reader(repo, grant, summit_id)
            state = await repo.key_state(summit_id)
            people = await repo.everyone(summit_id)
        me = grant.participant_id
        mine = state.member(me)
        keys_for_me = [
            WrappedKeyView(
                epoch.number,
                wrap.sender_id,
                wrap.wrapped,
                [
                    TranscriptMemberView(r.recipient_id, people[r.recipient_id].name, r.public_key)
                    for r in sorted(epoch.wraps.values(), key=lambda r: r.recipient_id)
                ],
            )
            for epoch in (state.in_force, state.pending)
            if epoch is not None and mine is not None
            for wrap in [epoch.wraps.get(me)]
            if wrap is not None and wrap.public_key == mine.public_key
        ]
        return KeyExchangeView(
            private=caller.phase is Phase.PRIVATE,
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
            key_changes=[
                KeyChangeView(
                    participant_id=c.participant_id,
                    name=people[c.participant_id].name,
                    side_id=people[c.participant_id].side_id,
                    public_key=c.public_key,
                    pinned_key=c.pinned_key,
                )
                for c in state.changes
            ],
            receives_private=state.may_receive_private(me),
            make_key=state.key_maker == me,
            next_epoch=(state.newest.number if state.newest else 0) + 1,
        )

    async def post_public_key(self, grant: Grant, summit_id: str, public_key: str) -> None:
        """The caller's browser joins the key exchange (again, after a reload). Its first
        key is pinned; another one later waits for a coordinator's acceptance."""
        e2ee.decode_public_key(public_key)
        now = self._work.clock.now()
        me = grant.participant_id
        async with self._work.command(summit_id) as repo:
            caller = await CallerContext.in_call(repo, grant, summit_id)
            row = await repo.public_key(me)
            if row is not None and row.public_key == public_key:
                return
            if row is None:
                repo.add(
                    PublicKeyRow(
                        participant_id=me, summit_id=summit_id, public_key=public_key, posted_at=now
                    )
                )
            else:
                row.public_key, row.posted_at = public_key, now
            details = {"participant": me, "fingerprint": e2ee.fingerprint(public_key)}
            pin = await repo.pinned_key(me)
            if pin is None:
                repo.add(
                    PinnedKeyRow(
                        participant_id=me, summit_id=summit_id, public_key=public_key, pinned_at=now
                    )
                )
            elif pin.public_key != public_key:
                details["pinned"] = e2ee.fingerprint(pin.public_key)
            action = "e2ee_key_changed" if "pinned" in details else "e2ee_public_key"
            await repo.audit(summit_id, caller.actor, action, details, now)
        await self.settle(summit_id)

    async def accept_key_change(
        self, grant: Grant, summit_id: str, participant_id: str, public_key: str
    ) -> None:
        """A coordinator in the call vouches for another participant's new key (asked by
        another channel): it is pinned, and the next media key is made for it too."""
        require_coordinator(grant)
        now = self._work.clock.now()
        async with self._key_command(grant, summit_id) as (repo, caller, state):
            state.check_acceptance(grant.participant_id, participant_id, public_key)
            pin = await repo.pinned_key(participant_id)
            assert pin is not None  # a key change is a posted key that differs from its pin
            before = pin.public_key
            pin.public_key, pin.pinned_at = public_key, now
            await repo.audit(
                summit_id,
                caller.actor,
                "e2ee_key_change_accepted",
                {
                    "participant": participant_id,
                    "fingerprint": e2ee.fingerprint(public_key),
                    "pinned": e2ee.fingerprint(before),
                },
                now,
            )
        await self.settle(summit_id)

    async def make_key(
        self, grant: Grant, summit_id: str, epoch: int, wraps: dict[str, str]
    ) -> None:
        """A member's browser made a new media key and wrapped it for every member."""
        e2ee.check_wraps(wraps)
        async with self._key_command(grant, summit_id) as (repo, caller, state):
            state.check_new_epoch(grant.participant_id, epoch, set(wraps))
            repo.add(
                KeyEpochRow(
                    summit_id=summit_id,
                    epoch=epoch,
                    made_by=grant.participant_id,
                    made_at=self._work.clock.now(),
                )
            )
            await self._add_wraps(repo, caller, state, epoch, wraps)
        self._spawn(self._settle_when_due(summit_id))
        await self.settle(summit_id)

    async def confirm_key(self, grant: Grant, summit_id: str, epoch: int) -> None:
        """The caller's browser unwrapped the key of `epoch`."""
        async with self._key_command(grant, summit_id) as (repo, _, state):
            state.check_confirm(grant.participant_id, epoch)
            wrap = await repo.wrapped_key(summit_id, epoch, grant.participant_id)
            assert wrap is not None
            if wrap.confirmed_at is not None:
                return
            wrap.confirmed_at = self._work.clock.now()
        await self.settle(summit_id)

    async def report_failure(self, grant: Grant, summit_id: str, epoch: int) -> None:
        """The caller's browser could not open the key of `epoch` wrapped for it (garbage,
        or made for other keys than its own): the wrap is taken back, and a new key is
        made if it was the newest."""
        async with self._key_command(grant, summit_id) as (repo, caller, state):
            made = state.check_failure(grant.participant_id, epoch)
            wrap = await repo.wrapped_key(summit_id, epoch, grant.participant_id)
            assert wrap is not None
            await repo.delete(wrap)
            await repo.audit(
                summit_id,
                caller.actor,
                "e2ee_wrap_failed",
                {"participant": grant.participant_id, "epoch": epoch, "maker": made.made_by},
                self._work.clock.now(),
            )
        await self.settle(summit_id)

    async def forget(self, repo: Repository, participant_id: str) -> None:
        """Takes a participant who left the call out of the exchange: the next key skips them."""
        key = await repo.public_key(participant_id)
        if key is not None:
            await repo.delete(key)

    async def receives_feeds(self, summit_id: str, participant_id: str) -> bool:
        """In the private phase only browsers that hold the key receive feeds."""
        async with self._work.reading() as repo:
            row = await repo.summit(summit_id)
            if row.phase != Phase.PRIVATE.value:
                return True
            return (await repo.key_state(summit_id)).may_receive_private(participant_id)

    async def overdue(self) -> list[str]:
        """Summits with a key that should be in force by now (after a restart)."""
        async with self._work.reading() as repo:
            return await repo.overdue_keys(self._work.clock.now() - e2ee.IN_FORCE_AFTER)

    async def settle(self, summit_id: str) -> None:
        """Puts a key in force when it is due, keeps browsers without the key off private
        feeds, and tells every browser that the key exchange moved."""
        now = self._work.clock.now()
        async with self._work.command(summit_id) as repo:
            row = await repo.summit(summit_id)
            state = await repo.key_state(summit_id)
            due = state.due_in_force(now)
            if due is not None:
                (await repo.key_epoch(summit_id, due.number)).in_force_at = now
                recipients = [
                    m.participant_id for m in state.members if m.participant_id in due.wraps
                ]
                await repo.audit(
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
                state = await repo.key_state(summit_id)
        private = row.phase == Phase.PRIVATE.value
        if private and self._media is not None:
            await self._media.withhold_feeds(
                summit_id,
                {
                    m.participant_id
                    for m in state.members
                    if state.may_receive_private(m.participant_id)
                },
            )
        self._announce(
            summit_id,
            KeysChanged(
                in_force=state.in_force.number if state.in_force else None,
                pending=state.pending.number if state.pending else None,
            ),
        )
        if private:  # only then do keys decide who receives feeds: some may sync now
            self._announce(summit_id, FeedsChanged())

    async def _settle_when_due(self, summit_id: str) -> None:
        await asyncio.sleep(e2ee.IN_FORCE_AFTER.total_seconds())
        await self.settle(summit_id)

    @asynccontextmanager
    async def _key_command(
        self, grant: Grant, summit_id: str
    ) -> AsyncIterator[tuple[Repository, CallerContext, e2ee.KeyState]]:
        """A command of the key exchange: its caller in the call, on the current keys."""
        async with self._work.command(summit_id) as repo:
            caller = await CallerContext.in_call(repo, grant, summit_id)
            yield repo, caller, await repo.key_state(summit_id)

    async def _add_wraps(
        self,
        repo: Repository,
        caller: CallerContext,
        state: e2ee.KeyState,
        epoch: int,
        wraps: dict[str, str],
    ) -> None:
        """The caller's new key of `epoch`, wrapped for each recipient, and audited."""
        rows: list[WrappedKeyRow] = []
        for recipient, wrapped in wraps.items():
            member = state.member(recipient)
            assert member is not None  # checked against the members just before
            rows.append(
                WrappedKeyRow(
                    summit_id=caller.summit.id,
                    epoch=epoch,
                    recipient_id=recipient,
                    sender_id=caller.person.id,
                    public_key=member.public_key,
                    wrapped=wrapped,
                )
            )
        repo.add(*rows)
        await repo.audit(
            caller.summit.id,
            caller.actor,
            "e2ee_key_made",
            {"epoch": epoch, "recipients": sorted(wraps)},
            self._work.clock.now(),
        )
