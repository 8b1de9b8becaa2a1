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


class AuditRecordOut(BaseModel):
    seq: int
    at: datetime
    actor: str
    action: str
    details: dict[str, object]
    hash: str


class AuditOut(BaseModel):
    ok: bool
    records: int
    broken_seq: int | None
    problem: str | None
    trail: list[AuditRecordOut]


class Health(BaseModel):
    status: str
    version: str
    media: str = Field(description="up, down (restarting) or off")
    media_generation: int = Field(description="Counts media server (re)connections")
