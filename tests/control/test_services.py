"""The orchestrator on a real database (SQLite and PostgreSQL): what it writes, what it
refuses, and that a refusal writes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from summitry.control.events import EventHub
from summitry.control.services import Services, build_services
from summitry.domain.errors import (
    Conflict,
    IllegalTransition,
    InvalidInput,
    NotAuthenticated,
    NotPermitted,
    StaleVersion,
)
from summitry.domain.model import Role, SideDraft, SummitDraft
from summitry.security import audit, grants
from summitry.store.database import sessions
from summitry.store.models import AuditRow, ParticipantRow
from summitry.web.links import WebLinks
from tests.conftest import HandClock

START = datetime(2021, 12, 7, 15, 0, tzinfo=UTC)
DRAFT = SummitDraft(
    title="Russia – United States video summit",
    agenda="Strategic stability",
    starts_at=START,
    planned_length=timedelta(hours=2),
    public_length=timedelta(minutes=10),
    sides=(
        SideDraft("Russian Federation", "Europe/Moscow", "Yuri Ushakov"),
        SideDraft("United States", "America/New_York", "Jake Sullivan"),
    ),
)


def on(engine: AsyncEngine, clock: HandClock) -> Services:
    """Services of their own on `engine`, as a second server start would build them."""
    return build_services(
        sessions(engine),
        b"s" * 48,
        WebLinks("http://t"),
        EventHub(),
        lambda work: work.close(),
        clock,
    )


async def seeded(services: Services) -> tuple[str, grants.Grant, grants.Grant]:
    summit, invites = await services.catalog.create(DRAFT)
    ru, us = [await services.catalog.authenticate(invite.token) for invite in invites]
    return summit.id, ru, us


async def count(engine: AsyncEngine, table: type) -> int:
    async with sessions(engine)() as session:
        return int(await session.scalar(select(func.count()).select_from(table)) or 0)


async def test_seed_summit_shows_each_sides_wall_time(services: Services) -> None:
    summit, invites = await services.catalog.create(DRAFT)
    assert [side.local_start.isoformat() for side in summit.sides] == [
        "2021-12-07T18:00:00+03:00",
        "2021-12-07T10:00:00-05:00",
    ]
    assert (summit.phase, summit.version, summit.allowed_actions) == (
        "scheduled",
        0,
        ["open_lobby", "cancel"],
    )
    assert [(i.participant.name, i.participant.role) for i in invites] == [
        ("Yuri Ushakov", "coordinator"),
        ("Jake Sullivan", "coordinator"),
    ]
    assert invites[0].link == f"http://summitry.test/room/{summit.id}#{invites[0].token}"
    again = await services.catalog.get(summit.id, viewer_zone="Asia/Tokyo")
    assert again.viewer_local_start is not None
    assert again.viewer_local_start.isoformat() == "2021-12-08T00:00:00+09:00"
    assert again.sides == summit.sides


async def test_offset_warning_when_dst_differs(services: Services, clock: HandClock) -> None:
    clock.current = datetime(2021, 10, 1, tzinfo=UTC)
    summit, _ = await services.catalog.create(DRAFT)
    assert [side.offset_warning for side in summit.sides] == [
        None,
        "America/New_York is at UTC-04:00 today but will be at UTC-05:00 on the day of the summit",
    ]


async def test_the_whole_path_is_audited_and_verifies(services: Services) -> None:
    summit_id, ru, us = await seeded(services)
    states = [(await services.phases.act(ru, summit_id, "open_lobby", 0)).phase]
    states.append((await services.phases.act(ru, summit_id, "consent", 1)).phase)
    live = await services.phases.act(us, summit_id, "consent", 2)
    states.append(live.phase)
    assert live.public_ends_at == live.public_since + timedelta(minutes=10)  # type: ignore[operator]
    states.append((await services.phases.act(us, summit_id, "cut", 3)).phase)
    states.append((await services.phases.act(ru, summit_id, "end", 4)).phase)
    assert states == ["lobby", "lobby", "public", "private", "ended"]
    trail = await services.catalog.audit_trail(summit_id)
    assert [entry.action for entry in trail] == [
        "summit_created",
        "open_lobby",
        "consent",
        "consent",
        "cut",
        "end",
    ]
    assert audit.verify(trail) == audit.Verdict(True, 6)
    assert trail[4].details["effects"] == ["StopBroadcast", "EnterPrivate"]
    assert trail[4].actor == f"coordinator:{us.participant_id}"


async def test_stale_version_is_refused_and_writes_nothing(
    services: Services, engine: AsyncEngine
) -> None:
    summit_id, ru, us = await seeded(services)
    await services.phases.act(ru, summit_id, "open_lobby", 0)
    records = await count(engine, AuditRow)
    with pytest.raises(StaleVersion, match="version 1, you acted on 0"):
        await services.phases.act(us, summit_id, "cancel", 0)
    assert (await services.catalog.get(summit_id)).phase == "lobby"
    assert await count(engine, AuditRow) == records


async def test_illegal_action_is_refused_and_writes_nothing(
    services: Services, engine: AsyncEngine
) -> None:
    summit_id, ru, _ = await seeded(services)
    records = await count(engine, AuditRow)
    with pytest.raises(IllegalTransition, match="cannot cut while the summit is scheduled"):
        await services.phases.act(ru, summit_id, "cut", None)
    with pytest.raises(InvalidInput, match="unknown action 'explode'"):
        await services.phases.act(ru, summit_id, "explode", None)
    assert await count(engine, AuditRow) == records
    assert (await services.catalog.get(summit_id)).version == 0


async def test_only_coordinators_act_and_only_on_their_side(
    services: Services, engine: AsyncEngine
) -> None:
    summit_id, ru, us = await seeded(services)
    principal = await services.catalog.authenticate(
        (await services.roster.invite(ru, summit_id, "Vladimir Putin", Role.PRINCIPAL, None)).token
    )
    people = await count(engine, ParticipantRow)
    with pytest.raises(NotPermitted, match="only a coordinator"):
        await services.phases.act(principal, summit_id, "open_lobby", None)
    with pytest.raises(NotPermitted, match="own side"):
        await services.roster.invite(ru, summit_id, "Joe Biden", Role.PRINCIPAL, us.side_id)
    with pytest.raises(NotPermitted, match="only a coordinator"):
        await services.roster.invite(principal, summit_id, "Someone", Role.DELEGATE, None)
    with pytest.raises(NotPermitted, match="own side"):
        await services.roster.remove(us, summit_id, principal.participant_id)
    assert await count(engine, ParticipantRow) == people


async def test_duplicate_participant_is_refused(services: Services, engine: AsyncEngine) -> None:
    summit_id, ru, us = await seeded(services)
    await services.roster.invite(ru, summit_id, "Sergey Lavrov", Role.DELEGATE, None)
    people = await count(engine, ParticipantRow)
    with pytest.raises(Conflict, match="already on this side's roster"):
        await services.roster.invite(ru, summit_id, "  sergey lavrov ", Role.INTERPRETER, None)
    assert await count(engine, ParticipantRow) == people
    # The same name on the other side is another person.
    await services.roster.invite(us, summit_id, "Sergey Lavrov", Role.INTERPRETER, None)


async def test_grants_are_bound_to_their_summit_and_revocable(services: Services) -> None:
    summit_id, ru, _ = await seeded(services)
    other_id, other_ru, _ = await seeded(services)
    with pytest.raises(NotPermitted, match="another summit"):
        await services.phases.act(other_ru, summit_id, "open_lobby", None)
    invite = await services.roster.invite(ru, summit_id, "Dmitry Peskov", Role.DELEGATE, None)
    await services.catalog.authenticate(invite.token)
    await services.roster.remove(ru, summit_id, invite.participant.id)
    with pytest.raises(NotAuthenticated, match="revoked"):
        await services.catalog.authenticate(invite.token)
    with pytest.raises(NotPermitted, match="cannot remove themselves"):
        await services.roster.remove(ru, summit_id, ru.participant_id)
    assert other_id != summit_id


async def test_lobby_admission(services: Services) -> None:
    summit_id, ru, us = await seeded(services)
    putin = await services.catalog.authenticate(
        (await services.roster.invite(ru, summit_id, "Vladimir Putin", Role.PRINCIPAL, None)).token
    )
    with pytest.raises(IllegalTransition, match="lobby is not open yet"):
        await services.roster.knock(putin, summit_id)
    await services.phases.act(us, summit_id, "open_lobby", None)
    assert (await services.roster.knock(putin, summit_id)).presence == "waiting"
    assert (await services.roster.knock(ru, summit_id)).presence == "admitted"
    with pytest.raises(NotPermitted, match="own side"):
        await services.roster.admit(us, summit_id, putin.participant_id)
    assert (await services.roster.admit(ru, summit_id, putin.participant_id)).presence == "admitted"
    roster = {p.name: p.presence for p in await services.roster.participants(us, summit_id)}
    assert roster == {
        "Yuri Ushakov": "admitted",
        "Jake Sullivan": "invited",
        "Vladimir Putin": "admitted",
    }
    with pytest.raises(IllegalTransition, match="is admitted; cannot make them admitted"):
        await services.roster.admit(ru, summit_id, putin.participant_id)


async def test_the_clock_opens_cuts_and_ends(services: Services, clock: HandClock) -> None:
    summit_id, ru, us = await seeded(services)
    clock.current = START - timedelta(minutes=31)
    assert await services.phases.tick() == []
    clock.advance(minutes=1)
    assert await services.phases.tick() == [summit_id]
    assert (await services.catalog.get(summit_id)).phase == "lobby"
    for grant in (ru, us):
        await services.roster.knock(grant, summit_id)
        await services.phases.act(grant, summit_id, "consent", None)
    assert (await services.catalog.get(summit_id)).phase == "public"
    clock.advance(minutes=10)
    assert await services.phases.tick() == [summit_id]
    summit = await services.catalog.get(summit_id)
    assert summit.phase == "private"
    trail = await services.catalog.audit_trail(summit_id)
    assert (trail[-1].actor, trail[-1].details["reason"]) == ("clock", "planned_end")
    await services.roster.leave(ru, summit_id)
    clock.advance(minutes=10)
    assert await services.phases.tick() == []  # the US coordinator is still in
    await services.roster.leave(us, summit_id)
    clock.advance(minutes=4)
    assert await services.phases.tick() == []
    clock.advance(minutes=1)
    assert await services.phases.tick() == [summit_id]
    assert (await services.catalog.get(summit_id)).phase == "ended"


async def test_forced_cut_from_the_media_plane(services: Services) -> None:
    from summitry.domain.phases import CutReason

    summit_id, ru, us = await seeded(services)
    await services.phases.act(ru, summit_id, "open_lobby", None)
    with pytest.raises(IllegalTransition):
        await services.phases.fail(summit_id, CutReason.BROADCAST_FAILURE)
    await services.phases.act(ru, summit_id, "consent", None)
    await services.phases.act(us, summit_id, "consent", None)
    assert (await services.phases.fail(summit_id, CutReason.CONTROL_LOST)).phase == "private"
    with pytest.raises(IllegalTransition, match="never broadcast again"):
        await services.phases.act(ru, summit_id, "consent", None)


async def test_readouts_with_embargo_and_no_statement(services: Services, clock: HandClock) -> None:
    summit_id, ru, us = await seeded(services)
    with pytest.raises(IllegalTransition, match="once the summit has ended"):
        await services.readouts.publish(ru, summit_id, "Too early", None)
    await services.phases.act(ru, summit_id, "open_lobby", None)
    await services.phases.act(ru, summit_id, "skip_public", None)
    await services.phases.act(us, summit_id, "end", None)
    embargo = clock.now() + timedelta(hours=1)
    await services.readouts.publish(ru, summit_id, "The presidents discussed...", embargo)
    await services.readouts.publish(us, summit_id, None, None)
    with pytest.raises(Conflict, match="already published"):
        await services.readouts.publish(us, summit_id, "Changed our mind", None)
    summit = await services.catalog.get(summit_id)
    public = await services.public.view(summit.slug)
    assert [(r.side_name, r.statement, r.no_statement) for r in public.readouts] == [
        ("United States", None, True)
    ]
    clock.advance(hours=1)
    public = await services.public.view(summit.slug)
    assert [(r.side_name, r.statement) for r in public.readouts] == [
        ("Russian Federation", "The presidents discussed..."),
        ("United States", None),
    ]


async def test_tampering_is_found_and_named(services: Services, engine: AsyncEngine) -> None:
    summit_id, ru, _ = await seeded(services)
    await services.phases.act(ru, summit_id, "open_lobby", None)
    await services.phases.act(ru, summit_id, "cancel", None)
    async with engine.begin() as connection:
        await connection.execute(
            text("UPDATE audit_records SET actor = 'operator' WHERE summit_id = :s AND seq = 2"),
            {"s": summit_id},
        )
    verdict = audit.verify(await services.catalog.audit_trail(summit_id))
    assert (verdict.ok, verdict.broken_seq) == (False, 2)


async def test_state_survives_a_restart(
    engine: AsyncEngine, clock: HandClock, database_url: str
) -> None:
    from summitry.store.database import make_engine, migrate

    first = on(engine, clock)
    summit_id, ru, _ = await seeded(first)
    await first.phases.act(ru, summit_id, "open_lobby", None)
    again = make_engine(database_url)
    await migrate(again)  # a second start migrates nothing and loses nothing
    try:
        second = on(again, clock)
        assert (await second.catalog.get(summit_id)).phase == "lobby"
        assert audit.verify(await second.catalog.audit_trail(summit_id)).records == 2
    finally:
        await again.dispose()


async def test_a_lost_console_cuts_the_broadcast(services: Services, clock: HandClock) -> None:
    summit_id, ru, us = await seeded(services)
    await services.phases.act(ru, summit_id, "open_lobby", None)
    for grant in (ru, us):
        await services.roster.knock(grant, summit_id)
        await services.phases.act(grant, summit_id, "consent", None)
        await services.phases.heartbeat(grant, summit_id)
    clock.advance(seconds=8)
    await services.phases.heartbeat(us, summit_id)
    assert await services.phases.tick() == []
    clock.advance(seconds=3)  # Russia's console has been silent for 11 s
    assert await services.phases.tick() == [summit_id]
    trail = await services.catalog.audit_trail(summit_id)
    assert (trail[-1].action, trail[-1].details["reason"]) == ("cut", "control_lost")
    with pytest.raises(NotPermitted, match="only a coordinator"):
        putin = await services.catalog.authenticate(
            (
                await services.roster.invite(ru, summit_id, "Vladimir Putin", Role.PRINCIPAL, None)
            ).token
        )
        await services.phases.heartbeat(putin, summit_id)


async def test_a_coordinator_who_leaves_is_not_a_lost_console(
    services: Services, clock: HandClock
) -> None:
    summit_id, ru, us = await seeded(services)
    await services.phases.act(ru, summit_id, "open_lobby", None)
    for grant in (ru, us):
        await services.roster.knock(grant, summit_id)
        await services.phases.heartbeat(grant, summit_id)
        await services.phases.act(grant, summit_id, "consent", None)
    await services.roster.leave(ru, summit_id)
    clock.advance(seconds=30)
    await services.phases.heartbeat(us, summit_id)
    assert await services.phases.tick() == []
    assert (await services.catalog.get(summit_id)).phase == "public"
