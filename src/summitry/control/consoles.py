"""When each coordinator's console last reported in, per summit. In memory: a restarted
server starts watching again from the next heartbeat."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime


class Consoles:
    def __init__(self) -> None:
        self._seen: defaultdict[str, dict[str, datetime]] = defaultdict(dict)

    def report(self, summit_id: str, participant_id: str, now: datetime) -> None:
        self._seen[summit_id][participant_id] = now

    def forget(self, summit_id: str, participant_id: str) -> None:
        self._seen[summit_id].pop(participant_id, None)

    def last_seen(self, summit_id: str) -> Iterable[datetime]:
        return self._seen.get(summit_id, {}).values()
