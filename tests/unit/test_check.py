"""The preflight's judgements on what a server answered, and the TURN URLs it reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from summitry.check import clock, hsts
from summitry.turn_probe import BadTurnUrl, TurnUrl

NOW = datetime(2026, 12, 3, 12, 0, 0, tzinfo=UTC)


def answered(**headers: str) -> httpx.Response:
    return httpx.Response(200, headers=headers)


@pytest.mark.parametrize(
    ("header", "ok"),
    [
        ("max-age=31536000", True),
        ("max-age=63072000; includeSubDomains", True),
        ("max-age=60", False),
        ("max-age=forever", False),
        (None, False),
    ],
)
def test_hsts_must_last_a_day_at_least(header: str | None, ok: bool) -> None:
    response = answered(**({"strict-transport-security": header} if header else {}))
    assert hsts(response).ok is ok


@pytest.mark.parametrize(("offset", "ok"), [(0, True), (4, True), (-4, True), (60, False)])
def test_the_clock_is_judged_within_the_request_time(offset: int, ok: bool) -> None:
    date = format_datetime(NOW + timedelta(seconds=offset), usegmt=True)
    finding = clock(answered(date=date), NOW, NOW + timedelta(milliseconds=300))
    assert finding.ok is ok, finding
    assert not clock(answered(), NOW, NOW).ok


def test_turn_urls_are_read_as_browsers_read_them() -> None:
    assert TurnUrl.parse("turn:198.19.0.2:3478?transport=tcp") == TurnUrl(
        "198.19.0.2", 3478, "tcp", False
    )
    assert TurnUrl.parse("turns:turn.example.org") == TurnUrl("turn.example.org", 5349, "tcp", True)
    assert TurnUrl.parse("turn:198.19.0.2") == TurnUrl("198.19.0.2", 3478, "udp", False)
    for wrong in ("stun:198.19.0.2", "turn:", "turns:host?transport=udp", "turn:h?transport=sctp"):
        with pytest.raises(BadTurnUrl):
            TurnUrl.parse(wrong)
