"""The key exchange of the private phase's end-to-end encryption. The server relays
public keys and wrapped media keys between the browsers; it never sees a media key."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from pydantic import Field

from summitry.control.views import KeyExchangeView
from summitry.domain.e2ee import MAX_EPOCH
from summitry.security.grants import Grant
from summitry.web.api import Caller, Service
from summitry.web.errors import Throttled, declared
from summitry.web.limits import Buckets
from summitry.web.schemas import Strict

router = APIRouter(prefix="/api/v1/summits/{summit_id}/e2ee", tags=["end-to-end encryption"])

MAX_MEMBERS = 200
Participant = str
Base64Url = str


class PublicKeyIn(Strict):
    public_key: Base64Url = Field(
        max_length=100, description="The browser's ECDH P-256 public key, raw, base64url"
    )


class WrappedKeysIn(Strict):
    epoch: int = Field(ge=1, le=MAX_EPOCH)
    wraps: dict[Participant, Base64Url] = Field(
        max_length=MAX_MEMBERS,
        description="Recipient participant id -> the media key wrapped for their public key",
    )


class EpochIn(Strict):
    epoch: int = Field(ge=1, le=MAX_EPOCH)


async def key_changer(request: Request, caller: Caller) -> Grant:
    """A caller whose browser changes the key exchange (a new public key, a key it could
    not open): each may force a new media key for everyone and writes the audit trail,
    so one grant gets a bucket of them (`KEY_CHANGE_BURST`, one more every 10 s)."""
    changes: Buckets = request.app.state.key_changes
    if seconds := changes.refusal(caller.participant_id):
        message = f"your browser changed its keys too often; try again in {seconds} s"
        raise Throttled(seconds, message)
    return caller


KeyChanger = Annotated[Grant, Depends(key_changer)]


@router.get("", response_model=KeyExchangeView)
async def key_exchange(summit_id: str, caller: Caller, service: Service) -> KeyExchangeView:
    return await service.keys.view(caller, summit_id)


@router.put("/public-key", status_code=204, response_class=Response)
async def post_public_key(
    summit_id: str, body: PublicKeyIn, caller: KeyChanger, service: Service
) -> Response:
    await service.keys.post_public_key(caller, summit_id, body.public_key)
    return Response(status_code=204)


@router.post("/epochs", status_code=204, response_class=Response)
async def make_key(
    summit_id: str, body: WrappedKeysIn, caller: Caller, service: Service
) -> Response:
    await service.keys.make_key(caller, summit_id, body.epoch, body.wraps)
    return Response(status_code=204)


@router.post(
    "/key-changes/{participant_id}/acceptance",
    status_code=204,
    response_class=Response,
    responses=declared(401, 403, 404, 409),
)
async def accept_key_change(
    summit_id: str, participant_id: str, body: PublicKeyIn, caller: Caller, service: Service
) -> Response:
    """A coordinator accepts another participant's new public key, as their screen shows
    it (409 if it changed again since, or none waits; 403 for your own)."""
    await service.keys.accept_key_change(caller, summit_id, participant_id, body.public_key)
    return Response(status_code=204)


@router.post(
    "/failures", status_code=204, response_class=Response, responses=declared(401, 403, 404, 409)
)
async def report_failure(
    summit_id: str, body: EpochIn, caller: KeyChanger, service: Service
) -> Response:
    """Your browser could not open the key of `epoch` wrapped for it: the wrap is taken
    back, and the next key is made for you too (409 if none was wrapped for your key, or
    you confirmed it)."""
    await service.keys.report_failure(caller, summit_id, body.epoch)
    return Response(status_code=204)


@router.post("/confirmations", status_code=204, response_class=Response)
async def confirm_key(summit_id: str, body: EpochIn, caller: Caller, service: Service) -> Response:
    await service.keys.confirm_key(caller, summit_id, body.epoch)
    return Response(status_code=204)
