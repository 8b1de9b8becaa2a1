"""Per-client token buckets, on a clock the test moves."""

from __future__ import annotations

import httpx
from starlette.types import Receive, Scope, Send

from summitry.web.limits import Buckets, RateLimit


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


async def answer_ok(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


async def test_the_public_limit_refuses_an_empty_bucket_and_not_the_rest() -> None:
    now = [0.0]
    limited = RateLimit(answer_ok, ("/api/v1/public/",), Buckets(50.0, 100, lambda: now[0]))
    transport = httpx.ASGITransport(app=limited, client=("198.18.0.9", 4000))
    async with httpx.AsyncClient(transport=transport, base_url="http://summitry.test") as http:
        answers = [await http.get("/api/v1/public/x") for _ in range(101)]
        assert [a.status_code for a in answers] == [200] * 100 + [429]
        assert answers[-1].json()["error"] == "rate_limited"
        assert answers[-1].headers["retry-after"] == "1"
        assert (await http.get("/api/v1/me")).status_code == 200  # not a public endpoint
        now[0] += 1.0  # 50 tokens back
        again = [await http.get("/api/v1/public/x") for _ in range(51)]
        assert [a.status_code for a in again] == [200] * 50 + [429]


def test_a_refusal_says_how_long_to_wait() -> None:
    now = [0.0]
    buckets = Buckets(rate=1 / 10, burst=1, clock=lambda: now[0])
    assert buckets.refusal("198.18.0.9") == 0  # a token taken
    assert buckets.refusal("198.18.0.9") == 10
    now[0] += 9.5
    assert buckets.refusal("198.18.0.9") == 1  # half a second, rounded up
