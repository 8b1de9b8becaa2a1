"""Faults of the broadcast chain while live: the summit cuts and never broadcasts again."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import httpx
from aiortc import RTCPeerConnection

from tests.media.conftest import Room, invite, summit_in_lobby
from tests.media.peers import MovingPicture, Publisher, Tone, auth, frames_of, watch_broadcast
from tests.media.test_faults import janus_pid
from tests.servers import Server, bearer, operator, running_summitry


async def go_live(http: httpx.AsyncClient, room: Room) -> list[Publisher]:
    publishers = [
        Publisher(http, room.summit.id, token) for token in (room.ru_principal, room.us_principal)
    ]
    for publisher in publishers:
        assert (await publisher.publish()).status_code == 201
    await asyncio.sleep(1.0)
    for token in (room.summit.ru_token, room.summit.us_token):
        await http.post(f"/api/v1/summits/{room.summit.id}/actions/consent", headers=bearer(token))
    return publishers


async def wait_phase(http: httpx.AsyncClient, slug: str, phase: str) -> dict[str, object]:
    async with asyncio.timeout(15):
        while True:
            view: dict[str, object] = (await http.get(f"/api/v1/public/{slug}")).json()
            if view["phase"] == phase:
                return view
            await asyncio.sleep(0.1)


async def last_cut_reason(http: httpx.AsyncClient, summit_id: str) -> str:
    trail = (await http.get(f"/api/v1/summits/{summit_id}/audit", headers=operator())).json()
    cuts = [r for r in trail["trail"] if r["action"] == "cut"]
    assert trail["ok"] and len(cuts) == 1
    return str(cuts[0]["details"]["reason"])


async def test_a_dead_packager_cuts_the_summit(
    http: httpx.AsyncClient, room: Room, media_server: Server
) -> None:
    publishers = await go_live(http, room)
    try:
        await wait_phase(http, room.summit.slug, "public")
        pid_file = media_server.data_dir / "broadcast" / room.summit.id / "0" / "ffmpeg.pid"
        async with asyncio.timeout(10):
            while not pid_file.exists():
                await asyncio.sleep(0.1)
        os.kill(int(pid_file.read_text()), signal.SIGKILL)
        view = await wait_phase(http, room.summit.slug, "private")
        assert (view["live"], view["whep"], view["streams"]) == (False, None, [])
        assert await last_cut_reason(http, room.summit.id) == "broadcast_failure"
        again = await http.post(
            f"/api/v1/summits/{room.summit.id}/actions/consent",
            headers=bearer(room.summit.ru_token),
        )
        assert again.status_code == 409
    finally:
        for publisher in publishers:
            await publisher.close()


async def test_janus_dying_while_live_cuts_for_good(tmp_path: Path, media_address: str) -> None:
    with running_summitry(tmp_path, SUMMITRY_MEDIA_ADDRESS=media_address) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=15) as http:
            room = await summit_in_lobby(http)
            summit = room.summit
            publishers = await go_live(http, room)
            try:
                await wait_phase(http, summit.slug, "public")
                os.kill(janus_pid(tmp_path), signal.SIGKILL)
                await wait_phase(http, summit.slug, "private")
                assert await last_cut_reason(http, summit.id) == "broadcast_failure"
                health = (await http.get("/api/v1/health")).json()
                assert (health["media"], health["media_generation"]) == ("up", 2)
                refused = await http.post(
                    f"/api/v1/summits/{summit.id}/actions/consent", headers=bearer(summit.us_token)
                )
                assert refused.json()["message"] == (
                    "the summit is private; it can never broadcast again"
                )
                whep = await http.post(
                    f"/api/v1/public/{summit.slug}/whep",
                    content="v=0",
                    headers={"Content-Type": "application/sdp"},
                )
                assert whep.status_code in (400, 409)
            finally:
                for publisher in publishers:
                    await publisher.close(delete=False)


async def test_refused_cuts_change_nothing_and_viewers_cannot_publish(
    http: httpx.AsyncClient, room: Room
) -> None:
    publishers = await go_live(http, room)
    viewer = RTCPeerConnection()
    try:
        live = await wait_phase(http, room.summit.slug, "public")
        base = f"/api/v1/summits/{room.summit.id}/actions/cut"
        summit_now = (
            await http.get(
                f"/api/v1/summits/{room.summit.id}", headers=bearer(room.summit.ru_token)
            )
        ).json()
        stale = await http.post(
            base, json={"version": summit_now["version"] - 1}, headers=bearer(room.summit.ru_token)
        )
        assert (stale.status_code, stale.json()["error"]) == (409, "stale_version")
        by_principal = await http.post(base, headers=bearer(room.ru_principal))
        assert by_principal.status_code == 403
        stranger = await summit_in_lobby(http)
        by_stranger = await http.post(base, headers=bearer(stranger.summit.ru_token))
        assert (by_stranger.status_code, by_stranger.json()["message"]) == (
            403,
            "your invitation is for another summit",
        )
        assert (await http.get(f"/api/v1/public/{room.summit.slug}")).json()["live"]

        # A viewer that offers to send: Janus only ever sends to it, and the room does
        # not gain a publisher.
        viewer.addTrack(MovingPicture())
        viewer.addTrack(Tone())
        await viewer.setLocalDescription(await viewer.createOffer())
        answer = await http.post(
            str(live["whep"]),
            content=viewer.localDescription.sdp,
            headers={"Content-Type": "application/sdp"},
        )
        assert answer.status_code == 201
        directions = [
            line
            for line in answer.text.splitlines()
            if line.strip() in ("a=sendrecv", "a=recvonly", "a=sendonly", "a=inactive")
        ]
        assert directions and all(d.strip() in ("a=sendonly", "a=inactive") for d in directions), (
            directions
        )
        feeds = (
            await http.get(f"/api/v1/summits/{room.summit.id}/feeds", headers=auth(room.observer))
        ).json()
        assert sorted(f["name"] for f in feeds) == ["Joe Biden", "Vladimir Putin"]
        assert (await http.delete(answer.headers["Location"])).status_code == 200
    finally:
        await viewer.close()
        for publisher in publishers:
            await publisher.close()


async def watching(http: httpx.AsyncClient, slug: str, count: int) -> None:
    """Waits until the public view counts `count` WHEP viewers (Janus tells of a hang-up
    at once; a viewer that never connects goes at the server's deadline, 8 s here)."""
    seen = None
    try:
        async with asyncio.timeout(30):
            while (seen := (await http.get(f"/api/v1/public/{slug}")).json()["watching"]) != count:
                await asyncio.sleep(0.2)
    except TimeoutError:
        raise AssertionError(f"{seen} WHEP viewers, not {count}") from None


async def offer_only(http: httpx.AsyncClient, url: str) -> tuple[RTCPeerConnection, httpx.Response]:
    """A WHEP offer whose answer is never used: a viewer that never connects."""
    viewer = RTCPeerConnection()
    viewer.addTransceiver("video", direction="recvonly")
    await viewer.setLocalDescription(await viewer.createOffer())
    sent = await http.post(
        url, content=viewer.localDescription.sdp, headers={"Content-Type": "application/sdp"}
    )
    return viewer, sent


async def test_viewers_that_never_connect_or_hang_up_are_let_go_and_each_address_is_capped(
    http: httpx.AsyncClient, room: Room
) -> None:
    publishers = await go_live(http, room)
    viewers: list[RTCPeerConnection] = []
    try:
        live = await wait_phase(http, room.summit.slug, "public")
        slug, url = room.summit.slug, str(live["whep"])
        assert live["watching"] == 0
        # One that watches, then closes its connection without a DELETE.
        watcher = RTCPeerConnection()
        viewers.append(watcher)
        counts = frames_of(watcher)
        assert (await watch_broadcast(http, url, watcher)).status_code == 201
        await watching(http, slug, 1)
        async with asyncio.timeout(15):
            while counts["video"] < 10:
                await asyncio.sleep(0.1)
        await watcher.close()
        await watching(http, slug, 0)
        # Offers from one address that never connect: 16 are held, the 17th is refused
        # until the deadline lets them go.
        for _ in range(16):
            viewer, sent = await offer_only(http, url)
            viewers.append(viewer)
            assert sent.status_code == 201, sent.text
        viewer, refused = await offer_only(http, url)
        viewers.append(viewer)
        assert refused.status_code == 429, refused.text
        assert refused.json()["error"] == "rate_limited" and "Retry-After" in refused.headers
        await watching(http, slug, 0)
        viewer, again = await offer_only(http, url)
        viewers.append(viewer)
        assert again.status_code == 201, again.text
    finally:
        for viewer in viewers:
            await viewer.close()
        for publisher in publishers:
            await publisher.close()


async def test_coordinators_choose_who_is_on_air(http: httpx.AsyncClient, room: Room) -> None:
    sid = room.summit.id
    lavrov_token = await invite(http, sid, room.summit.ru_token, "Sergey Lavrov", "delegate")
    lavrov = Publisher(http, sid, lavrov_token)
    assert (await lavrov.publish()).status_code == 201
    publishers = [lavrov, *await go_live(http, room)]
    try:
        await wait_phase(http, room.summit.slug, "public")
        people = {
            p["name"]: p
            for p in (
                await http.get(
                    f"/api/v1/summits/{sid}/participants", headers=bearer(room.summit.ru_token)
                )
            ).json()
        }
        ru_side, us_side = room.summit.ru_side, room.summit.us_side
        on_air = (
            await http.get(f"/api/v1/summits/{sid}/on-air", headers=bearer(room.observer))
        ).json()
        assert on_air == {
            ru_side: people["Vladimir Putin"]["id"],
            us_side: people["Joe Biden"]["id"],
        }
        chosen = await http.put(
            f"/api/v1/summits/{sid}/on-air",
            json={"participant_id": people["Sergey Lavrov"]["id"]},
            headers=bearer(room.summit.ru_token),
        )
        assert chosen.json() == {
            ru_side: people["Sergey Lavrov"]["id"],
            us_side: people["Joe Biden"]["id"],
        }
        other_side = await http.put(
            f"/api/v1/summits/{sid}/on-air",
            json={"participant_id": people["Vladimir Putin"]["id"]},
            headers=bearer(room.summit.us_token),
        )
        assert other_side.status_code == 403
        observer = await http.put(
            f"/api/v1/summits/{sid}/on-air",
            json={"participant_id": people["Press Pool"]["id"]},
            headers=bearer(room.summit.us_token),
        )
        assert (observer.status_code, observer.json()["field"]) == (422, "participant_id")
        back = await http.put(
            f"/api/v1/summits/{sid}/on-air",
            json={"participant_id": None},
            headers=bearer(room.summit.ru_token),
        )
        assert back.json()[ru_side] == people["Vladimir Putin"]["id"]
    finally:
        for publisher in publishers:
            await publisher.close()
