"""Grants and the audit chain, as pure functions."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from summitry.domain.errors import NotAuthenticated
from summitry.domain.model import Role
from summitry.security import audit, grants

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


def chain(count: int) -> list[audit.AuditEntry]:
    entries: list[audit.AuditEntry] = []
    prev = audit.GENESIS
    for seq in range(1, count + 1):
        entry = audit.seal(
            "summit-1",
            seq,
            NOW + timedelta(seconds=seq),
            "coordinator:p-1",
            "cut",
            {"n": seq, "to": "private"},
            prev,
        )
        entries.append(entry)
        prev = entry.hash
    return entries


def test_intact_chain_verifies() -> None:
    assert audit.verify(chain(5)) == audit.Verdict(True, 5)
    assert audit.verify([]) == audit.Verdict(True, 0)


def test_changed_record_is_named() -> None:
    entries = chain(5)
    entries[2] = replace(entries[2], details={"n": 3, "to": "public"})
    verdict = audit.verify(entries)
    assert (verdict.ok, verdict.broken_seq) == (False, 3)
    assert verdict.problem == "its content does not match its hash"


def test_removed_record_is_named() -> None:
    entries = chain(5)
    del entries[1]
    verdict = audit.verify(entries)
    assert (verdict.ok, verdict.broken_seq) == (False, 3)


@given(st.integers(min_value=1, max_value=12), st.data())
def test_any_single_change_breaks_the_chain(count: int, data: st.DataObject) -> None:
    entries = chain(count)
    index = data.draw(st.integers(min_value=0, max_value=count - 1))
    field = data.draw(st.sampled_from(["actor", "action", "at", "details", "prev_hash"]))
    tampered = {
        "actor": "operator",
        "action": "end",
        "at": NOW,
        "details": {"forged": True},
        "prev_hash": "f" * 64,
    }[field]
    entries[index] = replace(entries[index], **{field: tampered})
    verdict = audit.verify(entries)
    assert not verdict.ok
    assert verdict.broken_seq == index + 1
