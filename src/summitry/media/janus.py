"""An async client for the Janus HTTP API: sessions kept alive by a long poll,
transactions matched to their answers, plugin handles with typed errors.

Why our own: the PyPI clients (`janus-client`, `janus-api-core`) speak WebSockets only
and bring their own media (aiortc) and object models; summitry needs a small, typed
control channel over the REST transport that stays on 127.0.0.1 and can re-claim a
session after a summitry restart."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections import defaultdict
from typing import Any

import httpx

log = logging.getLogger(__name__)

REQUEST_TIMEOUT = 10.0
# Janus's HTTP transport holds a long poll for 30 s, then answers with a keepalive: the
# client waits longer, or an idle session would look like a dead Janus.
LONG_POLL_HOLD = 30.0
NO_SUCH_SESSION = 458  # Janus's error code


class JanusError(Exception):
    """Janus refused a request; `code` is Janus's or its plugin's error code."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"Janus error {code}: {reason}")
        self.code = code
        self.reason = reason


class JanusUnavailable(Exception):
    """Janus did not answer (not running, restarting, or too slow)."""


JSON = dict[str, Any]


def janus_id() -> int:
    """An id of our choosing for something in Janus (a room, a feed, a mountpoint):
    random, never 0, and exact in JSON (under 2**53)."""
    return secrets.randbits(52) or 1


class Janus:
    """The Janus server at `url` (the REST transport's base, ending in /janus)."""

    def __init__(
        self, url: str, api_secret: str | None = None, http: httpx.AsyncClient | None = None
    ) -> None:
        self.url = url.rstrip("/")
        self._secret = api_secret
        self._http = http or httpx.AsyncClient(timeout=REQUEST_TIMEOUT)

    async def close(self) -> None:
        await self._http.aclose()

    async def info(self) -> JSON:
        return await self._get(f"{self.url}/info")

    async def post(self, path: str, body: JSON, transaction: str | None = None) -> JSON:
        message = {**body, "transaction": transaction or secrets.token_hex(8)}
        if self._secret:
            message["apisecret"] = self._secret
        try:
            response = await self._http.post(f"{self.url}{path}", json=message)
        except httpx.HTTPError as error:
            raise JanusUnavailable(f"Janus at {self.url} did not answer: {error}") from error
        return check(response.json())

    async def poll(self, session_id: int, max_events: int = 10) -> JSON:
        """The session's events (a list), or a keepalive once Janus held the poll."""
        return await self._get(f"{self.url}/{session_id}", maxev=max_events)

    async def _get(self, url: str, **params: Any) -> JSON:
        if self._secret:
            params["apisecret"] = self._secret
        try:
            response = await self._http.get(
                url, params=params, timeout=LONG_POLL_HOLD + REQUEST_TIMEOUT
            )
        except httpx.HTTPError as error:
            raise JanusUnavailable(f"Janus at {self.url} did not answer: {error}") from error
        try:
            answer: JSON = response.json()
        except ValueError as error:  # e.g. a session Janus no longer has
            raise JanusUnavailable(
                f"Janus answered {response.status_code} without JSON at {url}"
            ) from error
        return answer


def check(answer: JSON) -> JSON:
    if answer.get("janus") == "error":
        error = answer.get("error", {})
        raise JanusError(int(error.get("code", 0)), str(error.get("reason", "unknown")))
    data = answer.get("plugindata", {}).get("data", {})
    if "error_code" in data or "error" in data:
        raise JanusError(int(data.get("error_code", 0)), str(data.get("error", "unknown")))
    return answer


