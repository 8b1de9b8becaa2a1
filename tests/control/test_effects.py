"""The order in which the control plane carries out what a transition decided, on a real
database with the recording fake of the media ports: the decision is committed before any
effect, the forwards stop before anyone hears of the cut, everyone hears of it before the
keys are settled, and leaving the call takes the participant off the media and out of the
key exchange."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from summitry.control.events import EventHub
from summitry.control.services import Services, build_services
from summitry.domain import phases
from summitry.domain.events import SummitEvent
from summitry.domain.model import Role
from summitry.runtime import Nursery
from summitry.store.database import sessions
from summitry.web.links import WebLinks
from tests.conftest import AUDIT_KEY, HandClock
from tests.control.recording_media import RecordingMedia
from tests.control.test_services import DRAFT


class RecordingHub(EventHub):
    """Every announcement's type, with how many media calls had been made by then."""

    def __init__(self, media: RecordingMedia) -> None:
        super().__init__()
        self.seen: list[tuple[str, int]] = []
        self._media = media

    def announce(self, summit_id: str, event: SummitEvent) -> None:
        self.seen.append((event.kind, len(self._media.calls)))
        super().announce(summit_id, event)


@pytest.fixture
def media() -> RecordingMedia:
    return RecordingMedia()


@pytest.fixture
def hub(media: RecordingMedia) -> RecordingHub:
    return RecordingHub(media)


@pytest.fixture
async def with_media(
    engine: AsyncEngine, clock: HandClock, media: RecordingMedia, hub: RecordingHub
) -> AsyncIterator[Services]:
    async with Nursery() as nursery:
        yield build_services(
            sessions(engine),
            b"s" * 48,
            AUDIT_KEY,
            WebLinks("http://summitry.test"),
            hub,
            nursery.spawn,
            clock,
            media,
        )


async def live_summit(services: Services) -> tuple[str, Any, Any]:
    summit, invites = await services.catalog.create(DRAFT)
    ru, us = [await services.catalog.authenticate(i.token) for i in invites]
    await services.phases.act(ru, summit.id, "open_lobby", None)
    for grant in (ru, us):
        await services.roster.knock(grant, summit.id)
        await services.phases.act(grant, summit.id, "consent", None)
    return summit.id, ru, us


async def test_the_cut_is_committed_then_forwards_stop_then_the_news_then_keys(
    with_media: Services, media: RecordingMedia, hub: RecordingHub
) -> None:
    summit_id, _, us = await live_summit(with_media)
    assert media.calls == [("carry_out", "OpenRoom"), ("carry_out", "StartBroadcast")]
    phase_seen_by_media: list[str] = []

    async def look(effect: phases.Effect) -> None:
        phase_seen_by_media.append((await with_media.catalog.get(summit_id)).phase)

    media.during_effect = look
    media.calls.clear()
    hub.seen.clear()
    view = await with_media.phases.act(us, summit_id, "cut", None)
    assert view.phase == "private"
    assert phase_seen_by_media == ["private", "private"]  # committed before any effect
    assert media.calls == [
        ("carry_out", "StopBroadcast"),
        ("carry_out", "EnterPrivate"),
        ("withhold_feeds",),  # nobody holds a key yet: everyone is kept off the feeds
    ]
    # The participants hear of the cut once the forwards stopped, before anything else.
    assert hub.seen == [("phase", 1), ("e2ee", 3), ("feeds", 3)]


async def test_leaving_the_call_drops_media_then_rekeys(
    with_media: Services, media: RecordingMedia
) -> None:
    summit_id, ru, _ = await live_summit(with_media)
    delegate = await with_media.catalog.authenticate(
        (await with_media.roster.invite(ru, summit_id, "Sergey Lavrov", Role.DELEGATE, None)).token
    )
    await with_media.roster.knock(delegate, summit_id)
    await with_media.roster.admit(ru, summit_id, delegate.participant_id)
    await with_media.phases.act(ru, summit_id, "cut", None)
    media.calls.clear()
    await with_media.roster.leave(delegate, summit_id)
    assert media.calls == [("drop_participant", delegate.participant_id), ("withhold_feeds",)]
    media.calls.clear()
    await with_media.roster.knock(delegate, summit_id)  # back to the lobby: no media
    assert media.calls == []


async def test_a_key_goes_in_force_on_the_summits_clock(
    with_media: Services, media: RecordingMedia, clock: HandClock
) -> None:
    """A key nobody else confirms is put in force after its grace, on the summit's clock:
    the hand clock, not the machine's speed, decides when."""
    from tests.api.test_e2ee_api import blob, public_key

    summit_id, ru, us = await live_summit(with_media)
    await with_media.phases.act(ru, summit_id, "cut", None)
    for grant in (ru, us):  # the first to post makes the key
        await with_media.keys.post_public_key(grant, summit_id, public_key())
        clock.advance(milliseconds=10)
    wraps = {ru.participant_id: blob(), us.participant_id: blob()}
    await with_media.keys.make_key(ru, summit_id, 1, wraps)
    await with_media.keys.confirm_key(ru, summit_id, 1)
    clock.advance(seconds=0.9)
    await with_media.phases.tick()
    view = await with_media.keys.view(ru, summit_id)
    assert (view.in_force, view.pending, view.receives_private) == (None, 1, True)
    media.calls.clear()
    clock.advance(seconds=0.1)
    await with_media.phases.tick()
    view = await with_media.keys.view(ru, summit_id)
    assert (view.in_force, view.pending, view.receives_private) == (1, None, True)
    assert not (await with_media.keys.view(us, summit_id)).receives_private
    # (The grace's own timer may have settled too, on real time: it finds nothing due.)
    assert set(media.calls) == {("withhold_feeds", ru.participant_id)}
    trail = (await with_media.audit.check(summit_id)).entries
    assert (trail[-1].action, trail[-1].actor, dict(trail[-1].details)) == (
        "e2ee_key_in_force",
        "clock",
        {"epoch": 1, "confirmed": 1, "recipients": 2},
    )
