"""Server-Sent Events: a snapshot first, then every announcement, with keep-alives."""

from __future__ import annotations

import asyncio
import json
import weakref
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from fastapi import Request
from fastapi.responses import StreamingResponse

from summitry.control.events import EventHub
from summitry.domain.events import RosterChanged, SummitEvent, lobby_sees
from summitry.domain.model import reads_the_talks
from summitry.web.limits import Slots

KEEPALIVE_SECONDS = 15.0


def json_value(value: object) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def encode(event: dict[str, Any]) -> bytes:
    data = json.dumps(event, default=json_value)
    return f"event: {event['type']}\ndata: {data}\n\n".encode()


def stream(
    request: Request,
    hub: EventHub,
    summit_id: str,
    snapshot: SummitEvent,
    *,
    public: bool,
    slots: Slots,
    holder: str,
    participant_id: str | None = None,
    reads_talks: bool = False,
) -> StreamingResponse:
    """The summit's events for one listener: everything for a participant who reads the
    talks (`reads_talks`), whose stream ends with the news of their removal; the phase
    and news of themselves for one in the lobby, until they are admitted; phase changes
    and readouts for the public."""

    def wire(event: SummitEvent) -> dict[str, Any] | None:
        return event.public_body() if public else event.body()

    free = slots.claim(holder)

    async def events() -> AsyncIterator[bytes]:
        reads = reads_talks
        try:
            async with hub.listen(summit_id) as queue:
                first = wire(snapshot)
                if first is not None:
                    yield encode(first)
                while not await request.is_disconnected():
                    try:
                        event = await asyncio.wait_for(queue.get(), KEEPALIVE_SECONDS)
                    except TimeoutError:
                        yield b": keep-alive\n\n"
                        continue
                    if participant_id is not None:
                        if isinstance(event, RosterChanged) and event.participant == participant_id:
                            reads = reads_the_talks(event.role, event.presence)
                        if not reads and not lobby_sees(event, participant_id):
                            continue
                    body = wire(event)
                    if body is None:
                        continue
                    yield encode(body)
                    if (
                        participant_id is not None
                        and isinstance(event, RosterChanged)
                        and event.removes(participant_id)
                    ):
                        return
        finally:
            free()

    body = events()
    weakref.finalize(body, free)  # a stream whose response never started frees it too
    return StreamingResponse(
        body,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
