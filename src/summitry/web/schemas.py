"""Request and response bodies of the REST API (the OpenAPI document is built from them)."""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field

from summitry.control.views import Invite, ParticipantView, SummitView
from summitry.domain.model import GoLiveConsent, Role, SideDraft, SummitDraft


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CoordinatorIn(Strict):
    name: str = Field(max_length=120)


class SideIn(Strict):
    name: str = Field(max_length=120, examples=["Russian Federation"])
    time_zone: str = Field(max_length=64, examples=["Europe/Moscow"])
    coordinator: CoordinatorIn


class SummitIn(Strict):
    title: str = Field(max_length=200, examples=["Russia – United States video summit"])
    agenda: str = Field(default="", max_length=4000)
    starts_at: datetime = Field(
        description="An instant with its UTC offset, e.g. 2021-12-07T15:00:00Z"
    )
    planned_minutes: int = Field(ge=1, le=24 * 60)
    public_minutes: int = Field(
        default=0, ge=0, le=24 * 60, description="Length of the broadcast part; 0 for none"
    )
    go_live_consent: GoLiveConsent = GoLiveConsent.BOTH
    lobby_minutes: int = Field(
        default=30, ge=0, le=24 * 60, description="The lobby opens this long before the start"
    )
    end_grace_minutes: int = Field(default=5, ge=0, le=24 * 60)
    sides: list[SideIn] = Field(max_length=8)

    def draft(self) -> SummitDraft:
        return SummitDraft(
            title=self.title,
            agenda=self.agenda,
            starts_at=self.starts_at,
            planned_length=timedelta(minutes=self.planned_minutes),
            public_length=timedelta(minutes=self.public_minutes),
            sides=tuple(SideDraft(s.name, s.time_zone, s.coordinator.name) for s in self.sides),
            go_live_consent=self.go_live_consent,
            lobby_lead=timedelta(minutes=self.lobby_minutes),
            end_grace=timedelta(minutes=self.end_grace_minutes),
        )


class SummitCreated(BaseModel):
    summit: SummitView
    coordinator_invites: list[Invite]


class ParticipantIn(Strict):
    name: str = Field(max_length=120)
    role: Role
    side_id: str | None = Field(
        default=None, max_length=32, description="Defaults to the coordinator's own side"
    )


class ActionIn(Strict):
    version: int | None = Field(
        default=None, ge=0, description="The summit version the action was decided on"
    )


class ReadoutIn(Strict):
    statement: str | None = Field(default=None, max_length=20_000)
    no_statement: bool = False
    embargo_until: datetime | None = None


class Me(BaseModel):
    summit_id: str
    participant: ParticipantView
    side_id: str
    role: Role
    expires_at: datetime


class TicketOut(BaseModel):
    ticket: str
    expires_at: datetime


class InvitationOut(BaseModel):
    link: str
    ics_url: str
    participant: ParticipantView


class ErrorOut(BaseModel):
    """Every error's body (`web/errors.py`)."""

    error: str = Field(examples=["forbidden"])
    message: str
    field: str | None = Field(default=None, description="The input at fault, if one is")


class AuditRecordOut(BaseModel):
    seq: int
    at: datetime
    actor: str
    action: str
    details: dict[str, object]
    hash: str
    signature: str | None = Field(description="Ed25519 over the hash, base64url; none if unsigned")


class AuditHeadOut(BaseModel):
    seq: int = Field(description="The newest record's number, as the summit's row keeps it")
    hash: str


class AuditProblemOut(BaseModel):
    check: str = Field(description="chain, signature, head or receipt")
    seq: int
    message: str


class AuditOut(BaseModel):
    ok: bool = Field(description="Every check holds")
    records: int
    public_key: str = Field(description="The Ed25519 key that signs the trail: raw, base64url")
    head: AuditHeadOut
    chain_ok: bool = Field(description="Numbering, links and hashes hold from the first record")
    signatures_ok: bool = Field(description="Every record is signed with the server's key")
    head_ok: bool = Field(description="The trail's last record is the head the summit keeps")
    broken_seq: int | None = Field(description="The record of the first problem")
    problem: str | None = Field(description="The first problem")
    problems: list[AuditProblemOut] = Field(description="The first problem of each check")
    trail: list[AuditRecordOut]


class ReceiptOut(BaseModel):
    """The head of a summit's audit trail signed by the server, for a coordinator to keep:
    `summitry audit verify SUMMIT --receipt FILE` then refuses any trail that no longer
    holds record `seq` with this hash. The signature is Ed25519 over
    `"summitry audit receipt\n"` followed by the JSON of `at`, `hash`, `seq` and `summit`
    (keys sorted, no white space, UTF-8)."""

    summit: str
    seq: int
    hash: str
    at: str = Field(description="The time of record `seq`, ISO 8601, exactly as signed")
    signature: str = Field(description="Ed25519, base64url")
    public_key: str = Field(description="The server's audit key: raw, base64url")


class Health(BaseModel):
    status: str
    version: str
    media: str = Field(description="up, down (restarting) or off")
    media_generation: int = Field(description="Counts media server (re)connections")
