"""What the public reaches without an account: WHEP for the live broadcast, the HLS
playlist and segments, the recordings of the public part. Read-only and rate-limited."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse

from summitry.control.views import IceServersView
from summitry.domain.errors import NotFound
from summitry.web.api import Service
from summitry.web.errors import declared
from summitry.web.limits import client_address
from summitry.web.media import SDP, SDP_BODY, ice_headers, text_body

router = APIRouter()

LIVE_FILE = re.compile(r"^(index\.m3u8|segment-\d{5}\.ts)$")
RECORDING_TYPES = {"mp4": ("recording.mp4", "video/mp4"), "ogg": ("audio.ogg", "audio/ogg")}


@router.post(
    "/api/v1/public/{slug}/whep",
    status_code=201,
    response_class=Response,
    openapi_extra={"requestBody": {"required": True, **SDP_BODY}},
    responses={
        201: {"description": "The SDP answer; Location names the resource", **SDP_BODY},
        **declared(404, 409, 429),
    },
)
async def whep_watch(slug: str, request: Request, service: Service) -> Response:
    """WHEP: watch the live broadcast (a viewer only receives; it can never publish). A
    viewer whose connection is not up within the server's deadline, or that goes away
    without a DELETE, is let go."""
    offer = await text_body(request, SDP)
    ice = ice_headers(await service.public.ice_servers(slug))
    gone = request.app.state.viewers.claim(client_address(request.scope))
    try:
        resource_id, answer = await service.public.watch(slug, offer, gone)
    except BaseException:
        gone()
        raise
    headers = {"Location": f"/api/v1/public/{slug}/whep/{resource_id}"} | ice
    return Response(answer, 201, media_type=SDP, headers=headers)


@router.options("/api/v1/public/{slug}/whep", status_code=204, response_class=Response)
async def whep_ice_servers(slug: str, service: Service) -> Response:
    """While live, the ICE servers before the offer (RFC 9725, section 4.6)."""
    headers = {"Allow": "OPTIONS, POST"} | ice_headers(await service.public.ice_servers(slug))
    return Response(status_code=204, headers=headers)


@router.get("/api/v1/public/{slug}/ice-servers", response_model=IceServersView)
async def viewer_ice_servers(slug: str, service: Service) -> IceServersView:
    """While live: TURN for a viewer's player, with a credential of its own that ends
    soon after the public part; empty when the server runs no TURN."""
    return await service.public.ice_servers(slug)


@router.delete("/api/v1/public/{slug}/whep/{resource_id}", response_class=Response)
async def whep_stop(slug: str, resource_id: str, service: Service) -> Response:
    await service.public.stop_watching(slug, resource_id)
    return Response(status_code=200)


@router.get("/s/{slug}/live/{position}/{name}", include_in_schema=False)
async def live_file(slug: str, position: int, name: str, service: Service) -> Response:
    if not LIVE_FILE.match(name):
        raise NotFound("no such file")
    path = Path(await service.public.file(slug, position, name))
    if name.endswith(".m3u8"):
        # The packager replaces the playlist as it goes: send one whole version of it.
        try:
            playlist = await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError as error:
            raise NotFound("the broadcast has not started yet") from error
        return Response(
            playlist,
            media_type="application/vnd.apple.mpegurl",
            headers={"Cache-Control": "no-cache"},
        )
    return FileResponse(path, media_type="video/mp2t", headers={"Cache-Control": "max-age=60"})


@router.get("/s/{slug}/recording/{position}.{extension}", include_in_schema=False)
async def recording(slug: str, position: int, extension: str, service: Service) -> FileResponse:
    if extension not in RECORDING_TYPES:
        raise NotFound("no such recording")
    name, media_type = RECORDING_TYPES[extension]
    path = await service.public.file(slug, position, name)
    return FileResponse(path, media_type=media_type, filename=f"{slug}-{position}.{extension}")
