"""The call through the real Janus: WHIP publishers and room subscriptions (aiortc)."""

from __future__ import annotations

import asyncio

import httpx

from tests.media.conftest import Room
from tests.media.peers import Publisher, Subscriber, auth


async def wait_feeds(subscriber: Subscriber, count: int, timeout: float = 5) -> None:
    """Syncs until the subscription carries `count` feeds (feeds join once their
    PeerConnection is up)."""
    async with asyncio.timeout(timeout):
        while len((await subscriber.sync())["feeds"]) != count:
            await asyncio.sleep(0.1)


async def test_principals_see_and_hear_each_other(http: httpx.AsyncClient, room: Room) -> None:
    sid = room.summit.id
    putin, biden = Publisher(http, sid, room.ru_principal), Publisher(http, sid, room.us_principal)
    for publisher in (putin, biden):
        response = await publisher.publish()
        assert response.status_code == 201, response.text
        assert response.headers["content-type"] == "application/sdp"
        assert response.headers["location"].startswith(f"/api/v1/summits/{sid}/whip/")
    watchers = [
        Subscriber(http, sid, room.ru_principal),
        Subscriber(http, sid, room.us_principal),
        Subscriber(http, sid, room.observer),
    ]
    try:
        for watcher in watchers:
            assert (await watcher.start()).status_code == 201
        await wait_feeds(watchers[0], 1)
        await wait_feeds(watchers[1], 1)
        await wait_feeds(watchers[2], 2)
        assert [f["name"] for f in watchers[0].feeds] == ["Joe Biden"]
        assert [f["name"] for f in watchers[1].feeds] == ["Vladimir Putin"]
        for watcher in watchers:
            await watcher.wait_frames("video", 30, timeout=10)
            await watcher.wait_frames("audio", 50, timeout=10)
        feeds = (await http.get(f"/api/v1/summits/{sid}/feeds", headers=auth(room.observer))).json()
        assert sorted(f["name"] for f in feeds) == ["Joe Biden", "Vladimir Putin"]
    finally:
        for watcher in watchers:
            await watcher.close()
        await putin.close()
        await biden.close()


async def test_the_subscription_follows_joins_and_leaves(
    http: httpx.AsyncClient, room: Room
) -> None:
    sid = room.summit.id
    observer = Subscriber(http, sid, room.observer)
    putin = Publisher(http, sid, room.ru_principal)
    biden = Publisher(http, sid, room.us_principal)
    try:
        assert (await observer.start()).json()["offer"] is None  # nobody publishes yet
        assert (await putin.publish()).status_code == 201
        await wait_feeds(observer, 1)
        await observer.wait_frames("video", 20, timeout=10)
        assert (await biden.publish()).status_code == 201
        await wait_feeds(observer, 2)
        before = observer.frames["video"]
        await observer.wait_frames("video", 40, timeout=10)
        assert observer.frames["video"] > before
        await putin.close()  # DELETE of the WHIP resource
        await wait_feeds(observer, 1)
        assert [f["name"] for f in observer.feeds] == ["Joe Biden"]
        await observer.wait_frames("video", 20, timeout=10)
    finally:
        await observer.close()
        await biden.close()
        await putin.close(delete=False)
