"""Per-summit announcements for the Server-Sent Events streams. In-process: one
summitry process owns its subscribers (DESIGN §7 names the pub/sub for scale-out)."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

QUEUE_LIMIT = 256


class EventHub:
    def __init__(self) -> None:
        self._queues: dict[str, set[asyncio.Queue[dict[str, Any]]]] = defaultdict(set)

    def announce(self, summit_id: str, event: dict[str, Any]) -> None:
        for queue in list(self._queues.get(summit_id, ())):
            if queue.full():
                queue.get_nowait()  # a slow listener loses the oldest, never blocks others
            queue.put_nowait(event)

    @asynccontextmanager
    async def listen(self, summit_id: str) -> AsyncIterator[asyncio.Queue[dict[str, Any]]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_LIMIT)
        self._queues[summit_id].add(queue)
        try:
            yield queue
        finally:
            self._queues[summit_id].discard(queue)
            if not self._queues[summit_id]:
                del self._queues[summit_id]
