"""One unit of work per command: the summit's lock and one database transaction, so a
command sees and writes one consistent summit, and a refused command writes nothing."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from summitry.security.audit import AuditKey
from summitry.store.repository import Repository

# Hands a coroutine to the task group that owns the service's background work.
Spawn = Callable[[Coroutine[Any, Any, None]], None]


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class UnitOfWork:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], clock: Clock, audit_key: AuditKey
    ) -> None:
        self._sessions = sessions
        self.clock = clock
        self.audit_key = audit_key
        # A lock lives while a command holds or awaits it: ids that name no summit, or
        # summits long over, leave nothing behind.
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    @asynccontextmanager
    async def command(self, summit_id: str) -> AsyncIterator[Repository]:
        """One transaction per command, one command at a time per summit."""
        lock = self._locks.get(summit_id)
        if lock is None:
            lock = self._locks[summit_id] = asyncio.Lock()
        async with lock, self._sessions.begin() as session:
            yield Repository(session, self.audit_key)

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[Repository]:
        async with self._sessions() as session:
            yield Repository(session, self.audit_key)

    @asynccontextmanager
    async def writing(self) -> AsyncIterator[Repository]:
        """A transaction that takes no summit's lock: for a summit not yet created."""
        async with self._sessions.begin() as session:
            yield Repository(session, self.audit_key)
