"""Every query of summitry, and the audit write: one repository per database session.
The control plane composes these; it never builds a query itself."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from summitry.domain import e2ee
from summitry.domain.errors import NotFound
from summitry.domain.model import MAX_LOBBY_LEAD, GoLiveConsent, Presence
from summitry.domain.phases import Phase, SummitState
from summitry.security.audit import AuditEntry, AuditKey, Head, seal
from summitry.store.models import (
    AuditRow,
    Base,
    KeyEpochRow,
    ParticipantRow,
    PinnedKeyRow,
    PublicKeyRow,
    ReadoutRow,
    SideRow,
    SummitRow,
    WrappedKeyRow,
)

NO_PUBLIC_SUMMIT = "there is no public summit at this address"


def has_public_page(slug: str) -> tuple[ColumnElement[bool], ...]:
    """The summit at `slug`, if it has a public part: one without has no public page,
    not even its title."""
    return SummitRow.slug == slug, SummitRow.public_seconds > 0


class Repository:
    def __init__(self, session: AsyncSession, audit_key: AuditKey) -> None:
        self.session = session
        self._audit_key = audit_key

    # --- writing

    def add(self, *rows: Base) -> None:
        self.session.add_all(rows)

    async def delete(self, row: Base) -> None:
        await self.session.delete(row)

    async def flush(self) -> None:
        await self.session.flush()

    # --- summits and sides

    async def summit(self, summit_id: str) -> SummitRow:
        row = await self.session.get(SummitRow, summit_id)
        if row is None:
            raise NotFound(f"no summit {summit_id!r}")
        return row

    async def summit_by_slug(self, slug: str) -> SummitRow:
        row = await self.session.scalar(select(SummitRow).where(*has_public_page(slug)))
        if row is None:
            raise NotFound(NO_PUBLIC_SUMMIT)
        return row

    async def summit_id_for_slug(self, slug: str) -> str:
        summit_id = await self.session.scalar(select(SummitRow.id).where(*has_public_page(slug)))
        if summit_id is None:
            raise NotFound(NO_PUBLIC_SUMMIT)
        return summit_id

    async def summits(self) -> list[SummitRow]:
        return list(await self.session.scalars(select(SummitRow).order_by(SummitRow.starts_at)))

    async def summit_ids_in(self, phases: Iterable[Phase]) -> list[str]:
        wanted = [phase.value for phase in phases]
        return list(
            await self.session.scalars(select(SummitRow.id).where(SummitRow.phase.in_(wanted)))
        )

    async def clock_may_move(self, now: datetime) -> list[SummitRow]:
        """Only summits the clock can move (see phases.due_event): a lobby about to open, a
        broadcast, an emptied private room. Months of scheduled summits cost nothing."""
        may_fall_due = (
            (
                (SummitRow.phase == Phase.SCHEDULED.value)
                & (SummitRow.starts_at <= now + MAX_LOBBY_LEAD)
            )
            | (SummitRow.phase == Phase.PUBLIC.value)
            | ((SummitRow.phase == Phase.PRIVATE.value) & SummitRow.empty_since.is_not(None))
        )
        return list(await self.session.scalars(select(SummitRow).where(may_fall_due)))

    async def sides(self, summit_id: str) -> list[SideRow]:
        return list(
            await self.session.scalars(
                select(SideRow).where(SideRow.summit_id == summit_id).order_by(SideRow.position)
            )
        )

    async def sides_of(self, summit_ids: list[str]) -> dict[str, list[SideRow]]:
        """Each summit's sides in order, in one query."""
        sides: dict[str, list[SideRow]] = defaultdict(list)
        if summit_ids:
            for side in await self.session.scalars(
                select(SideRow)
                .where(SideRow.summit_id.in_(summit_ids))
                .order_by(SideRow.summit_id, SideRow.position)
            ):
                sides[side.summit_id].append(side)
        return sides

    async def side(self, side_id: str) -> SideRow:
        side = await self.session.get(SideRow, side_id)
        assert side is not None  # sides are never deleted, and grants name real ones
        return side

    # --- participants

    async def person(self, participant_id: str) -> ParticipantRow | None:
        return await self.session.get(ParticipantRow, participant_id)

    async def participant(self, summit_id: str, participant_id: str) -> ParticipantRow:
        person = await self.session.get(ParticipantRow, participant_id)
        if person is None or person.summit_id != summit_id:
            raise NotFound(f"no participant {participant_id!r} in this summit")
        return person

    async def roster(self, summit_id: str) -> list[ParticipantRow]:
        """Everyone on the summit's roster who was not removed, in order of invitation."""
        return list(
            await self.session.scalars(
                select(ParticipantRow)
                .where(ParticipantRow.summit_id == summit_id, ParticipantRow.revoked.is_(False))
                .order_by(ParticipantRow.created_at)
            )
        )

    async def everyone(self, summit_id: str) -> dict[str, ParticipantRow]:
        """Every participant the summit ever had, removed ones too, by id."""
        rows = await self.session.scalars(
            select(ParticipantRow).where(ParticipantRow.summit_id == summit_id)
        )
        return {person.id: person for person in rows}

    async def named(self, side_id: str, name: str) -> ParticipantRow | None:
        return await self.session.scalar(
            select(ParticipantRow).where(
                ParticipantRow.side_id == side_id,
                ParticipantRow.name_key == name.strip().casefold(),
            )
        )

    async def call_is_empty(self, summit_id: str) -> bool:
        in_call = await self.session.scalar(
            select(func.count())
            .select_from(ParticipantRow)
            .where(
                ParticipantRow.summit_id == summit_id,
                ParticipantRow.presence == Presence.ADMITTED.value,
            )
        )
        return not in_call

    # --- the key exchange

    async def public_key(self, participant_id: str) -> PublicKeyRow | None:
        return await self.session.get(PublicKeyRow, participant_id)

    async def key_epoch(self, summit_id: str, epoch: int) -> KeyEpochRow:
        row = await self.session.get(KeyEpochRow, (summit_id, epoch))
        assert row is not None  # asked for only after the key state named it
        return row

    async def wrapped_key(self, summit_id: str, epoch: int, recipient: str) -> WrappedKeyRow | None:
        return await self.session.get(WrappedKeyRow, (summit_id, epoch, recipient))

    async def pinned_key(self, participant_id: str) -> PinnedKeyRow | None:
        return await self.session.get(PinnedKeyRow, participant_id)

    async def key_state(self, summit_id: str) -> e2ee.KeyState:
        posted = await self.session.scalars(
            select(PublicKeyRow)
            .where(PublicKeyRow.summit_id == summit_id)
            .order_by(PublicKeyRow.posted_at, PublicKeyRow.participant_id)
        )
        pins = {
            pin.participant_id: pin.public_key
            for pin in await self.session.scalars(
                select(PinnedKeyRow).where(PinnedKeyRow.summit_id == summit_id)
            )
        }
        epochs = (
            await self.session.scalars(
                select(KeyEpochRow)
                .where(KeyEpochRow.summit_id == summit_id)
                .order_by(KeyEpochRow.epoch)
            )
        ).all()
        by_epoch: defaultdict[int, dict[str, e2ee.Wrap]] = defaultdict(dict)
        for wrap in await self.session.scalars(
            select(WrappedKeyRow).where(WrappedKeyRow.summit_id == summit_id)
        ):
            by_epoch[wrap.epoch][wrap.recipient_id] = e2ee.Wrap(
                wrap.recipient_id, wrap.sender_id, wrap.public_key, wrap.wrapped, wrap.confirmed_at
            )
        members, changes = [], []
        for row in posted:
            pinned = pins.get(row.participant_id, row.public_key)
            if pinned == row.public_key:
                members.append(e2ee.Member(row.participant_id, row.public_key, row.posted_at))
            else:
                changes.append(
                    e2ee.KeyChange(row.participant_id, row.public_key, pinned, row.posted_at)
                )
        return e2ee.KeyState(
            members=members,
            changes=changes,
            epochs=[
                e2ee.Epoch(e.epoch, e.made_by, e.made_at, e.in_force_at, by_epoch[e.epoch])
                for e in epochs
            ],
        )

    async def overdue_keys(self, made_before: datetime) -> list[str]:
        """Summits still going whose newest key, made before `made_before`, is not in force."""
        newer = aliased(KeyEpochRow)
        return list(
            await self.session.scalars(
                select(KeyEpochRow.summit_id)
                .join(SummitRow, SummitRow.id == KeyEpochRow.summit_id)
                .where(
                    KeyEpochRow.in_force_at.is_(None),
                    KeyEpochRow.made_at <= made_before,
                    SummitRow.phase.in_([p.value for p in Phase if not p.is_over]),
                    ~select(newer.epoch)
                    .where(
                        newer.summit_id == KeyEpochRow.summit_id,
                        newer.epoch > KeyEpochRow.epoch,
                    )
                    .exists(),
                )
            )
        )

    # --- readouts

    async def readout(self, summit_id: str, side_id: str) -> ReadoutRow | None:
        return await self.session.get(ReadoutRow, (summit_id, side_id))

    async def readouts(self, summit_id: str) -> list[ReadoutRow]:
        return list(
            await self.session.scalars(select(ReadoutRow).where(ReadoutRow.summit_id == summit_id))
        )

    # --- the audit chain

    async def audit(
        self, summit_id: str, actor: str, action: str, details: dict[str, Any], now: datetime
    ) -> None:
        """Appends a signed record to the summit's trail after the head its row keeps, and
        moves the head, in the caller's transaction."""
        summit = await self.summit(summit_id)
        entry = seal(
            summit_id,
            summit.audit_seq + 1,
            now,
            actor,
            action,
            details,
            summit.audit_head,
            self._audit_key,
        )
        summit.audit_seq, summit.audit_head = entry.seq, entry.hash
        self.session.add(
            AuditRow(
                summit_id=summit_id,
                seq=entry.seq,
                at=entry.at,
                actor=actor,
                action=action,
                details=json.dumps(details, sort_keys=True),
                prev_hash=entry.prev_hash,
                hash=entry.hash,
                signature=entry.signature,
            )
        )

    async def audit_trail(self, summit_id: str) -> tuple[Head, list[AuditEntry]]:
        """The head the summit's row keeps, and the records the table holds."""
        summit = await self.summit(summit_id)
        rows = await self.session.scalars(
            select(AuditRow).where(AuditRow.summit_id == summit_id).order_by(AuditRow.seq)
        )
        return Head(summit.audit_seq, summit.audit_head), [
            AuditEntry(
                r.summit_id,
                r.seq,
                r.at,
                r.actor,
                r.action,
                json.loads(r.details),
                r.prev_hash,
                r.hash,
                r.signature,
            )
            for r in rows
        ]


def state_of(row: SummitRow, sides: list[SideRow]) -> SummitState:
    """What the phase machine needs of a stored summit."""
    first, second = (side.id for side in sides)
    return SummitState(
        phase=Phase(row.phase),
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


def store_state(row: SummitRow, state: SummitState) -> None:
    """Writes what the phase machine decided into the stored summit."""
    row.phase = state.phase.value
    row.version = state.version
    row.consents = sorted(state.consents)
    row.public_since = state.public_since
    row.private_since = state.private_since
    row.ended_at = state.ended_at
