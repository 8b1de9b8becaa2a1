"""Time-limited TURN credentials (the TURN REST API that coturn's `use-auth-secret`
checks): username `<expiry>:<participant>`, password base64(HMAC-SHA1(secret, username)).
The secret stays on the server; a credential is good until its expiry, for anyone who
holds it, so it is handed only to who may join, for no longer than they need."""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta

# The longest a credential lasts, whatever the summit: a leaked one soon dies.
LONGEST = timedelta(hours=4)
# A public viewer's, issued only while the summit is live: the public part's planned end
# and a quarter of an hour, two hours at most.
VIEWER_OVERRUN = timedelta(minutes=15)
VIEWER_LONGEST = timedelta(hours=2)


@dataclass(frozen=True)
class TurnRelay:
    """The TURN servers callers are sent to, and the secret their credentials come from."""

    urls: tuple[str, ...]
    secret: str


@dataclass(frozen=True)
class TurnCredential:
    username: str
    password: str
    expires_at: datetime


def credential(secret: str, holder: str, expires_at: datetime) -> TurnCredential:
    """What coturn accepts until `expires_at` (to the second) from `holder`."""
    username = f"{int(expires_at.timestamp())}:{holder}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return TurnCredential(username, base64.b64encode(digest).decode(), expires_at)


# Talks run over: a participant's credential lasts an hour past the planned end.
OVERRUN = timedelta(hours=1)


def expiry(
    until: datetime,
    now: datetime,
    longest: timedelta = LONGEST,
    overrun: timedelta = OVERRUN,
) -> datetime:
    """When a credential issued `now` for something planned to last `until` expires:
    `overrun` after that (from now at least), and never later than `longest` from now."""
    return min(max(until, now) + overrun, now + longest)
