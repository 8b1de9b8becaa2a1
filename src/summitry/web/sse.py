"""Server-Sent Events: a snapshot first, then every announcement, with keep-alives."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from fastapi import Request
from fastapi.responses import StreamingResponse

from summitry.control.events import EventHub
from summitry.control.views import SummitView

KEEPALIVE_SECONDS = 15.0
# What the public stream passes on, and of each event only these keys.
PUBLIC_EVENTS = {"phase", "readout", "recordings"}
PUBLIC_KEYS = {"type", "phase"}


def phase_event(view: SummitView) -> dict[str, Any]:
    return {
        "type": "phase",
        "phase": view.phase,
        "version": view.version,
        "consents": [side.id for side in view.sides if side.consented],
    }


def json_value(value: object) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def encode(event: dict[str, Any]) -> bytes:
    data = json.dumps(event, default=json_value)
    return f"event: {event['type']}\ndata: {data}\n\n".encode()


def removes(event: dict[str, Any], participant_id: str | None) -> bool:
    return (
        participant_id is not None
        and event["type"] == "roster"
        and event.get("participant") == participant_id
        and event.get("presence") == "removed"
    )


def stream(
    request: Request,
    hub: EventHub,
    summit_id: str,
    snapshot: dict[str, Any],
    *,
    public: bool,
    participant_id: str | None = None,
) -> StreamingResponse:
    """The summit's events for one listener: everything for a participant, whose stream
    ends with the news of their removal; phase changes and readouts for the public."""

    async def events() -> AsyncIterator[bytes]:
        async with hub.listen(summit_id) as queue:
            yield encode(snapshot)
            while not await request.is_disconnected():
                try:
                    event = await asyncio.wait_for(queue.get(), KEEPALIVE_SECONDS)
                except TimeoutError:
                    yield b": keep-alive\n\n"
                    continue
                if public:
                    if event["type"] not in PUBLIC_EVENTS:
                        continue
                    event = {key: value for key, value in event.items() if key in PUBLIC_KEYS}
                yield encode(event)
                if removes(event, participant_id):
                    return

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
