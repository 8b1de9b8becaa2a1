"""A real TURN round trip, as a browser behind a strict firewall would make it: two
allocations on one TURN server (over UDP, TCP or TLS, as the URL says), each permitting
the other's relayed address, and one datagram each way between them. The relays sit on
the media server's address, the one peer coturn relays to, so this needs no echo
service: it proves allocation, credentials, permissions and relaying end to end."""

from __future__ import annotations

import asyncio
import ssl
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from aioice import stun, turn


class BadTurnUrl(ValueError):
    """Not a `turn:` or `turns:` URL this probe understands."""


@dataclass(frozen=True)
class TurnUrl:
    host: str
    port: int
    transport: str  # udp or tcp
    secure: bool

    @classmethod
    def parse(cls, url: str) -> TurnUrl:
        scheme, _, rest = url.partition(":")
        if scheme not in ("turn", "turns") or not rest:
            raise BadTurnUrl(f"not a TURN URL: {url!r}")
        parts = urlsplit(f"//{rest}")
        if parts.hostname is None:
            raise BadTurnUrl(f"no host in {url!r}")
        secure = scheme == "turns"
        transport = parse_qs(parts.query).get("transport", ["tcp" if secure else "udp"])[0]
        if transport not in ("udp", "tcp") or (secure and transport != "tcp"):
            raise BadTurnUrl(f"unsupported transport in {url!r}")
        return cls(parts.hostname, parts.port or (5349 if secure else 3478), transport, secure)


@dataclass(frozen=True)
class RoundTrip:
    url: str
    relayed: tuple[str, int] | None = None  # the first allocation's relayed address
    milliseconds: float | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class Inbox(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.received: asyncio.Queue[tuple[bytes, Any]] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.received.put_nowait((data, addr))


async def relayed_round_trip(
    url: str,
    username: str,
    password: str,
    tls: ssl.SSLContext | None = None,
    seconds: float = 10,
) -> RoundTrip:
    """Allocates twice on `url` with the credential and sends one datagram each way
    between the two relays; `tls` verifies a `turns:` server (the system's CAs if None)."""
    try:
        where = TurnUrl.parse(url)
    except BadTurnUrl as error:
        return RoundTrip(url, error=str(error))
    secure = (tls or ssl.create_default_context()) if where.secure else None
    opened: list[turn.TurnTransport] = []
    try:
        async with asyncio.timeout(seconds):
            inboxes: list[Inbox] = []
            for _ in range(2):
                transport, inbox = await turn.create_turn_endpoint(
                    Inbox,
                    (where.host, where.port),
                    username,
                    password,
                    ssl=secure,
                    transport=where.transport,
                )
                opened.append(transport)
                inboxes.append(inbox)
            relays: list[tuple[str, int]] = [
                tuple(t.get_extra_info("sockname")[:2]) for t in opened
            ]
            started = time.perf_counter()
            # Permissions are per peer address, and a relay gets one by sending: until
            # both have sent, the first datagrams are dropped, so each is sent again.
            await asyncio.gather(
                *(
                    deliver(opened[sender], relays[receiver], inboxes[receiver], sender)
                    for sender, receiver in ((0, 1), (1, 0))
                )
            )
            elapsed = (time.perf_counter() - started) * 1000
            return RoundTrip(url, relays[0], round(elapsed, 2))
    except TimeoutError:
        return RoundTrip(url, error=f"no relayed round trip within {seconds:g} s")
    except (OSError, ssl.SSLError, stun.TransactionFailed) as error:
        return RoundTrip(url, error=describe(error))
    finally:
        for transport in opened:
            transport.close()


async def deliver(
    sender: turn.TurnTransport, to: tuple[str, int], inbox: Inbox, number: int
) -> None:
    payload = f"summitry check {number}".encode()
    while True:
        sender.sendto(payload, to)
        try:
            async with asyncio.timeout(0.25):
                while (await inbox.received.get())[0] != payload:
                    pass
                return
        except TimeoutError:
            continue


def describe(error: BaseException) -> str:
    if isinstance(error, stun.TransactionFailed):
        code = error.response.attributes.get("ERROR-CODE")
        return f"refused: {code[0]} {code[1]}" if code else "refused"
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"certificate not trusted: {error.verify_message}"
    return f"{type(error).__name__}: {error}"
