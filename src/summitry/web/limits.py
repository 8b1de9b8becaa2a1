"""Limits enforced before the application does any work: request body sizes, the public
endpoints' request rate, addresses that keep presenting credentials not issued here, and
how many lasting things (event streams, WHEP viewers) each holder may have open."""

from __future__ import annotations

import json
import math
import time
from collections import Counter, OrderedDict
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from summitry.web.errors import Throttled, TooManyFailures, error_body


class Slots:
    """Lasting things (`what`: event streams, WHEP viewers), each holding a connection,
    a file descriptor or a media port while it lasts: at most `per_holder` per holder
    (an address, a participant) and `total` in all; beyond, 429."""

    def __init__(self, per_holder: int, total: int, what: str) -> None:
        self.per_holder = per_holder
        self.total = total
        self.what = what
        self.open: Counter[str] = Counter()

    def claim(self, holder: str) -> Callable[[], None]:
        """A slot for `holder`, and the one-shot call that frees it."""
        if self.open[holder] >= self.per_holder:
            raise Throttled(5, f"more than {self.per_holder} {self.what} are open from here")
        if self.open.total() >= self.total:
            raise Throttled(5, f"the server has as many {self.what} open as it takes")
        self.open[holder] += 1
        freed = False

        def free() -> None:
            nonlocal freed
            if not freed:
                freed = True
                self.open[holder] -= 1
                if self.open[holder] <= 0:
                    del self.open[holder]

        return free


class BodyTooLarge(Exception):
    pass


class BodyLimit:
    """Refuses bodies over `limit` bytes with 413, by Content-Length or while streaming."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(send)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        message = f"the request body is larger than {self.limit} bytes"
        await refuse(send, 413, error_body("body_too_large", message))


class Buckets:
    """Per-client token buckets: `rate` tokens a second on average, up to `burst`."""

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def _level(self, client: str) -> float:
        now = self.clock()
        tokens, last = self._buckets.pop(client, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        self._buckets[client] = (tokens, now)
        while len(self._buckets) > MAX_CLIENTS:  # forget the longest-idle clients
            self._buckets.popitem(last=False)
        return tokens

    def take(self, client: str) -> bool:
        """Takes a token if there is one; False when the client is out of tokens."""
        tokens = self._level(client)
        if tokens < 1.0:
            return False
        self._buckets[client] = (tokens - 1.0, self.clock())
        return True

    def wait(self, client: str) -> float:
        """Seconds until the client has a token again; 0 when it has one now."""
        return max(0.0, (1.0 - self._level(client)) / self.rate)

    def refusal(self, client: str) -> int:
        """Takes a token: 0 if there was one, else the whole seconds (1 at least) until
        there is, for a `Retry-After`."""
        return 0 if self.take(client) else max(1, math.ceil(self.wait(client)))


def client_address(scope: Scope) -> str:
    return str((scope.get("client") or ("unknown", 0))[0])


async def refuse(
    send: Send, status: int, body: dict[str, object], retry_after: int | None = None
) -> None:
    encoded = json.dumps(body).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(encoded)).encode()),
    ]
    if retry_after is not None:
        headers.append((b"retry-after", str(retry_after).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": encoded})


class RateLimit:
    """The public endpoints' limit (no account stands behind them): a request takes a
    token of its client's bucket; 429 when the bucket is empty."""

    def __init__(self, app: ASGIApp, prefixes: tuple[str, ...], buckets: Buckets) -> None:
        self.app = app
        self.prefixes = prefixes
        self.buckets = buckets

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or not scope["path"].startswith(self.prefixes)
            or self.buckets.take(client_address(scope))
        ):
            await self.app(scope, receive, send)
            return
        await refuse(send, 429, error_body("rate_limited", "too many requests; slow down"), 1)


class FailedCredentials:
    """Guesses at a credential, counted per address and per kind ("grant", "operator"):
    each kind has a bucket of failures, and an address whose bucket of one kind is empty
    gets 429 for every further failure of that kind. Only what a guess would need to
    be let in is stopped: a good grant always gets in, whatever else came from its
    address, so nobody (a web page, a neighbour behind the same NAT) can lock a
    participant out. Operator tokens are stricter: once their bucket is empty, none is
    even compared from that address, not even the right one, since a token that is
    compared can be found. Credentials a web page can send at all (a ticket in a URL)
    never count."""

    def __init__(self, buckets: Buckets) -> None:
        self.buckets = buckets

    def stopped(self, kind: str, scope: Scope) -> int:
        """Seconds until `kind` is tried again from this address; 0: it is tried now."""
        return math.ceil(self.buckets.wait(f"{kind} {client_address(scope)}"))

    def failed(self, kind: str, scope: Scope) -> None:
        """A credential of `kind` that was never issued here: spends a token, and
        raises TooManyFailures when there was none left."""
        if wait := self.buckets.refusal(f"{kind} {client_address(scope)}"):
            raise TooManyFailures(wait)


MAX_CLIENTS = 100_000
