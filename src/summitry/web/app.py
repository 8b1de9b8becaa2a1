"""The application, wired declaratively: routes, middleware and a lifespan that owns the
database and the summits' clock."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from summitry import __version__
from summitry.config import Config
from summitry.control.events import EventHub
from summitry.control.summits import Clock, Summits
from summitry.domain.errors import IllegalTransition
from summitry.domain.phases import CutReason
from summitry.media.plane import build_media_plane
from summitry.store.database import make_engine, migrate, sessions
from summitry.web import api, errors, keys, media, pages, public
from summitry.web.limits import BodyLimit, Buckets, CredentialThrottle, RateLimit

log = logging.getLogger(__name__)

BODY_LIMIT = 64 * 1024
# What anyone may call: a viewer's player polls two playlists and fetches segments, 4-8
# requests a second, and several viewers may share an address; bursts cover a page load.
PUBLIC_PREFIXES = ("/api/v1/public/", "/s/")
PUBLIC_RATE, PUBLIC_BURST = 50.0, 100
# Credentials not issued here, per address: a mistyped link or two costs nothing; a
# guesser gets 20, then one every 6 s (a million guesses would take two months).
FAILED_CREDENTIAL_RATE, FAILED_CREDENTIAL_BURST = 1 / 6, 20
TICK_SECONDS = 1.0
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
        b"connect-src 'self'; style-src 'self'; script-src 'self'; frame-ancestors 'none'",
    ),
]


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def run_clock(service: Summits) -> None:
    """Raises the summits' automatic transitions (lobby opening, planned cut, end)."""
    while True:
        try:
            await service.tick()
        except Exception:  # the clock must outlive one bad tick; the error is logged
            log.exception("summit clock tick failed")
        await asyncio.sleep(TICK_SECONDS)


def cut_on_failure(service: Summits) -> Callable[[str], Awaitable[None]]:
    async def cut(summit_id: str) -> None:
        with contextlib.suppress(IllegalTransition):  # already cut: nothing more to do
            await service.fail(summit_id, CutReason.BROADCAST_FAILURE)

    return cut


def create_app(config: Config, clock: Clock | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(config.database_url)
        await migrate(engine)
        hub = EventHub()
        try:
            async with build_media_plane(config, hub.announce) as plane:
                media = None if plane is None else plane.media
                service = Summits(
                    sessions(engine), config.grant_secret, config.public_url, hub, clock, media
                )
                if plane is not None:
                    await plane.media.restore(await service.active_summits())
                    plane.on_broadcast_failure.append(cut_on_failure(service))
                    # A broadcast this process did not start cannot be trusted: cut it.
                    for summit_id in await service.public_summits():
                        await cut_on_failure(service)(summit_id)
                app.state.summits = service
                ticker = asyncio.create_task(run_clock(service))
                try:
                    yield
                finally:
                    ticker.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await ticker
        finally:
            await engine.dispose()

    app = FastAPI(
        title="summitry", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None
    )
    app.state.config = config
    errors.install(app)
    app.include_router(api.router)
    app.include_router(media.router)
    app.include_router(keys.router)
    app.include_router(public.router)
    app.include_router(pages.router)
    app.mount("/static", pages.static_files, name="static")
    app.add_middleware(BodyLimit, limit=BODY_LIMIT)
    app.add_middleware(
        RateLimit, prefixes=PUBLIC_PREFIXES, buckets=Buckets(PUBLIC_RATE, PUBLIC_BURST)
    )
    app.state.failed_credentials = Buckets(FAILED_CREDENTIAL_RATE, FAILED_CREDENTIAL_BURST)
    app.add_middleware(
        CredentialThrottle,
        prefix="/api/",
        exempt=(*PUBLIC_PREFIXES, "/api/v1/health"),
        failures=app.state.failed_credentials,
    )
    app.add_middleware(SecurityHeaders)
    return app
