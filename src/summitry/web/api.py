"""The REST API under /api/v1. Every route checks the caller's grant first."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse

from summitry import __version__
from summitry.control.services import Services
from summitry.control.views import (
    IceServersView,
    Invite,
    ParticipantView,
    PublicView,
    ReadoutView,
    SummitView,
)
from summitry.domain.errors import InvalidInput, NotAuthenticated, NotIssuedHere, NotPermitted
from summitry.security import grants
from summitry.security.grants import Grant
from summitry.web import sse
from summitry.web.errors import TooManyFailures, declared
from summitry.web.limits import FailedCredentials, client_address
from summitry.web.schemas import (
    ActionIn,
    AuditHeadOut,
    AuditOut,
    AuditProblemOut,
    AuditRecordOut,
    Health,
    InvitationOut,
    Me,
    ParticipantIn,
    ReadoutIn,
    ReceiptOut,
    SummitCreated,
    SummitIn,
    TicketOut,
)

router = APIRouter(prefix="/api/v1")
ZoneQuery = Annotated[
    str | None, Query(max_length=64, description="The viewer's IANA zone, e.g. Asia/Tokyo")
]


def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


Service = Annotated[Services, Depends(services)]


def bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def is_operator(request: Request, token: str | None) -> bool:
    expected: str = request.app.state.config.operator_token
    return token is not None and hmac.compare_digest(token.encode(), expected.encode())


def failed_credentials(request: Request) -> FailedCredentials:
    guesses: FailedCredentials = request.app.state.failed_credentials
    return guesses


async def operator(request: Request, service: Service) -> None:
    token = bearer(request)
    if token is None:
        raise NotAuthenticated("this needs the operator's token")
    guesses = failed_credentials(request)
    if wait := guesses.stopped("operator", request.scope):
        raise TooManyFailures(wait)
    if is_operator(request, token):
        return
    try:
        await service.catalog.authenticate(token, grants.AUDIENCE)  # a participant: 403
    except NotIssuedHere:
        guesses.failed("operator", request.scope)
    except NotAuthenticated:
        pass  # a participant's lapsed grant: no guess
    raise NotPermitted("only the operator may do this")


async def grant(request: Request, service: Service) -> Grant:
    token = bearer(request)
    if token is None:
        raise NotAuthenticated("this needs the grant from your invitation link")
    return await authenticate(request, service, token, grants.AUDIENCE)


async def authenticate(
    request: Request, service: Service, token: str, audience: str, *, counts: bool = True
) -> Grant:
    """The grant `token` carries. One never issued here counts as a guess from the
    caller's address unless `counts` is False (a credential any web page can send)."""
    try:
        return await service.catalog.authenticate(token, audience)
    except NotIssuedHere:
        if counts:
            failed_credentials(request).failed("grant", request.scope)
        raise


async def events_caller(request: Request, service: Service) -> Grant:
    """The event stream's caller: a grant in the header, or (for `EventSource`, which
    cannot send one) a ticket in the query. A bad ticket costs nothing: any web page can
    make a browser ask for this URL (an `<img>` does), so counting it would let any page
    lock out whoever shares the browser's address."""
    ticket = request.query_params.get("ticket")
    if ticket is None:
        return await grant(request, service)
    return await authenticate(request, service, ticket, grants.EVENTS_AUDIENCE, counts=False)


Operator = Annotated[None, Depends(operator)]
Caller = Annotated[Grant, Depends(grant)]


@router.get("/preflight/ice-servers", response_model=IceServersView)
async def preflight_ice_servers(service: Service, _: Operator) -> IceServersView:
    """For `summitry check`: the TURN servers, with a credential that lasts ten minutes."""
    return service.call.preflight_ice_servers()


@router.get("/health", response_model=Health)
async def health(service: Service) -> Health:
    media = service.media
    if media is None:
        return Health(status="ok", version=__version__, media="off", media_generation=0)
    return Health(
        status="ok",
        version=__version__,
        media="up" if media.connected else "down",
        media_generation=media.generation,
    )


@router.post("/summits", status_code=201, response_model=SummitCreated)
async def create_summit(body: SummitIn, service: Service, _: Operator) -> SummitCreated:
    summit, invites = await service.catalog.create(body.draft())
    return SummitCreated(summit=summit, coordinator_invites=invites)


@router.get("/summits", response_model=list[SummitView])
async def list_summits(service: Service, _: Operator) -> list[SummitView]:
    return await service.catalog.list_all()


