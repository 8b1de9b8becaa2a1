"""Grants, as pure functions (the audit trail's are in test_audit.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
import pytest

from summitry.domain.errors import NotAuthenticated
from summitry.domain.model import Role
from summitry.security import grants

SECRET = b"k" * 48
NOW = datetime(2021, 12, 7, 12, tzinfo=UTC)
GRANT = grants.Grant(
    "summit-1", "p-1", "side-ru", Role.COORDINATOR, "g-1", NOW + timedelta(hours=3)
)


def test_a_grant_reads_back_as_issued() -> None:
    assert grants.read(grants.issue(GRANT, SECRET), SECRET, NOW) == GRANT


def test_expired_grant_is_refused() -> None:
    token = grants.issue(GRANT, SECRET)
    with pytest.raises(NotAuthenticated, match="expired"):
        grants.read(token, SECRET, NOW + timedelta(hours=3))


@pytest.mark.parametrize(
    "token",
    [
        "not-a-token",
        grants.issue(GRANT, b"another secret entirely, 48 bytes long........."),
        jwt.encode({"sub": "p-1", "aud": "summitry", "jti": "g", "exp": 2**40}, "y" * 40, "HS256"),
        jwt.encode({"sub": "p-1", "aud": "summitry", "jti": "g", "exp": 2**40}, None, "none"),
    ],
)
def test_forged_grants_are_refused(token: str) -> None:
    with pytest.raises(NotAuthenticated, match="not valid"):
        grants.read(token, SECRET, NOW)


def test_grant_with_unknown_role_is_refused() -> None:
    token = jwt.encode(
        {
            "sub": "p",
            "aud": "summitry",
            "jti": "g",
            "exp": 2**40,
            "summit": "s",
            "side": "x",
            "role": "emperor",
        },
        SECRET,
        "HS256",
    )
    with pytest.raises(NotAuthenticated, match="incomplete"):
        grants.read(token, SECRET, NOW)
