"""TURN through the coturn that summitry runs beside its Janus: a participant's browser is
handed a credential of its own, with which coturn allocates a relay and carries packets
to the media server. A forged or expired credential gets no relay, and no credential
makes coturn relay to the server's loopback or to other private addresses."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest
from aioice import turn

from summitry.media.supervisor import alive
from summitry.media.turn import TurnSettings, TurnSupervisor
from summitry.security.local_ca import LocalTls, local_tls
from summitry.security.turn import credential
from summitry.turn_probe import Inbox, deliver, relayed_round_trip
from tests.conftest import free_port
from tests.media.conftest import Room
from tests.media.peers import Publisher
from tests.servers import Server, bearer, operator


def relay(server: str, port: int, username: str, password: str, peer: str, peer_port: int) -> str:
    """What coturn's own test client says after sending 10 packets through a relay
    allocated with this credential to `peer`, which echoes them."""
    done = subprocess.run(
        [
            "turnutils_uclient",
            *("-u", username, "-w", password),
            *("-e", peer, "-r", str(peer_port), "-p", str(port), "-n", "10"),
            server,
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    return done.stdout + done.stderr


@pytest.fixture
def echo(media_address: str) -> Iterator[int]:
    """A UDP echo on the media server's address: where a relay may deliver."""
    port = free_port()
    peer = subprocess.Popen(
        ["turnutils_peer", "-L", media_address, "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield port
    finally:
        peer.kill()
        peer.wait()


async def test_a_participant_relays_to_the_media_server_with_its_own_credential(
    http: httpx.AsyncClient, room: Room, media_server: Server, echo: int, media_address: str
) -> None:
    answer = await http.get(
        f"/api/v1/summits/{room.summit.id}/ice-servers", headers=bearer(room.ru_principal)
    )
    assert answer.status_code == 200, answer.text
    offered = answer.json()
    [server] = offered["ice_servers"]
    urls = [urlparse(url.replace("turn:", "turn://")) for url in server["urls"]]
    assert {url.query for url in urls} == {"transport=udp", "transport=tcp"}
    host, port = urls[0].hostname, urls[0].port
    assert host == media_address and port is not None
    expiry, holder = server["username"].split(":")
    expires_at = datetime.fromisoformat(offered["expires_at"])
    assert int(expiry) == int(expires_at.timestamp())
    assert timedelta(0) < expires_at - datetime.now(UTC) <= timedelta(hours=4)

    said = relay(host, port, server["username"], server["credential"], media_address, echo)
    assert "tot_recv_msgs=20" in said and "Total lost packets 0 " in said, said

    forged = relay(host, port, server["username"], "not-the-credential", media_address, echo)
    assert "Cannot complete Allocation" in forged, forged
    secret = (media_server.data_dir / "turn.secret").read_text().strip()
    expired = credential(secret, holder, datetime.now(UTC) - timedelta(minutes=1))
    late = relay(host, port, expired.username, expired.password, media_address, echo)
    assert "Cannot complete Allocation" in late, late
    for internal in ("127.0.0.1", "198.18.0.2", "10.1.2.3", "169.254.169.254"):
        aimed = relay(host, port, server["username"], server["credential"], internal, echo)
        assert "403 (Forbidden IP)" in aimed, (internal, aimed)

    trail = (await http.get(f"/api/v1/summits/{room.summit.id}/audit", headers=operator())).json()[
        "trail"
    ]
    issued = [r["details"] for r in trail if r["action"] == "turn_credential_issued"]
    assert issued and issued[-1]["participant"] == holder
    assert server["credential"] not in str(trail) and secret not in str(trail)


async def test_whip_answers_carry_the_ice_servers(http: httpx.AsyncClient, room: Room) -> None:
    putin = Publisher(http, room.summit.id, room.ru_principal)
    try:
        published = await putin.publish()
        assert published.status_code == 201
        links = published.headers["link"]
        assert links.count('rel="ice-server"') == 2, links
        assert "<turn:" in links and 'credential-type="password"' in links
    finally:
        await putin.close()


@pytest.fixture
async def turn_over_tls(
    tmp_path: Path, media_address: str
) -> AsyncIterator[tuple[TurnSettings, LocalTls]]:
    """coturn with a TLS listener, as summitry runs it for networks that let only TCP
    443 out, with a certificate from a CA made here."""
    tls = local_tls(tmp_path / "tls", [media_address])
    settings = TurnSettings(
        tmp_path / "turn",
        media_address,
        free_port(),
        tls=(tls.cert, tls.key),
        tls_port=free_port(),
    )
    supervisor = TurnSupervisor(settings, TLS_SECRET)
    await supervisor.start()
    try:
        yield settings, tls
    finally:
        await supervisor.stop()


TLS_SECRET = "a-secret-for-the-tls-test"


async def test_turn_over_tls_relays_and_shrugs_off_garbage(
    turn_over_tls: tuple[TurnSettings, LocalTls], media_address: str
) -> None:
    settings, tls = turn_over_tls
    good = credential(TLS_SECRET, "participant", datetime.now(UTC) + timedelta(minutes=5))
    trusted = ssl.create_default_context(cafile=str(tls.ca))
    urls = [
        f"turn:{media_address}:{settings.port}?transport=udp",
        f"turn:{media_address}:{settings.port}?transport=tcp",
        f"turns:{media_address}:{settings.tls_port}?transport=tcp",
    ]
    for url in urls:
        trip = await relayed_round_trip(url, good.username, good.password, trusted)
        assert trip.ok and trip.relayed and trip.relayed[0] == media_address, trip

    turns = urls[2]
    untrusted = await relayed_round_trip(turns, good.username, good.password)
    assert untrusted.error and "certificate not trusted" in untrusted.error
    forged = await relayed_round_trip(turns, good.username, "forged", trusted)
    assert forged.error == "refused: 401 Unauthorized", forged

    # Garbage where a TLS handshake belongs, one connection left hanging and one
    # closed: others are served meanwhile and after.
    junk = b"\x16\x03\x01\x00\x05hello" + bytes(range(256))
    connections = [await asyncio.open_connection(media_address, settings.tls_port) for _ in "ab"]
    for _, writer in connections:
        writer.write(junk)
        await writer.drain()
    connections[0][1].close()
    again = await relayed_round_trip(turns, good.username, good.password, trusted)
    assert again.ok, again
    connections[1][1].close()


async def test_a_restarted_summitry_adopts_its_coturn_or_replaces_a_stale_one(
    tmp_path: Path, media_address: str
) -> None:
    """A crash of summitry leaves coturn relaying (like Janus); the next run adopts it when
    it would have written the same configuration, and stops it when not."""
    settings = TurnSettings(tmp_path / "turn", media_address, free_port())
    crashed = TurnSupervisor(settings, TLS_SECRET)
    await crashed.start()
    assert crashed._watcher is not None and crashed.pid is not None
    crashed._watcher.cancel()  # summitry dies; its coturn does not
    first = crashed.pid
    url = f"turn:{media_address}:{settings.port}?transport=udp"

    again = TurnSupervisor(settings, TLS_SECRET)
    await again.start()
    try:
        assert again.adopted and again.pid == first
        good = credential(TLS_SECRET, "p", datetime.now(UTC) + timedelta(minutes=5))
        assert (await relayed_round_trip(url, good.username, good.password)).ok
    finally:
        assert again._watcher is not None
        again._watcher.cancel()

    rotated = TurnSupervisor(settings, "a-new-secret")
    await rotated.start()
    try:
        assert not rotated.adopted and rotated.pid != first and not alive(first)
        fresh = credential("a-new-secret", "p", datetime.now(UTC) + timedelta(minutes=5))
        assert (await relayed_round_trip(url, fresh.username, fresh.password)).ok
        stale = await relayed_round_trip(url, good.username, good.password)
        assert stale.error == "refused: 401 Unauthorized", stale
    finally:
        await rotated.stop()
    assert rotated.pid is not None and not alive(rotated.pid)


async def test_a_relay_outlives_its_credential(
    turn_over_tls: tuple[TurnSettings, LocalTls], media_address: str
) -> None:
    """A call outlasts its participant's TURN credential: coturn checks the expiry when
    it allocates, and keeps permitting peers and carrying packets for an allocation
    after it (it keeps the key it checked). Only a new allocation needs a fresh
    credential, and the page asks for one whenever it reconnects."""
    settings, _ = turn_over_tls
    expires_at = datetime.now(UTC) + timedelta(seconds=2)
    short = credential(TLS_SECRET, "participant", expires_at)
    server = (media_address, settings.port)
    opened = [
        await turn.create_turn_endpoint(Inbox, server, short.username, short.password) for _ in "ab"
    ]
    try:
        while datetime.now(UTC) < expires_at + timedelta(seconds=1):
            await asyncio.sleep(0.1)
        late = await relayed_round_trip(
            f"turn:{media_address}:{settings.port}", short.username, short.password
        )
        assert late.error == "refused: 401 Unauthorized", late
        # Each allocation now permits the other's address, with the lapsed credential.
        relays = [transport.get_extra_info("sockname")[:2] for transport, _ in opened]
        async with asyncio.timeout(10):
            await asyncio.gather(
                deliver(opened[0][0], relays[1], opened[1][1], 0),
                deliver(opened[1][0], relays[0], opened[0][1], 1),
            )
    finally:
        for transport, _ in opened:
            transport.close()
