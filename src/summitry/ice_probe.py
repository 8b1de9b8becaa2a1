"""ICE with Janus itself, as a participant's browser without TURN would do it: offer one
audio stream with this machine's host candidates, take Janus's answer, and run the
connectivity checks against the candidates it gave. Success means STUN went both ways
between here and one of Janus's media ports over UDP, through whatever NAT lies
between: a browser here will reach Janus directly. No DTLS and no media follow; the
server lets what it set up for the check go after half a minute."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aioice


@dataclass(frozen=True)
class IceResult:
    offered: tuple[str, ...]  # Janus's candidates, as host:port
    milliseconds: float | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def offer_for(connection: aioice.Connection) -> str:
    """A sendonly Opus offer carrying the connection's ICE credentials and candidates
    (the fingerprint is random: nothing gets as far as DTLS)."""
    fingerprint = ":".join(f"{byte:02X}" for byte in secrets.token_bytes(32))
    lines = [
        "v=0",
        "o=- 0 0 IN IP4 0.0.0.0",
        "s=summitry check",
        "t=0 0",
        "a=group:BUNDLE 0",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111",
        "c=IN IP4 0.0.0.0",
        "a=mid:0",
        "a=sendonly",
        "a=rtcp-mux",
        f"a=ice-ufrag:{connection.local_username}",
        f"a=ice-pwd:{connection.local_password}",
        f"a=fingerprint:sha-256 {fingerprint}",
        "a=setup:actpass",
        "a=rtpmap:111 opus/48000/2",
        *(f"a=candidate:{candidate.to_sdp()}" for candidate in connection.local_candidates),
        "a=end-of-candidates",
    ]
    return "\r\n".join(lines) + "\r\n"


def answered(sdp: str) -> tuple[str, str, list[aioice.Candidate]]:
    """The ICE credentials and UDP candidates of an answer."""
    values: dict[str, str] = {}
    candidates = []
    for line in sdp.splitlines():
        key, _, value = line.removeprefix("a=").partition(":")
        if key == "candidate":
            candidate = aioice.Candidate.from_sdp(value)
            if candidate.transport.lower() == "udp":
                candidates.append(candidate)
        elif key in ("ice-ufrag", "ice-pwd"):
            values.setdefault(key, value.strip())
    return values.get("ice-ufrag", ""), values.get("ice-pwd", ""), candidates


async def ice_with_janus(
    exchange: Callable[[str], Awaitable[str]], seconds: float = 10
) -> IceResult:
    """`exchange` posts an offer and returns Janus's answer."""
    connection = aioice.Connection(ice_controlling=True, use_ipv6=False)
    try:
        await connection.gather_candidates()
        username, password, candidates = answered(await exchange(offer_for(connection)))
        offered = tuple(f"{c.host}:{c.port}" for c in candidates)
        if not candidates:
            return IceResult(offered, error="Janus's answer has no UDP candidate")
        connection.remote_username, connection.remote_password = username, password
        for candidate in candidates:
            await connection.add_remote_candidate(candidate)
        await connection.add_remote_candidate(None)
        started = time.perf_counter()
        try:
            await asyncio.wait_for(connection.connect(), seconds)
        except TimeoutError:
            return IceResult(offered, error=f"no ICE check answered within {seconds:g} s")
        except ConnectionError as error:
            return IceResult(offered, error=f"ICE failed: {error}")
        return IceResult(offered, round((time.perf_counter() - started) * 1000, 1))
    finally:
        await connection.close()
