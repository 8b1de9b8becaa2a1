"""The application, wired declaratively: routes, middleware and a lifespan that owns the
database and the summits' clock."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
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
from summitry.media.broadcast import BroadcastChain
from summitry.media.rooms import JanusRooms
from summitry.media.supervisor import (
    JanusEndpoint,
    JanusNotFound,
    JanusSettings,
    JanusSupervisor,
    find_janus,
)
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


@asynccontextmanager
async def media_plane(config: Config, hub: EventHub) -> AsyncIterator[JanusRooms | None]:
    """The configured media plane: our own supervised Janus, an external one, or none."""
    if config.media == "off":
        yield None
        return
    media_dir = config.data_dir / "janus"
    media_dir.mkdir(mode=0o700, exist_ok=True)
    rooms = JanusRooms(hub.announce, media_dir / "media.state.json")
    rooms.broadcast = BroadcastChain(rooms, config.data_dir / "broadcast", find_ffmpeg())
    rooms.broadcast.end_orphans()
    supervisor: JanusSupervisor | None = None
    try:
        if config.media == "external":
            assert config.janus_url is not None
            await rooms.connect(
                config.janus_url, config.janus_api_secret, config.janus_admin_key, resume=True
            )
        else:
            supervisor = JanusSupervisor(
                JanusSettings(find_janus(), media_dir, config.media_address)
            )
            endpoint = await supervisor.start()
            await rooms.connect(
                endpoint.url, endpoint.api_secret, endpoint.admin_key, resume=supervisor.adopted
            )

            async def reconnect(endpoint: JanusEndpoint, generation: int) -> None:
                log.warning("Janus restarted (start %d): recreating rooms", generation)
                await rooms.connect(endpoint.url, endpoint.api_secret, endpoint.admin_key)

            supervisor.on_restart.append(reconnect)
        yield rooms
    finally:
        await rooms.close()
        if supervisor is not None:
            await supervisor.stop()


def cut_on_failure(service: Summits) -> Callable[[str], Awaitable[None]]:
    async def cut(summit_id: str) -> None:
        with contextlib.suppress(IllegalTransition):  # already cut: nothing more to do
            await service.fail(summit_id, CutReason.BROADCAST_FAILURE)

    return cut


def find_ffmpeg() -> str:
    found = shutil.which("ffmpeg")
    if found is None:
        raise JanusNotFound(
            "ffmpeg is not installed (apt-get install ffmpeg); the broadcast chain needs it"
        )
    return found


def create_app(config: Config, clock: Clock | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(config.database_url)
        await migrate(engine)
        hub = EventHub()
        try:
            async with media_plane(config, hub) as media:
                service = Summits(
                    sessions(engine), config.grant_secret, config.public_url, hub, clock, media
                )
                if media is not None:
                    await media.restore(await service.active_summits())
                    if media.broadcast is not None:
                        media.broadcast.on_failure.append(cut_on_failure(service))
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
