"""Per-summit announcements for the Server-Sent Events streams. In-process: one
summitry process owns its subscribers (DESIGN §7 names the pub/sub for scale-out)."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from summitry.domain.events import SummitEvent

QUEUE_LIMIT = 256
# How the services announce: (summit id, event).
Announce = Callable[[str, SummitEvent], None]


class EventHub:
    def __init__(self) -> None:
        self._queues: dict[str, set[asyncio.Queue[SummitEvent]]] = defaultdict(set)

    def announce(self, summit_id: str, event: SummitEvent) -> None:
        for queue in list(self._queues.get(summit_id, ())):
            if queue.full():
                queue.get_nowait()  # a slow listener loses the oldest, never blocks others
            queue.put_nowait(event)

    @asynccontextmanager
    async def listen(self, summit_id: str) -> AsyncIterator[asyncio.Queue[SummitEvent]]:
        queue: asyncio.Queue[SummitEvent] = asyncio.Queue(QUEUE_LIMIT)
        self._queues[summit_id].add(queue)
        try:
            yield queue
        finally:
            self._queues[summit_id].discard(queue)
            if not self._queues[summit_id]:
                del self._queues[summit_id]
