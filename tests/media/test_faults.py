"""Faults of the media plane: Janus dies mid-call, or drops our session and lives on."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from summitry.media.janus import Janus
from tests.conftest import free_port
from tests.media.conftest import summit_in_lobby
from tests.media.peers import Publisher, Subscriber
from tests.media.test_room import wait_feeds
from tests.servers import Server, bearer, launch, running_summitry, stop


def janus_pid(data_dir: Path) -> int:
    """The Janus that this summitry runs (its configuration lives in the data directory)."""
    needle = str(data_dir / "janus" / "janus.jcfg")
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if needle in command and "janus" in command.split()[0]:
                return int(entry.name)
    raise AssertionError("no Janus process found for this summitry")


async def next_event(lines: Any, kind: str) -> dict[str, Any]:
    async for line in lines:
        if line.startswith("data: "):
            event: dict[str, Any] = json.loads(line[6:])
            if event["type"] == kind:
                return event
    raise AssertionError("the event stream ended")


async def media_back_after(
    server: Server, fault: Callable[[], Awaitable[None]], noticed_within: float
) -> float:
    """A call of two principals in aiortc; `fault` strikes the media plane; `media_reset`
    comes within `noticed_within` s; they do what a client does then (publish and
    subscribe again) and media flows again. Returns how long after the fault."""
    async with httpx.AsyncClient(base_url=server.url, timeout=15) as http:
        room = await summit_in_lobby(http)
        summit, putin_token, biden_token = room.summit, room.ru_principal, room.us_principal
        putin = Publisher(http, summit.id, putin_token)
        biden = Subscriber(http, summit.id, biden_token)
        async with http.stream(
            "GET",
            f"/api/v1/summits/{summit.id}/events",
            headers=bearer(biden_token),
            timeout=None,
        ) as events:
            lines = events.aiter_lines()
            try:
                assert (await putin.publish()).status_code == 201
                await biden.start()
                await wait_feeds(biden, 1)
                await biden.wait_frames("video", 20, timeout=10)
                before = (await http.get("/api/v1/health")).json()
                assert (before["media"], before["media_generation"]) == ("up", 1)

                struck_at = time.monotonic()
                await fault()
                reset = await asyncio.wait_for(next_event(lines, "media_reset"), noticed_within)
                assert reset["generation"] == 2
                await putin.close(delete=False)
                putin = Publisher(http, summit.id, putin_token)
                assert (await putin.publish()).status_code == 201
                await biden.restart()
                await wait_feeds(biden, 1)
                await biden.wait_frames("video", 10, timeout=10)
                recovered = time.monotonic() - struck_at
            finally:
                await biden.close()
                await putin.close()
        health = (await http.get("/api/v1/health")).json()
        assert (health["media"], health["media_generation"]) == ("up", 2)
        summit_now = (
            await http.get(f"/api/v1/summits/{summit.id}", headers=bearer(summit.ru_token))
        ).json()
        assert summit_now["phase"] == "lobby"  # the call goes on; nothing was lost
    return recovered


async def test_janus_killed_mid_call_comes_back_with_media(
    tmp_path: Path, media_address: str
) -> None:
    with running_summitry(tmp_path, SUMMITRY_MEDIA_ADDRESS=media_address) as server:

        async def kill() -> None:
            os.kill(janus_pid(server.data_dir), signal.SIGKILL)

        recovered = await media_back_after(server, kill, noticed_within=15)
    assert recovered < 8, f"media came back after {recovered:.1f} s"
    print(f"media back {recovered:.2f} s after Janus was killed")


async def test_a_session_janus_drops_while_it_lives_on_is_replaced(
    tmp_path: Path, media_address: str
) -> None:
    """Janus times out a session it hears nothing from, or an operator destroys it: the
    same Janus keeps running, and summitry opens a new session in it."""
    with running_summitry(tmp_path, SUMMITRY_MEDIA_ADDRESS=media_address) as server:
        janus_dir = server.data_dir / "janus"
        endpoint = json.loads((janus_dir / "janus.state.json").read_text())["endpoint"]
        pid = janus_pid(server.data_dir)

        async def destroy_the_session() -> None:
            session = json.loads((janus_dir / "media.state.json").read_text())["session"]
            async with httpx.AsyncClient(timeout=5) as janus:
                answer = await janus.post(
                    f"{endpoint['url']}/{session}",
                    json={
                        "janus": "destroy",
                        "transaction": "test",
                        "apisecret": endpoint["api_secret"],
                    },
                )
            assert answer.json()["janus"] == "success", answer.text

        # Nobody asks Janus anything meanwhile: the long poll tells within its hold.
        recovered = await media_back_after(server, destroy_the_session, noticed_within=45)
        assert janus_pid(server.data_dir) == pid  # the same Janus throughout
    print(f"media back {recovered:.2f} s after Janus dropped the session")


async def test_an_idle_session_outlasts_the_long_poll(media_server: Server) -> None:
    """Janus holds a long poll on a session with no events for 30 s, then answers with a
    keepalive; an idle session must not look like a dead Janus (it would be declared lost
    after three in a row)."""
    janus_dir = media_server.data_dir / "janus"
    endpoint = json.loads((janus_dir / "janus.state.json").read_text())["endpoint"]
    janus = Janus(endpoint["url"], endpoint["api_secret"])
    try:
        created = await janus.post("", {"janus": "create"})
        started = time.monotonic()
        answer = await janus.poll(int(created["data"]["id"]))
        held = time.monotonic() - started
    finally:
        await janus.close()
    assert answer == [{"janus": "keepalive"}]
    assert held > 25, held  # Janus's hold, in full


async def test_summitry_crash_mid_call_keeps_media_and_data(
    tmp_path: Path, media_address: str
) -> None:
    env = {"SUMMITRY_MEDIA_ADDRESS": media_address}
    port = free_port()
    server = launch(tmp_path, port, env)
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=15) as http:
            room = await summit_in_lobby(http)
            summit, putin_token, biden_token = room.summit, room.ru_principal, room.us_principal
            putin = Publisher(http, summit.id, putin_token)
            biden = Subscriber(http, summit.id, biden_token)
            try:
                assert (await putin.publish()).status_code == 201
                await biden.start()
                await wait_feeds(biden, 1)
                await biden.wait_frames("video", 20, timeout=10)
                janus_before = janus_pid(tmp_path)

                server.process.kill()  # a crash: no shutdown, Janus is left running
                server.process.wait(5)
                assert janus_pid(tmp_path) == janus_before
                # The call goes on while summitry is down.
                await biden.wait_frames("video", 30, timeout=5)

                server = launch(tmp_path, port, env)
                health = (await http.get("/api/v1/health")).json()
                assert (health["media"], janus_pid(tmp_path)) == ("up", janus_before)
                roster = (
                    await http.get(
                        f"/api/v1/summits/{summit.id}/participants", headers=bearer(biden_token)
                    )
                ).json()
                assert {p["name"]: p["presence"] for p in roster} == {
                    "Yuri Ushakov": "admitted",
                    "Jake Sullivan": "admitted",
                    "Press Pool": "admitted",
                    "Vladimir Putin": "admitted",
                    "Joe Biden": "admitted",
                }
                synced = await biden.sync()  # the new process knows the subscription
                assert ([f["name"] for f in synced["feeds"]], synced["offer"]) == (
                    ["Vladimir Putin"],
                    None,
                )
                await biden.wait_frames("video", 30, timeout=5)
                assert putin.location is not None
                left = await http.delete(putin.location, headers=bearer(putin_token))
                assert left.status_code == 200
                await wait_feeds(biden, 0)
            finally:
                await biden.close()
                await putin.close(delete=False)
    finally:
        stop(server)
    with pytest.raises(AssertionError, match="no Janus process"):
        janus_pid(tmp_path)  # a clean stop stops Janus too