class Session:
    def __init__(self, janus: Janus, session_id: int) -> None:
        self.janus = janus
        self.id = session_id
        self._pending: dict[str, asyncio.Future[JSON]] = {}
        self._events: defaultdict[int, asyncio.Queue[JSON]] = defaultdict(asyncio.Queue)
        self._poller: asyncio.Task[None] | None = None
        self.lost = asyncio.Event()

    @classmethod
    async def open(cls, janus: Janus, claim: int | None) -> Session:
        if claim is None:
            answer = await janus.post("", {"janus": "create"})
            session = cls(janus, int(answer["data"]["id"]))
        else:
            await janus.post(f"/{claim}", {"janus": "claim"})
            session = cls(janus, claim)
        session._poller = asyncio.create_task(session._poll(), name=f"janus-poll-{session.id}")
        return session

    async def close(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        if not self.lost.is_set():
            with contextlib.suppress(JanusError, JanusUnavailable):
                await self.janus.post(f"/{self.id}", {"janus": "destroy"})

    async def attach(self, plugin: str, handle_id: int | None = None) -> Handle:
        if handle_id is not None:
            return Handle(self, handle_id, plugin)
        answer = await self.post(f"/{self.id}", {"janus": "attach", "plugin": plugin})
        return Handle(self, int(answer["data"]["id"]), plugin)

    async def post(self, path: str, body: JSON, transaction: str | None = None) -> JSON:
        """A request on this session; Janus answering that it has no such session makes
        the session lost at once (the long poll would only tell within its hold)."""
        try:
            return await self.janus.post(path, body, transaction)
        except JanusError as error:
            if error.code != NO_SUCH_SESSION:
                raise
            gone = JanusUnavailable("the Janus session no longer exists")
            self._fail_all(gone)
            raise gone from error

    def events(self, handle_id: int) -> asyncio.Queue[JSON]:
        return self._events[handle_id]

    async def wait_transaction(self, transaction: str) -> JSON:
        future = self._pending.setdefault(transaction, asyncio.get_running_loop().create_future())
        try:
            return await asyncio.wait_for(future, REQUEST_TIMEOUT)
        except TimeoutError as error:
            raise JanusUnavailable(
                f"Janus did not answer within {REQUEST_TIMEOUT:.0f} s"
            ) from error
        finally:
            self._pending.pop(transaction, None)

    def expect(self, transaction: str) -> None:
        self._pending.setdefault(transaction, asyncio.get_running_loop().create_future())

    async def _poll(self) -> None:
        """The long poll: also Janus's keep-alive for this session. However it ends, the
        session is marked lost, so that its owner opens another."""
        try:
            await self._poll_until_lost()
        except Exception:
            log.exception("Janus session %s: the long poll failed", self.id)
            self._fail_all(JanusUnavailable("the long poll on the Janus session failed"))

    async def _poll_until_lost(self) -> None:
        failures = 0
        while True:
            try:
                answer = await self.janus.poll(self.id)
            except JanusUnavailable:
                failures += 1
                if failures >= 3:
                    log.warning("Janus session %s lost", self.id)
                    self._fail_all(JanusUnavailable("Janus went away"))
                    return
                await asyncio.sleep(0.5)
                continue
            failures = 0
            batch = answer if isinstance(answer, list) else [answer]
            for event in batch:
                if event.get("janus") == "error" and event.get("error", {}).get("code") == (
                    NO_SUCH_SESSION
                ):
                    self._fail_all(JanusUnavailable("the Janus session no longer exists"))
                    return
                self._dispatch(event)

    def _dispatch(self, event: JSON) -> None:
        if event.get("janus") == "keepalive":
            return
        transaction = event.get("transaction")
        future = self._pending.get(transaction) if transaction else None
        if future is not None and not future.done() and event.get("janus") != "ack":
            future.set_result(event)
            return
        sender = event.get("sender")
        if sender is not None:
            self._events[int(sender)].put_nowait(event)

    def _fail_all(self, error: Exception) -> None:
        self.lost.set()
        for future in self._pending.values():
            if not future.done():
                future.set_exception(error)
        for queue in self._events.values():
            queue.put_nowait({"janus": "detached", "reason": str(error)})


class Handle:
    def __init__(self, session: Session, handle_id: int, plugin: str) -> None:
        self.session = session
        self.id = handle_id
        self.plugin = plugin

    @property
    def path(self) -> str:
        return f"/{self.session.id}/{self.id}"

    async def request(self, body: JSON) -> JSON:
        """A synchronous plugin request (create, list, rtp_forward...): its data."""
        answer = await self.session.post(self.path, {"janus": "message", "body": body})
        data: JSON = answer.get("plugindata", {}).get("data", {})
        return data

    async def message(self, body: JSON, jsep: JSON | None = None) -> tuple[JSON, JSON | None]:
        """An asynchronous plugin request (join, publish, start...): the event answering
        it, and its JSEP if any."""
        transaction = secrets.token_hex(8)
        self.session.expect(transaction)
        message: JSON = {"janus": "message", "body": body}
        if jsep is not None:
            message["jsep"] = jsep
        first = await self.session.post(self.path, message, transaction)
        if first.get("janus") != "ack":  # answered synchronously
            return first.get("plugindata", {}).get("data", {}), first.get("jsep")
        event = check(await self.session.wait_transaction(transaction))
        return event.get("plugindata", {}).get("data", {}), event.get("jsep")

    async def trickle_completed(self) -> None:
        await self.session.post(self.path, {"janus": "trickle", "candidate": {"completed": True}})

    async def trickle(self, candidates: list[JSON]) -> None:
        await self.session.post(self.path, {"janus": "trickle", "candidates": candidates})

    async def hangup(self) -> None:
        with contextlib.suppress(JanusError, JanusUnavailable):
            await self.session.post(self.path, {"janus": "hangup"})

    async def detach(self) -> None:
        with contextlib.suppress(JanusError, JanusUnavailable):
            await self.session.post(self.path, {"janus": "detach"})
