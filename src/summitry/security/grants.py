"""Signed, expiring capabilities. A grant names a summit, a participant, a side and a
role; invitation links carry it. A grant is only as good as its participant: it is
bound to the participant's current grant id, so revoking or re-issuing one kills the
old link at once.

An event-stream ticket is the same grant for one minute and one purpose: opening the event
stream, whose credential must travel in the URL (`EventSource` sends no headers). URLs end
up in logs; the invitation link's grant never goes into one."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import jwt

from summitry.domain.errors import NotAuthenticated, NotIssuedHere
from summitry.domain.model import Role

ALGORITHM = "HS256"
AUDIENCE = "summitry"
EVENTS_AUDIENCE = "summitry-events"
EVENTS_TICKET_LIFETIME = timedelta(minutes=1)
# What each audience is, for the caller who brought the wrong one.
NAMES = {
    AUDIENCE: "the grant of an invitation link",
    EVENTS_AUDIENCE: "an event-stream ticket (POST /api/v1/summits/{id}/events/tickets)",
}
EXPIRED = {
    AUDIENCE: "this invitation link has expired; ask your coordinator for a new one",
    EVENTS_AUDIENCE: "this event-stream ticket has expired; ask for a new one",
}


@dataclass(frozen=True)
class Grant:
    summit_id: str
    participant_id: str
    side_id: str
    role: Role
    grant_id: str
    expires_at: datetime
    # An event-stream ticket's own id: the stream it opens is the only one it opens.
    once: str | None = None


def new_grant_id() -> str:
    return secrets.token_urlsafe(12)


def issue(grant: Grant, secret: bytes, audience: str = AUDIENCE) -> str:
    claims = {
        "aud": audience,
        "sub": grant.participant_id,
        "summit": grant.summit_id,
        "side": grant.side_id,
        "role": grant.role.value,
        "jti": grant.grant_id,
        "exp": int(grant.expires_at.timestamp()),
    }
    if grant.once is not None:
        claims["once"] = grant.once
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def events_ticket(grant: Grant, secret: bytes, now: datetime) -> tuple[str, datetime]:
    expires_at = min(grant.expires_at, now + EVENTS_TICKET_LIFETIME)
    ticket = replace(grant, expires_at=expires_at, once=secrets.token_urlsafe(12))
    return issue(ticket, secret, EVENTS_AUDIENCE), expires_at


def read(token: str, secret: bytes, now: datetime, audience: str = AUDIENCE) -> Grant:
    """The grant `token` carries, or NotAuthenticated saying why it is refused."""
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            audience=audience,
            options={"verify_exp": False, "require": ["exp", "sub", "jti", "aud"]},
        )
    except jwt.InvalidAudienceError as error:  # signed here, for another use
        raise NotAuthenticated(f"this needs {NAMES[audience]}, not another credential") from error
    except jwt.InvalidTokenError as error:
        raise NotIssuedHere("this invitation link is not valid (it was not issued here)") from error
    try:
        grant = Grant(
            summit_id=str(claims["summit"]),
            participant_id=str(claims["sub"]),
            side_id=str(claims["side"]),
            role=Role(claims["role"]),
            grant_id=str(claims["jti"]),
            expires_at=datetime.fromtimestamp(int(claims["exp"]), tz=now.tzinfo),
            once=str(claims["once"]) if "once" in claims else None,
        )
    except (KeyError, ValueError, TypeError, OverflowError, OSError) as error:
        raise NotAuthenticated("this invitation link is not valid (incomplete)") from error
    if grant.expires_at <= now:
        raise NotAuthenticated(EXPIRED[audience])
    return grant


def lifetime_for(summit_ends_at: datetime, now: datetime) -> datetime:
    """Invitations expire a day after the summit's planned end, and never sooner than a day."""
    return max(summit_ends_at, now) + timedelta(days=1)
