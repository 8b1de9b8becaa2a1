"""Media endpoints: WHIP for publishing (RFC 9725) and the room subscription, a
server-offer exchange because the Janus VideoRoom always makes the subscriber's offer."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from summitry.control.media import Feed, Offered
from summitry.control.views import IceServersView
from summitry.domain.errors import BadDescription, InvalidInput
from summitry.domain.sdp import MAX_SDP_BYTES
from summitry.web.api import Caller, Operator, Service
from summitry.web.errors import declared

router = APIRouter(prefix="/api/v1/summits/{summit_id}")
preflight_router = APIRouter(prefix="/api/v1/preflight")

SDP = "application/sdp"
TRICKLE = "application/trickle-ice-sdpfrag"
SDP_BODY = {"content": {SDP: {"schema": {"type": "string"}}}}


async def text_body(request: Request, media_type: str) -> str:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != media_type:
        raise InvalidInput(
            f"the body must be {media_type}, not {content_type or 'missing'}", field="content-type"
        )
    raw = await request.body()
    if len(raw) > MAX_SDP_BYTES:
        raise BadDescription(f"the body is larger than {MAX_SDP_BYTES} bytes", field="sdp")
    try:
        return raw.decode()
    except UnicodeDecodeError as error:
        raise BadDescription("the body is not UTF-8 text", field="sdp") from error


class FeedOut(BaseModel):
    feed_id: int
    participant_id: str
    name: str
    side_id: str
    role: str
    audio: bool
    video: bool


def feed_out(feed: Feed) -> FeedOut:
    publisher = feed.publisher
    return FeedOut(
        feed_id=feed.feed_id,
        participant_id=publisher.participant_id,
        name=publisher.name,
        side_id=publisher.side_id,
        role=publisher.role,
        audio=feed.audio,
        video=feed.video,
    )


class StreamOut(BaseModel):
    mid: str
    feed_id: int
    kind: str


class SubscriptionOut(BaseModel):
    id: str
    offer: str | None = Field(description="Janus's offer to answer, when the feeds changed")
    feeds: list[FeedOut]
    streams: list[StreamOut] = Field(description="Which feed each media section carries")


def subscription_out(offered: Offered) -> SubscriptionOut:
    return SubscriptionOut(
        id=offered.resource_id,
        offer=offered.offer,
        feeds=[feed_out(feed) for feed in offered.feeds],
        streams=[StreamOut(mid=s.mid, feed_id=s.feed_id, kind=s.kind) for s in offered.streams],
    )


class MediaStateIn(BaseModel):
    audio: bool
    video: bool


class AnswerIn(BaseModel):
    sdp: str = Field(max_length=MAX_SDP_BYTES)


@router.post(
    "/whip",
    status_code=201,
    response_class=Response,
    openapi_extra={"requestBody": {"required": True, **SDP_BODY}},
    responses={201: {"description": "The SDP answer; Location names the resource", **SDP_BODY}},
)
async def whip_publish(
    summit_id: str, request: Request, caller: Caller, service: Service
) -> Response:
    """WHIP: POST an SDP offer, get the answer and the resource to PATCH or DELETE."""
    offer = await text_body(request, SDP)
    published = await service.call.publish(caller, summit_id, offer)
    location = f"/api/v1/summits/{summit_id}/whip/{published.resource_id}"
    headers = {"Location": location, "ETag": f'"{published.resource_id}"'}
    headers |= ice_headers(await service.call.ice_servers(caller, summit_id))
    return Response(published.answer, 201, media_type=SDP, headers=headers)


@router.options("/whip", status_code=204, response_class=Response)
async def whip_ice_servers(summit_id: str, caller: Caller, service: Service) -> Response:
    """The ICE servers before the offer (RFC 9725, section 4.6), for WHIP clients that
    cannot take new ones once their offer is made."""
    headers = {"Allow": "OPTIONS, POST"}
    headers |= ice_headers(await service.call.ice_servers(caller, summit_id))
    return Response(status_code=204, headers=headers)


@preflight_router.post(
    "/media",
    status_code=201,
    response_class=Response,
    openapi_extra={"requestBody": {"required": True, **SDP_BODY}},
    responses={
        201: {"description": "Janus's answer, with its candidates", **SDP_BODY},
        **declared(401, 403),
    },
)
async def preflight_media(request: Request, service: Service, _: Operator) -> Response:
    """For `summitry check`: offer one audio stream, get Janus's answer and run ICE
    against its candidates; what Janus set up for it goes away after 30 s."""
    answer = await service.call.preflight(await text_body(request, SDP))
    return Response(answer, 201, media_type=SDP)


def ice_headers(servers: IceServersView) -> dict[str, str]:
    """The ICE servers as WHIP and WHEP clients read them (RFC 9725, section 4.6): a
    `Link` header, none when there are no servers."""
    links = ", ".join(
        f'<{url}>; rel="ice-server"; username="{server.username}"; '
        f'credential="{server.credential}"; credential-type="password"'
        for server in servers.ice_servers
        for url in server.urls
    )
    return {"Link": links} if links else {}


@router.get("/ice-servers", response_model=IceServersView)
async def ice_servers(summit_id: str, caller: Caller, service: Service) -> IceServersView:
    """TURN servers for your browser, with a credential that lasts the summit (a few
    hours at most); empty when the server runs no TURN."""
    return await service.call.ice_servers(caller, summit_id)


@router.patch(
    "/whip/{resource_id}",
    status_code=204,
    response_class=Response,
    openapi_extra={
        "requestBody": {"required": True, "content": {TRICKLE: {"schema": {"type": "string"}}}}
    },
)
async def whip_trickle(
    summit_id: str, resource_id: str, request: Request, caller: Caller, service: Service
) -> Response:
    """Trickle ICE candidates (RFC 8840 fragment) to a WHIP resource."""
    fragment = await text_body(request, TRICKLE)
    await service.call.trickle(caller, summit_id, resource_id, fragment)
    return Response(status_code=204)


@router.delete("/whip/{resource_id}", response_class=Response)
async def whip_delete(
    summit_id: str, resource_id: str, caller: Caller, service: Service
) -> Response:
    await service.call.leave(caller, summit_id, resource_id)
    return Response(status_code=200)


@router.get("/feeds", response_model=list[FeedOut])
async def list_feeds(summit_id: str, caller: Caller, service: Service) -> list[FeedOut]:
    """Who is publishing in the room now."""
    return [feed_out(feed) for feed in await service.call.feeds(caller, summit_id)]


@router.post("/subscriptions", status_code=201, response_model=SubscriptionOut)
async def subscribe(summit_id: str, caller: Caller, service: Service) -> SubscriptionOut:
    """One subscription carries every feed the caller may see. The answer holds Janus's
    offer (null while nobody else publishes); send your answer to .../answer, and call
    .../sync whenever the summit's event stream says the feeds changed."""
    return subscription_out(await service.call.subscribe(caller, summit_id))