@router.get("/summits/{summit_id}", response_model=SummitView)
async def get_summit(
    summit_id: str, request: Request, service: Service, tz: ZoneQuery = None
) -> SummitView:
    token = bearer(request)
    if not is_operator(request, token):
        caller = await grant(request, service)
        if caller.summit_id != summit_id:
            raise NotPermitted("your invitation is for another summit")
    return await service.catalog.get(summit_id, tz)


@router.get("/me", response_model=Me)
async def me(caller: Caller, service: Service) -> Me:
    people = await service.roster.participants(caller, caller.summit_id)
    person = next(p for p in people if p.id == caller.participant_id)
    return Me(
        summit_id=caller.summit_id,
        participant=person,
        side_id=caller.side_id,
        role=caller.role,
        expires_at=caller.expires_at,
    )


@router.get("/summits/{summit_id}/participants", response_model=list[ParticipantView])
async def list_participants(
    summit_id: str, caller: Caller, service: Service
) -> list[ParticipantView]:
    return await service.roster.participants(caller, summit_id)


@router.post("/summits/{summit_id}/participants", status_code=201, response_model=Invite)
async def invite(summit_id: str, body: ParticipantIn, caller: Caller, service: Service) -> Invite:
    return await service.roster.invite(caller, summit_id, body.name, body.role, body.side_id)


@router.delete("/summits/{summit_id}/participants/{participant_id}", response_model=ParticipantView)
async def remove(
    summit_id: str, participant_id: str, caller: Caller, service: Service
) -> ParticipantView:
    return await service.roster.remove(caller, summit_id, participant_id)


@router.get(
    "/summits/{summit_id}/participants/{participant_id}/invitation", response_model=InvitationOut
)
async def invitation(
    summit_id: str, participant_id: str, request: Request, caller: Caller, service: Service
) -> InvitationOut:
    invite, _ = await service.roster.invitation(caller, summit_id, participant_id)
    ics_url = str(
        request.url_for("invitation_ics", summit_id=summit_id, participant_id=participant_id)
    )
    return InvitationOut(link=invite.link, ics_url=ics_url, participant=invite.participant)


@router.post(
    "/summits/{summit_id}/participants/{participant_id}/invitation",
    status_code=201,
    response_model=Invite,
    responses=declared(401, 403, 404, 409),
)
async def reissue_invitation(
    summit_id: str, participant_id: str, caller: Caller, service: Service
) -> Invite:
    """A new link for someone of your side (or yourself): the old one stops working."""
    return await service.roster.reissue(caller, summit_id, participant_id)


@router.get(
    "/summits/{summit_id}/participants/{participant_id}/invitation.ics",
    response_class=Response,
    responses={200: {"content": {"text/calendar": {}}}},
)
async def invitation_ics(
    summit_id: str, participant_id: str, caller: Caller, service: Service
) -> Response:
    _, ics = await service.roster.invitation(caller, summit_id, participant_id)
    return Response(
        ics,
        media_type="text/calendar; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="summit-{summit_id}.ics"'},
    )


@router.post("/summits/{summit_id}/lobby", response_model=ParticipantView)
async def knock(summit_id: str, caller: Caller, service: Service) -> ParticipantView:
    """Arrive: coordinators are in at once, everyone else waits to be admitted."""
    return await service.roster.knock(caller, summit_id)


@router.post("/summits/{summit_id}/leave", response_model=ParticipantView)
async def leave(summit_id: str, caller: Caller, service: Service) -> ParticipantView:
    return await service.roster.leave(caller, summit_id)


@router.post(
    "/summits/{summit_id}/participants/{participant_id}/admit", response_model=ParticipantView
)
async def admit(
    summit_id: str, participant_id: str, caller: Caller, service: Service
) -> ParticipantView:
    return await service.roster.admit(caller, summit_id, participant_id)


@router.post(
    "/summits/{summit_id}/participants/{participant_id}/deny", response_model=ParticipantView
)
async def deny(
    summit_id: str, participant_id: str, caller: Caller, service: Service
) -> ParticipantView:
    return await service.roster.deny(caller, summit_id, participant_id)


@router.post("/summits/{summit_id}/actions/{action}", response_model=SummitView)
async def act(
    summit_id: str, action: str, caller: Caller, service: Service, body: ActionIn | None = None
) -> SummitView:
    """A coordinator's phase action: open_lobby, consent, skip_public, cut, end or cancel.
    Give the version you decided on: if the summit moved since, the answer is 409."""
    return await service.phases.act(caller, summit_id, action, body.version if body else None)


