"""The public endpoints' rate limit, on a clock the test moves."""

from __future__ import annotations

from summitry.web.limits import RateLimit


async def never_called(scope: object, receive: object, send: object) -> None:
    raise AssertionError("not used here")


def test_bursts_then_the_rate() -> None:
    now = [0.0]
    limit = RateLimit(never_called, ("/s/",), rate=2.0, burst=3, clock=lambda: now[0])
    assert [limit.allow("198.18.0.9") for _ in range(4)] == [True, True, True, False]
    assert limit.allow("198.18.0.10")  # another client has its own bucket
    now[0] += 0.5  # one token back at 2 per second
    assert [limit.allow("198.18.0.9") for _ in range(2)] == [True, False]
    now[0] += 100
    assert [limit.allow("198.18.0.9") for _ in range(4)] == [True, True, True, False]