@router.post("/subscriptions/{resource_id}/answer", status_code=204, response_class=Response)
async def answer(
    summit_id: str, resource_id: str, body: AnswerIn, caller: Caller, service: Service
) -> Response:
    await service.call.answer(caller, summit_id, resource_id, body.sdp)
    return Response(status_code=204)


@router.post("/subscriptions/{resource_id}/sync", response_model=SubscriptionOut)
async def sync(
    summit_id: str, resource_id: str, caller: Caller, service: Service
) -> SubscriptionOut:
    return subscription_out(await service.call.sync(caller, summit_id, resource_id))


LAYER = {"low": 0, "medium": 1, "high": 2}


class LayerIn(BaseModel):
    feed_id: int
    layer: Literal["low", "medium", "high"]


class LayersIn(BaseModel):
    layers: list[LayerIn] = Field(max_length=64)


@router.put(
    "/subscriptions/{resource_id}/layers",
    status_code=204,
    response_class=Response,
    responses=declared(401, 403, 404, 409),
)
async def choose_layers(
    summit_id: str, resource_id: str, body: LayersIn, caller: Caller, service: Service
) -> Response:
    """Which simulcast layer of each feed's video to receive (a browser on a poor path
    steps down instead of freezing); Janus switches at the next key frame."""
    layers = {chosen.feed_id: LAYER[chosen.layer] for chosen in body.layers}
    await service.call.choose_layers(caller, summit_id, resource_id, layers)
    return Response(status_code=204)


class OnAirIn(BaseModel):
    participant_id: str | None = Field(
        default=None, max_length=32, description="Someone of your side; null for the default"
    )


@router.get("/on-air", response_model=dict[str, str | None])
async def on_air(summit_id: str, caller: Caller, service: Service) -> dict[str, str | None]:
    """While live: side id -> the participant each side has on air."""
    return await service.call.on_air(caller, summit_id)


@router.put("/on-air", response_model=dict[str, str | None])
async def choose_on_air(
    summit_id: str, body: OnAirIn, caller: Caller, service: Service
) -> dict[str, str | None]:
    """A coordinator chooses who appears for their side in the broadcast (by default the
    principal, else whoever speaks for them)."""
    return await service.call.choose_on_air(caller, summit_id, body.participant_id)


@router.put("/media-state", status_code=204, response_class=Response)
async def media_state(
    summit_id: str, body: MediaStateIn, caller: Caller, service: Service
) -> Response:
    """Tell the room that your microphone or camera is off (or on again)."""
    await service.call.set_media_state(caller, summit_id, body.audio, body.video)
    return Response(status_code=204)


@router.delete("/subscriptions/{resource_id}", response_class=Response)
async def unsubscribe(
    summit_id: str, resource_id: str, caller: Caller, service: Service
) -> Response:
    await service.call.leave(caller, summit_id, resource_id)
    return Response(status_code=200)
