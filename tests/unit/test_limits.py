"""Per-client token buckets, on a clock the test moves."""

from __future__ import annotations

from summitry.web.limits import Buckets


def test_bursts_then_the_rate() -> None:
    now = [0.0]
    buckets = Buckets(rate=2.0, burst=3, clock=lambda: now[0])
    assert [buckets.take("198.18.0.9") for _ in range(4)] == [True, True, True, False]
    assert buckets.take("198.18.0.10")  # another client has its own bucket
    now[0] += 0.5  # one token back at 2 per second
    assert [buckets.take("198.18.0.9") for _ in range(2)] == [True, False]
    now[0] += 100
    assert [buckets.take("198.18.0.9") for _ in range(4)] == [True, True, True, False]


def test_wait_says_when_the_next_token_comes() -> None:
    now = [0.0]
    buckets = Buckets(rate=1 / 6, burst=2, clock=lambda: now[0])
    assert buckets.wait("198.18.0.9") == 0
    assert buckets.take("198.18.0.9") and buckets.take("198.18.0.9")
    assert buckets.wait("198.18.0.9") == 6.0
    now[0] += 4.5
    assert buckets.wait("198.18.0.9") == 1.5
    assert not buckets.take("198.18.0.9")  # a refused take costs nothing
    now[0] += 1.5
    assert buckets.wait("198.18.0.9") == 0 and buckets.take("198.18.0.9")