@router.post("/summits/{summit_id}/heartbeat", status_code=204, response_class=Response)
async def heartbeat(summit_id: str, caller: Caller, service: Service) -> Response:
    """A coordinator's console reports in every few seconds; while the summit is live,
    a console silent for 10 s is a lost control connection and the broadcast is cut."""
    await service.phases.heartbeat(caller, summit_id)
    return Response(status_code=204)


@router.get("/summits/{summit_id}/readouts", response_model=list[ReadoutView])
async def readouts(summit_id: str, caller: Caller, service: Service) -> list[ReadoutView]:
    return await service.readouts.of(caller, summit_id)


@router.put("/summits/{summit_id}/readout", status_code=201, response_model=ReadoutView)
async def publish_readout(
    summit_id: str, body: ReadoutIn, caller: Caller, service: Service
) -> ReadoutView:
    """Your side's statement, or an explicit "no statement"; optionally under embargo."""
    if body.no_statement == (body.statement is not None):
        raise InvalidInput("give either a statement or no_statement: true", field="statement")
    return await service.readouts.publish(caller, summit_id, body.statement, body.embargo_until)


@router.post("/summits/{summit_id}/events/tickets", status_code=201, response_model=TicketOut)
async def events_ticket(summit_id: str, caller: Caller, service: Service) -> TicketOut:
    """A ticket for `GET …/events?ticket=`, good for a minute."""
    ticket, expires_at = service.catalog.events_ticket(caller, summit_id)
    return TicketOut(ticket=ticket, expires_at=expires_at)


@router.get("/summits/{summit_id}/events")
async def summit_events(
    summit_id: str,
    request: Request,
    caller: Annotated[Grant, Depends(events_caller)],
    service: Service,
) -> StreamingResponse:
    """Server-Sent Events: phase and roster changes of the summit. The credential is the
    grant in the header or a ticket: `?ticket=` from `POST …/events/tickets`."""
    if caller.summit_id != summit_id:
        raise NotPermitted("your invitation is for another summit")
    return sse.stream(
        request,
        service.hub,
        summit_id,
        await service.catalog.phase_event(summit_id),
        public=False,
        slots=request.app.state.participant_streams,
        holder=caller.participant_id,
        participant_id=caller.participant_id,
        reads_talks=await service.roster.reads_the_talks(caller, summit_id),
    )


@router.get(
    "/summits/{summit_id}/audit", response_model=AuditOut, responses=declared(401, 403, 404)
)
async def audit_trail(summit_id: str, service: Service, _: Operator) -> AuditOut:
    """The trail and every check of it: its chain, its signatures and the summit's head."""
    checked = await service.audit.check(summit_id)
    verdict = checked.verdict
    first = verdict.problems[0] if verdict.problems else None
    return AuditOut(
        ok=verdict.ok,
        records=verdict.records,
        public_key=checked.public_key,
        head=AuditHeadOut(seq=checked.head.seq, hash=checked.head.hash),
        chain_ok=verdict.holds("chain"),
        signatures_ok=verdict.holds("signature"),
        head_ok=verdict.holds("head"),
        broken_seq=first.seq if first else None,
        problem=first.message if first else None,
        problems=[
            AuditProblemOut(check=p.check, seq=p.seq, message=p.message) for p in verdict.problems
        ],
        trail=[
            AuditRecordOut(
                seq=e.seq,
                at=e.at,
                actor=e.actor,
                action=e.action,
                details=dict(e.details),
                hash=e.hash,
                signature=e.signature,
            )
            for e in checked.entries
        ],
    )


@router.get(
    "/summits/{summit_id}/audit/receipt",
    response_model=ReceiptOut,
    responses=declared(401, 403, 404, 409),
)
async def audit_receipt(summit_id: str, caller: Caller, service: Service) -> ReceiptOut:
    """A coordinator's receipt of the audit trail's head, signed by the server: keep it,
    and `summitry audit verify` finds any later rewrite, truncation or emptying."""
    receipt = await service.audit.receipt(caller, summit_id)
    return ReceiptOut(**receipt.document())


@router.get("/public/{slug}", response_model=PublicView)
async def public_summit(slug: str, service: Service, tz: ZoneQuery = None) -> PublicView:
    """What the public may see of a summit: no people, no ids, no private state."""
    return await service.public.view(slug, tz)


@router.get("/public/{slug}/events")
async def public_events(slug: str, request: Request, service: Service) -> StreamingResponse:
    summit_id = await service.public.summit_id_for(slug)
    return sse.stream(
        request,
        service.hub,
        summit_id,
        await service.catalog.phase_event(summit_id),
        public=True,
        slots=request.app.state.public_streams,
        holder=client_address(request.scope),
    )
