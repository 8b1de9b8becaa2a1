"""The broadcast chain end to end: go live, a WHEP viewer and the HLS output receive the
principals, the cut ends everything, the recordings are sealed."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime, timedelta

import httpx
from aiortc import RTCPeerConnection

from summitry.turn_probe import relayed_round_trip
from tests.media.conftest import Room
from tests.media.peers import Publisher, Subscriber, frames_of, watch_broadcast
from tests.media.test_room import wait_feeds
from tests.servers import bearer, operator


async def test_live_then_cut(http: httpx.AsyncClient, room: Room) -> None:
    sid, slug = room.summit.id, room.summit.slug
    putin, biden = Publisher(http, sid, room.ru_principal), Publisher(http, sid, room.us_principal)
    observer = Subscriber(http, sid, room.observer)
    viewer = RTCPeerConnection()
    try:
        for publisher in (putin, biden):
            assert (await publisher.publish()).status_code == 201
        await observer.start()
        await wait_feeds(observer, 2)
        not_yet = await http.get(f"/api/v1/public/{slug}/ice-servers")
        assert not_yet.status_code == 409, not_yet.text
        for token in (room.summit.ru_token, room.summit.us_token):
            await http.post(f"/api/v1/summits/{sid}/actions/consent", headers=bearer(token))
        public = (await http.get(f"/api/v1/public/{slug}")).json()
        assert public["live"] and public["whep"] == f"/api/v1/public/{slug}/whep"
        assert [s["side"] for s in public["streams"]] == ["Russian Federation", "United States"]

        counts = frames_of(viewer)
        answer = await watch_broadcast(http, public["whep"], viewer)
        assert answer.status_code == 201, answer.text
        assert answer.headers["link"].count('rel="ice-server"') == 2, answer.headers
        async with asyncio.timeout(10):
            while counts["video"] < 60:
                await asyncio.sleep(0.1)
        await viewers_relay(http, slug)

        playlist_url = public["streams"][0]["hls"]
        async with asyncio.timeout(15):
            while True:
                playlist = await http.get(playlist_url)
                if playlist.status_code == 200 and playlist.text.count("#EXTINF") >= 3:
                    break
                await asyncio.sleep(0.3)

        cut = await http.post(
            f"/api/v1/summits/{sid}/actions/cut", headers=bearer(room.summit.us_token)
        )
        assert cut.json()["phase"] == "private"
        after = (await http.get(f"/api/v1/public/{slug}")).json()
        assert not after["live"] and after.get("whep") is None and after["streams"] == []
        async with asyncio.timeout(15):  # the outputs are sealed after the cut
            while len(after["recordings"]) < 4:
                await asyncio.sleep(0.2)
                after = (await http.get(f"/api/v1/public/{slug}")).json()
        assert sorted((r["side"], r["kind"]) for r in after["recordings"]) == [
            ("Russian Federation", "audio"),
            ("Russian Federation", "video"),
            ("United States", "audio"),
            ("United States", "video"),
        ]
        for item in after["recordings"]:
            body = (await http.get(item["url"])).content
            assert len(body) == item["bytes"] > 1000
            assert hashlib.sha256(body).hexdigest() == item["sha256"]
        async with asyncio.timeout(5):  # the runtime audits the sealed recordings
            while True:
                trail = (await http.get(f"/api/v1/summits/{sid}/audit", headers=operator())).json()
                sealed = [r for r in trail["trail"] if r["action"] == "recordings_sealed"]
                if sealed:
                    break
                await asyncio.sleep(0.1)
        assert trail["ok"] and sealed[0]["actor"] == "media"
        assert sorted(
            (r["kind"], r["sha256"], r["bytes"]) for r in sealed[0]["details"]["recordings"]
        ) == sorted((r["kind"], r["sha256"], r["bytes"]) for r in after["recordings"])
        refused = await http.post(
            public["whep"].replace("/whep", "/whep"),
            content=viewer.localDescription.sdp,
            headers={"Content-Type": "application/sdp"},
        )
        assert refused.status_code == 409
    finally:
        await viewer.close()
        await observer.close()
        await putin.close()
        await biden.close()


async def viewers_relay(http: httpx.AsyncClient, slug: str) -> None:
    """While live, a viewer gets a TURN credential of its own, short-lived, that coturn
    relays with."""
    offered = (await http.get(f"/api/v1/public/{slug}/ice-servers")).json()
    [server] = offered["ice_servers"]
    assert ":viewer-" in server["username"]
    lasts = datetime.fromisoformat(offered["expires_at"]) - datetime.now(UTC)
    assert timedelta(minutes=14) < lasts <= timedelta(hours=2)
    for url in server["urls"]:
        trip = await relayed_round_trip(url, server["username"], server["credential"])
        assert trip.ok, trip
