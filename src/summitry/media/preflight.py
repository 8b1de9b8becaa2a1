"""The operator's preflight of Janus's media ports: `summitry check` offers one audio
stream, Janus answers with its candidates, and the check runs ICE against them from
wherever it is. Each offer gets a VideoRoom of its own that lives `LIFETIME_SECONDS`,
enough for the checks and too short to carry anything; no summit's room is touched."""

from __future__ import annotations

import asyncio
import contextlib
import secrets

from summitry.domain.errors import MediaRefused, MediaUnavailable
from summitry.media.connection import JanusConnection, answer_offer, janus_errors
from summitry.media.janus import Handle, JanusError, JanusUnavailable, janus_id
from summitry.media.resources import VIDEOROOM

LIFETIME_SECONDS = 30
# Preflights at once: each holds a Janus handle and media ports for its lifetime.
MOST_AT_ONCE = 4


class Preflights:
    def __init__(self, connection: JanusConnection) -> None:
        self._connection = connection
        self._running: set[asyncio.Task[None]] = set()

    async def answer(self, offer: str) -> str:
        if len(self._running) >= MOST_AT_ONCE:
            raise MediaUnavailable(f"{MOST_AT_ONCE} preflight checks are running; try shortly")
        async with janus_errors():
            handle = await self._connection.session.attach(VIDEOROOM)
        room, secret = janus_id(), secrets.token_urlsafe(16)
        try:
            async with janus_errors(MediaRefused, "the preflight room", detach=handle):
                await handle.request(
                    {
                        "request": "create",
                        "admin_key": self._connection.admin_key,
                        "room": room,
                        "secret": secret,
                        "is_private": True,
                        "publishers": 1,
                        "audiocodec": "opus",
                    }
                )
                await handle.message(
                    {"request": "join", "ptype": "publisher", "room": room, "display": "check"}
                )
            _, answer = await answer_offer(
                handle, {"request": "publish", "audio": True, "video": False}, offer
            )
        except BaseException:
            await self._end(handle, room, secret, after=0)
            raise
        ending = asyncio.create_task(self._end(handle, room, secret, after=LIFETIME_SECONDS))
        self._running.add(ending)
        ending.add_done_callback(self._running.discard)
        return answer

    async def _end(self, handle: Handle, room: int, secret: str, after: float) -> None:
        await asyncio.sleep(after)
        with contextlib.suppress(JanusError, JanusUnavailable):
            await handle.request({"request": "destroy", "room": room, "secret": secret})
        await handle.detach()
