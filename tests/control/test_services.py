"""The orchestrator on a real database (SQLite and PostgreSQL): what it writes, what it
refuses, and that a refusal writes nothing."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import func, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from summitry.control.events import EventHub
from summitry.control.media import RecordingFile
from summitry.control.services import Services, build_services
from summitry.control.unit import UnitOfWork
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
from summitry.store.database import MIGRATIONS, sessions
from summitry.store.models import AuditRow, ParticipantRow
from summitry.web.links import WebLinks
from tests.conftest import AUDIT_KEY, HandClock

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
        AUDIT_KEY,
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
    checked = await services.audit.check(summit_id)
    trail = checked.entries
    assert [entry.action for entry in trail] == [
        "summit_created",
        "open_lobby",
        "consent",
        "consent",
        "cut",
        "end",
    ]
    assert checked.verdict == audit.Verdict(6)
    assert checked.head == audit.Head(6, trail[-1].hash)
    assert checked.public_key == AUDIT_KEY.public_key
    assert trail[0].details == {
        "title": DRAFT.title,
        "starts_at": START.isoformat(),
        "planned_seconds": 7200,
        "public_seconds": 600,
        "lobby_lead_seconds": 1800,
        "end_grace_seconds": 300,
        "go_live_consent": "both",
        "sides": [
            {"id": side.id, "name": side.name, "time_zone": side.time_zone}
            for side in (await services.catalog.get(summit_id)).sides
        ],
        "coordinators": [ru.participant_id, us.participant_id],
    }
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
    trail = (await services.audit.check(summit_id)).entries
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
    checked = await services.audit.check(summit_id)
    assert checked.verdict.ok
    assert [e.details for e in checked.entries if e.action == "readout_published"] == [
        {
            "side": ru.side_id,
            "no_statement": False,
            "text_sha256": hashlib.sha256(b"The presidents discussed...").hexdigest(),
            "embargo_until": embargo.isoformat(),
        },
        {"side": us.side_id, "no_statement": True, "text_sha256": None, "embargo_until": None},
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
    verdict = (await services.audit.check(summit_id)).verdict
    # The hash and its signature still agree: the chain finds the changed content.
    assert verdict.problems == (audit.Problem("chain", 2, "its content does not match its hash"),)


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
        assert (await second.audit.check(summit_id)).verdict == audit.Verdict(2)
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
    trail = (await services.audit.check(summit_id)).entries
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


async def test_a_receipt_is_the_signed_head_for_coordinators_only(services: Services) -> None:
    summit_id, ru, us = await seeded(services)
    await services.phases.act(ru, summit_id, "open_lobby", None)
    checked = await services.audit.check(summit_id)
    receipt = await services.audit.receipt(us, summit_id)
    assert receipt == audit.Receipt(
        summit_id,
        2,
        checked.head.hash,
        checked.entries[-1].at.isoformat(),
        receipt.signature,
        AUDIT_KEY.public_key,
    )
    assert audit.read_receipt(json.dumps(receipt.document()), summit_id) == receipt
    assert (await services.audit.check(summit_id, [receipt])).verdict == audit.Verdict(2)
    principal = await services.catalog.authenticate(
        (await services.roster.invite(ru, summit_id, "Vladimir Putin", Role.PRINCIPAL, None)).token
    )
    with pytest.raises(NotPermitted, match="only a coordinator"):
        await services.audit.receipt(principal, summit_id)
    other_id, other_ru, _ = await seeded(services)
    with pytest.raises(NotPermitted, match="another summit"):
        await services.audit.receipt(other_ru, summit_id)
    assert other_id != summit_id


async def test_a_removed_record_is_found_by_the_head_and_by_a_receipt(
    services: Services, engine: AsyncEngine
) -> None:
    summit_id, ru, us = await seeded(services)
    await services.phases.act(ru, summit_id, "open_lobby", None)
    receipt = await services.audit.receipt(ru, summit_id)
    async with engine.begin() as connection:
        await connection.execute(
            text("DELETE FROM audit_records WHERE summit_id = :s AND seq = 2"), {"s": summit_id}
        )
    assert (await services.audit.check(summit_id, [receipt])).verdict.problems == (
        audit.Problem(
            "head",
            2,
            "the trail ends at record 1 but the summit's head is record 2: records were removed",
        ),
        audit.Problem(
            "receipt",
            2,
            "the trail ends at record 1 but a receipt holds record 2: it was truncated",
        ),
    )
    with pytest.raises(Conflict, match="does not end at the summit's head"):
        await services.audit.receipt(ru, summit_id)
    # The next record follows the head, not the table: the gap stays in the chain.
    await services.phases.act(us, summit_id, "cancel", None)
    checked = await services.audit.check(summit_id)
    assert [e.seq for e in checked.entries] == [1, 3]
    assert checked.verdict.problems == (audit.Problem("chain", 3, "expected record 2, found 3"),)


async def test_the_recordings_checksums_join_the_trail(services: Services) -> None:
    summit_id, ru, us = await seeded(services)
    files = [
        RecordingFile(0, "video", "/b/0/recording.mp4", "a" * 64, 1000),
        RecordingFile(1, "audio", "/b/1/audio.ogg", "b" * 64, 200),
    ]
    await services.audit.recordings_sealed(summit_id, files)
    checked = await services.audit.check(summit_id)
    assert checked.verdict.ok
    newest = checked.entries[-1]
    assert (newest.actor, newest.action, dict(newest.details)) == (
        "media",
        "recordings_sealed",
        {
            "recordings": [
                {"side": ru.side_id, "kind": "video", "sha256": "a" * 64, "bytes": 1000},
                {"side": us.side_id, "kind": "audio", "sha256": "b" * 64, "bytes": 200},
            ]
        },
    )


async def test_the_public_page_names_the_audit_key(services: Services) -> None:
    summit, _ = await services.catalog.create(DRAFT)
    assert (await services.public.view(summit.slug)).audit_public_key == AUDIT_KEY.public_key


async def test_the_migration_keeps_the_head_of_trails_written_before_it(
    services: Services, engine: AsyncEngine
) -> None:
    summit_id, ru, _ = await seeded(services)
    await services.phases.act(ru, summit_id, "open_lobby", None)
    before = await services.audit.check(summit_id)

    def to(revision: str) -> Callable[[Connection], None]:
        def run(connection: Connection) -> None:
            config = AlembicConfig()
            config.set_main_option("script_location", str(MIGRATIONS))
            config.attributes["connection"] = connection
            if revision == "head":
                command.upgrade(config, revision)
            else:
                command.downgrade(config, revision)

        return run

    async with engine.begin() as connection:
        await connection.run_sync(to("0002"))
    async with engine.begin() as connection:
        await connection.run_sync(to("head"))
    after = await services.audit.check(summit_id)
    assert len((await services.catalog.get(summit_id)).sides) == 2  # no table was copied
    assert len(await services.roster.participants(ru, summit_id)) == 2
    assert after.head == before.head == audit.Head(2, before.entries[-1].hash)
    # Records written before the signatures carry none, and the trail says so.
    assert after.verdict.problems == (audit.Problem("signature", 1, "it is not signed"),)


async def test_a_summits_lock_lives_only_while_commands_need_it(
    engine: AsyncEngine, clock: HandClock
) -> None:
    """Commands on ids that name no summit (anyone may send one) leave nothing behind."""
    work = UnitOfWork(sessions(engine), clock, AUDIT_KEY)
    for n in range(100):
        async with work.command(f"no-such-summit-{n}"):
            pass
    assert len(work._locks) == 0
