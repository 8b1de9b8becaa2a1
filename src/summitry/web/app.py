"""The application, wired declaratively: routes, middleware, error mapping. The runtime
(`summitry/runtime.py`) hands it the lifespan that starts the services."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from summitry import __version__
from summitry.config import Config
from summitry.web import api, errors, keys, media, pages, public
from summitry.web.limits import BodyLimit, Buckets, FailedCredentials, RateLimit, Slots

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


# Room for the largest field the document allows (an SDP of 32 KiB), even when JSON
# escapes each of its characters in six bytes: it is refused for its length (422).
BODY_LIMIT = 256 * 1024
# What anyone may call: a viewer's player polls two playlists and fetches segments, 4-8
# requests a second, and several viewers may share an address; bursts cover a page load.
PUBLIC_PREFIXES = ("/api/v1/public/", "/s/")
PUBLIC_RATE, PUBLIC_BURST = 50.0, 100
# Credentials not issued here, per address and kind: a mistyped link or two costs
# nothing; a guesser gets 20, then one every 6 s (a million would take two months).
FAILED_CREDENTIAL_RATE, FAILED_CREDENTIAL_BURST = 1 / 6, 20
# Key changes per grant (a new public key, a key that did not open): a reload or a new
# device is one; each forces a new media key for everyone, so a flood is cut short.
KEY_CHANGE_RATE, KEY_CHANGE_BURST = 1 / 10, 20
# Event streams: a viewer's page opens one, a participant's one or two (a reload); a
# household or an office behind one address may hold a few dozen public ones.
PUBLIC_STREAMS_PER_ADDRESS, PUBLIC_STREAMS = 32, 4000
STREAMS_PER_PARTICIPANT, PARTICIPANT_STREAMS = 4, 2000
# WHEP viewers: each takes one of Janus's media ports (12001 by default), so viewers may
# hold at most 1000 of them, and the participants always find theirs; more viewers
# watch over HLS, which costs no port. An office behind one address may hold a few.
VIEWERS_PER_ADDRESS, VIEWERS = 16, 1000
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
        b"connect-src 'self'; style-src 'self'; script-src 'self'; frame-ancestors 'none'; "
        b"base-uri 'none'; form-action 'self'; object-src 'none'",
    ),
]
# What the API answers carries grants, tickets, keys and private state: no cache keeps
# it (a shared machine's browser, a proxy). The public part sets its own.
NO_STORE = (b"cache-control", b"no-store")


# Over HTTPS (served here, or by a trusted proxy): browsers come back only over HTTPS.
HSTS = (b"strict-transport-security", b"max-age=31536000")


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        secure = scope.get("scheme") == "https"
        path = scope.get("path", "")
        private = path.startswith("/api/") and not path.startswith(PUBLIC_PREFIXES)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if private and not any(name == b"cache-control" for name, _ in headers):
                    headers.append(NO_STORE)
                message["headers"] = [*headers, *SECURITY_HEADERS, *([HSTS] if secure else [])]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_app(config: Config, lifespan: Lifespan | None = None) -> FastAPI:
    """The application; `lifespan` (the runtime's) puts the services on `app.state`."""
    app = FastAPI(
        title="summitry", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None
    )
    app.state.config = config
    errors.install(app)
    errors.declare_errors(app)
    app.include_router(api.router)
    app.include_router(media.router)
    app.include_router(media.preflight_router)
    app.include_router(keys.router)
    app.include_router(public.router)
    app.include_router(pages.router)
    app.mount("/static", pages.static_files, name="static")
    app.add_middleware(BodyLimit, limit=BODY_LIMIT)
    app.add_middleware(
        RateLimit, prefixes=PUBLIC_PREFIXES, buckets=Buckets(PUBLIC_RATE, PUBLIC_BURST)
    )
    app.state.key_changes = Buckets(KEY_CHANGE_RATE, KEY_CHANGE_BURST)
    app.state.public_streams = Slots(PUBLIC_STREAMS_PER_ADDRESS, PUBLIC_STREAMS, "event streams")
    app.state.participant_streams = Slots(
        STREAMS_PER_PARTICIPANT, PARTICIPANT_STREAMS, "event streams"
    )
    app.state.viewers = Slots(VIEWERS_PER_ADDRESS, VIEWERS, "WHEP viewers")
    app.state.failed_credentials = FailedCredentials(
        Buckets(FAILED_CREDENTIAL_RATE, FAILED_CREDENTIAL_BURST)
    )
    app.add_middleware(SecurityHeaders)
    return app
