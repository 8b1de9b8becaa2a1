"""The composition root: the one place that wires adapters (database, media plane, web
links) to the control plane's services, and the one task group that owns every task the
services start, so shutdown cancels and awaits them all."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from summitry.config import Config
from summitry.control.events import EventHub
from summitry.control.services import Services, build_services
from summitry.control.unit import Clock
from summitry.domain.errors import IllegalTransition
from summitry.domain.phases import CutReason
from summitry.domain.sdp import PeerPolicy
from summitry.media.plane import build_media_plane
from summitry.security.audit import AuditKey
from summitry.security.turn import TurnRelay
from summitry.store.database import make_engine, migrate, sessions
from summitry.web.app import create_app
from summitry.web.links import WebLinks

log = logging.getLogger(__name__)

TICK_SECONDS = 1.0


class Nursery:
    """The parent of every task the services start (trio's rule: no task outlives its
    parent). Leaving it cancels what still runs and awaits it all. A failing task is
    logged and never takes the server down, and an error of the body passes through
    unchanged: unlike `asyncio.TaskGroup`, which would cancel the server for one failed
    background task and wrap every refusal in an ExceptionGroup."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> Nursery:
        return self

    async def __aexit__(self, *_: object) -> None:
        while self._tasks:
            running = list(self._tasks)
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(self._logged(work))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _logged(work: Coroutine[Any, Any, None]) -> None:
        try:
            await work
        except Exception:
            log.exception("background work failed")


async def run_clock(services: Services) -> None:
    """Raises the summits' automatic transitions (lobby opening, planned cut, end)."""
    while True:
        try:
            await services.phases.tick()
        except Exception:  # the clock must outlive one bad tick; the error is logged
            log.exception("summit clock tick failed")
        await asyncio.sleep(TICK_SECONDS)


def cut_on_failure(services: Services) -> Callable[[str], Awaitable[None]]:
    async def cut(summit_id: str) -> None:
        with contextlib.suppress(IllegalTransition):  # already cut: nothing more to do
            await services.phases.fail(summit_id, CutReason.BROADCAST_FAILURE)

    return cut


@asynccontextmanager
async def running(config: Config, clock: Clock | None = None) -> AsyncIterator[Services]:
    """The whole server: the database migrated, the media plane up and restored, broadcast
    failures cutting, the summits' clock ticking; everything stopped in reverse order."""
    engine = make_engine(config.database_url)
    await migrate(engine)
    hub = EventHub()
    try:
        async with build_media_plane(config, hub.announce) as plane, Nursery() as nursery:
            media = None if plane is None else plane.media
            services = build_services(
                sessions(engine),
                config.grant_secret,
                AuditKey(config.audit_seed),
                WebLinks(config.public_url),
                hub,
                nursery.spawn,
                clock,
                media,
                PeerPolicy(config.denied_peer_networks),
                TurnRelay(config.turn_urls, config.turn_secret) if config.turn != "off" else None,
            )
            if plane is not None:
                await plane.media.restore(await services.catalog.active_summits())
                plane.on_broadcast_failure.append(cut_on_failure(services))
                plane.on_recordings_sealed.append(services.audit.recordings_sealed)
                # A broadcast this process did not start cannot be trusted: cut it.
                for summit_id in await services.catalog.public_summits():
                    await cut_on_failure(services)(summit_id)
            nursery.spawn(run_clock(services))
            yield services
    finally:
        await engine.dispose()


@asynccontextmanager
async def offline(config: Config) -> AsyncIterator[Services]:
    """The services on the database alone, for the command line's one-off commands: no
    media plane, no clock."""
    engine = make_engine(config.database_url)
    await migrate(engine)
    try:
        async with Nursery() as nursery:
            yield build_services(
                sessions(engine),
                config.grant_secret,
                AuditKey(config.audit_seed),
                WebLinks(config.public_url),
                EventHub(),
                nursery.spawn,
            )
    finally:
        await engine.dispose()


def build_app(config: Config, clock: Clock | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with running(config, clock) as services:
            app.state.services = services
            yield

    return create_app(config, lifespan)
