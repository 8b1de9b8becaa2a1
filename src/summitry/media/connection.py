"""Our connection to one Janus: its client, the session we keep in it, the admin key,
and how many times it was (re)made.

Theory of operation
-------------------
Everything the media plane makes in Janus (rooms, handles, forwards, the mountpoint)
lives in one session. Janus may drop that session and live on (it timed the session
out, or someone destroyed it): the keeper then opens a new one and the session's user
(the rooms) makes everything afresh and tells the clients to rejoin. A Janus that died
is the supervisor's: it connects us again to the one it restarts. Each connection
bumps `generation`.

Errors Janus answers with are translated into the domain's in one place,
`janus_errors`: the broadcast chain and the rooms depend on this module, not on each
other.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

from summitry.domain.errors import BadDescription, MediaUnavailable, SummitryError
from summitry.domain.events import SummitEvent
from summitry.media.janus import JSON, Handle, Janus, JanusError, JanusUnavailable, Session

log = logging.getLogger(__name__)

# How the media plane tells a summit's participants something (the event hub).
Announce = Callable[[str, SummitEvent], None]


class SessionUser(Protocol):
    """What lives in our Janus session, told when the session changes."""

    async def resume(self, janus: Janus) -> Session | None:
        """Claims the session a previous summitry left in `janus`, if any, with all that
        lived in it."""
        ...

    def let_go(self) -> None:
        """The session is closing: stop following its handles."""
        ...

    async def start_afresh(self, session: Session) -> None:
        """A new session: whatever lived in the old one is gone."""
        ...


@contextlib.asynccontextmanager
async def janus_errors(
    refused: type[SummitryError] | None = None,
    what: str = "",
    *,
    detach: Handle | None = None,
) -> AsyncIterator[None]:
    """Speaks to Janus in the domain's terms: a Janus that does not answer is
    `MediaUnavailable`; a refusal becomes `refused("<what>: <Janus's reason>")` once
    `detach` is let go. Without `refused` a refusal passes as it is (the caller looks at
    its code)."""
    try:
        yield
    except JanusError as error:
        if refused is None:
            raise
        if detach is not None:
            await detach.detach()
        raise refused(f"{what}: {error.reason}") from error
    except JanusUnavailable as error:
        raise MediaUnavailable("the media server did not answer") from error


async def answer_offer(
    handle: Handle, body: dict[str, Any], offer: str, encrypted: bool = False
) -> tuple[JSON, str]:
    """Sends a client's offer along with `body`: the event's data and Janus's answer.
    `encrypted` tells Janus the media is end-to-end encrypted (it reads that from the
    JSEP). When Janus refuses, the handle is let go and the error says why."""
    jsep_in: dict[str, Any] = {"type": "offer", "sdp": offer}
    if encrypted:
        jsep_in["e2ee"] = True
    async with janus_errors(BadDescription, "the media server refused the offer", detach=handle):
        data, jsep = await handle.message(body, jsep_in)
    if jsep is None or jsep.get("type") != "answer":
        await handle.detach()
        raise BadDescription("the media server did not answer the offer")
    return data, str(jsep["sdp"])


class JanusConnection:
    """One Janus server and the session we keep in it, for one `user` (the rooms)."""

    def __init__(self) -> None:
        self.user: SessionUser | None = None
        self.generation = 0
        self._janus: Janus | None = None
        self._session: Session | None = None
        self._admin_key = ""
        self._connecting = asyncio.Lock()
        self._keeper: asyncio.Task[None] | None = None

    @property
    def admin_key(self) -> str:
        return self._admin_key

    @property
    def connected(self) -> bool:
        return self._session is not None and not self._session.lost.is_set()

    @property
    def session(self) -> Session:
        if self._session is None or self._session.lost.is_set():
            raise MediaUnavailable("the media server is restarting; try again in a moment")
        return self._session

    async def connect(
        self, url: str, api_secret: str, admin_key: str, resume: bool = False
    ) -> None:
        """Talk to the Janus at `url`. With `resume`, take over the session a previous
        summitry left in that same Janus; otherwise (a new Janus) everything that lived
        in the old one is gone: rooms are recreated and clients told to rejoin."""
        async with self._connecting:
            await self._connect(url, api_secret, admin_key, resume)
        self._keep_session(url, api_secret, admin_key)

    async def close(self) -> None:
        await self._disconnect()

    def _keep_session(self, url: str, api_secret: str, admin_key: str) -> None:
        self._keeper = asyncio.create_task(
            self._keep(url, api_secret, admin_key), name="janus-session-keeper"
        )

    async def _keep(self, url: str, api_secret: str, admin_key: str) -> None:
        """Waits until Janus drops our session, then opens a new one (retrying while
        Janus refuses or does not answer)."""
        assert self._session is not None
        await self._session.lost.wait()
        delay = 0.5
        while True:
            async with self._connecting:
                log.warning("the Janus session was lost; opening a new one")
                try:
                    await self._connect(url, api_secret, admin_key, resume=False)
                    break
                except (JanusError, JanusUnavailable) as error:
                    log.warning("no new Janus session yet: %s", error)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
        self._keep_session(url, api_secret, admin_key)

    async def _connect(self, url: str, api_secret: str, admin_key: str, resume: bool) -> None:
        await self._disconnect()
        self._janus = Janus(url, api_secret)
        self._admin_key = admin_key
        self.generation += 1
        if resume and self.user is not None:
            self._session = await self.user.resume(self._janus)
            if self._session is not None:
                return
        self._session = await Session.open(self._janus, None)
        if self.user is not None:
            await self.user.start_afresh(self._session)

    async def _disconnect(self) -> None:
        if self._keeper is not None and self._keeper is not asyncio.current_task():
            self._keeper.cancel()
        if self.user is not None:
            self.user.let_go()
        if self._session is not None:
            await self._session.close()
        if self._janus is not None:
            await self._janus.close()
        self._session = self._janus = None
