"""The REST API end to end against a running server."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import stat
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest

from summitry.config import audit_seed
from summitry.security.audit import AuditKey
from tests.servers import Seeded, Server, bearer, create_summit, invited, operator, summit_body


async def summit_count(http: httpx.AsyncClient) -> int:
    return len((await http.get("/api/v1/summits", headers=operator())).json())


async def test_health_and_openapi(http: httpx.AsyncClient) -> None:
    assert (await http.get("/api/v1/health")).json() == {
        "status": "ok",
        "version": "0.1.0",
        "media": "off",
        "media_generation": 0,
    }
    spec = (await http.get("/openapi.json")).json()
    for path in (
        "/api/v1/summits",
        "/api/v1/summits/{summit_id}/actions/{action}",
        "/api/v1/public/{slug}",
        "/api/v1/summits/{summit_id}/events",
    ):
        assert path in spec["paths"]


async def test_create_shows_each_sides_local_start(http: httpx.AsyncClient, summit: Seeded) -> None:
    response = await http.get(
        f"/api/v1/summits/{summit.id}", params={"tz": "Asia/Tokyo"}, headers=bearer(summit.ru_token)
    )
    body = response.json()
    starts = datetime.fromisoformat(body["starts_at"])
    assert (
        body["sides"][0]["local_start"]
        == starts.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Moscow")).isoformat()
    )
    assert body["sides"][0]["local_start"].endswith("+03:00")
    assert body["sides"][1]["local_start"][-6:] in ("-05:00", "-04:00")
    assert body["viewer_local_start"].endswith("+09:00")
    assert response.headers["content-security-policy"].startswith("default-src 'self'")


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        (
            {
                "sides": [
                    {"name": "Atlantis", "time_zone": "Mars/Olympus", "coordinator": {"name": "a"}},
                    {"name": "B", "time_zone": "UTC", "coordinator": {"name": "b"}},
                ]
            },
            "time_zone",
            "unknown time zone 'Mars/Olympus'",
        ),
        ({"starts_at": "2030-01-01T10:00:00"}, "starts_at", "no UTC offset"),
        ({"starts_at": "2021-12-07T15:00:00Z"}, "starts_at", "is in the past"),
        ({"public_minutes": 500}, "public_minutes", "longer than the summit"),
        (
            {
                "sides": [
                    {"name": n, "time_zone": "UTC", "coordinator": {"name": n}}
                    for n in ("A", "B", "C")
                ]
            },
            "sides",
            "exactly two sides, not 3",
        ),
        ({"planned_minutes": "two hours"}, "planned_minutes", "valid integer"),
        ({"colour": "red"}, "colour", "Extra inputs"),
    ],
)
async def test_bad_summits_are_refused_and_nothing_is_written(
    http: httpx.AsyncClient, changes: dict[str, Any], field: str, message: str
) -> None:
    before = await summit_count(http)
    response = await http.post("/api/v1/summits", json=summit_body(**changes), headers=operator())
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "invalid_input"
    assert message in body["message"]
    assert body["field"].endswith(field)
    assert await summit_count(http) == before


async def test_malformed_and_oversized_json(http: httpx.AsyncClient) -> None:
    before = await summit_count(http)
    response = await http.post(
        "/api/v1/summits",
        content=b'{"title": ',
        headers={**operator(), "content-type": "application/json"},
    )
    assert (response.status_code, response.json()["error"]) == (400, "malformed_json")
    huge = json.dumps(summit_body(agenda="x" * 300_000))
    response = await http.post(
        "/api/v1/summits", content=huge, headers={**operator(), "content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["message"] == "the request body is larger than 262144 bytes"
    assert await summit_count(http) == before


async def test_only_the_operator_creates_summits(http: httpx.AsyncClient, summit: Seeded) -> None:
    response = await http.post("/api/v1/summits", json=summit_body())
    assert (response.status_code, response.json()["error"]) == (401, "not_authenticated")
    response = await http.post(
        "/api/v1/summits", json=summit_body(), headers=bearer(summit.ru_token)
    )
    assert response.status_code == 403


async def test_phase_actions_and_their_refusals(http: httpx.AsyncClient, summit: Seeded) -> None:
    base = f"/api/v1/summits/{summit.id}"
    response = await http.post(f"{base}/actions/cut", headers=bearer(summit.ru_token))
    assert response.status_code == 409
    assert response.json() == {
        "error": "not_allowed_now",
        "message": "cannot cut while the summit is scheduled (allowed: open_lobby, cancel)",
    }
    invite = await invited(http, summit.id, summit.ru_token, "Vladimir Putin", "principal")
    response = await http.post(f"{base}/actions/open_lobby", headers=bearer(invite["token"]))
    assert response.status_code == 403
    assert response.json()["message"] == "only a coordinator may do this; you are principal"
    opened = await http.post(
        f"{base}/actions/open_lobby", json={"version": 0}, headers=bearer(summit.us_token)
    )
    assert (opened.status_code, opened.json()["phase"]) == (200, "lobby")
    stale = await http.post(
        f"{base}/actions/cancel", json={"version": 0}, headers=bearer(summit.ru_token)
    )
    assert (stale.status_code, stale.json()["error"]) == (409, "stale_version")
    summit_now = (await http.get(base, headers=bearer(summit.ru_token))).json()
    assert (summit_now["phase"], summit_now["version"]) == ("lobby", 1)


async def test_coordinator_cannot_act_on_the_other_side(
    http: httpx.AsyncClient, summit: Seeded
) -> None:
    base = f"/api/v1/summits/{summit.id}"
    response = await http.post(
        f"{base}/participants",
        headers=bearer(summit.ru_token),
        json={"name": "Joe Biden", "role": "principal", "side_id": summit.us_side},
    )
    assert (response.status_code, response.json()["error"]) == (403, "forbidden")
    biden = await invited(http, summit.id, summit.us_token, "Joe Biden", "principal")
    pid = biden["participant"]["id"]
    for path in (f"{base}/participants/{pid}/admit", f"{base}/participants/{pid}/deny"):
        assert (await http.post(path, headers=bearer(summit.ru_token))).status_code == 403
    assert (
        await http.delete(f"{base}/participants/{pid}", headers=bearer(summit.ru_token))
    ).status_code == 403
    ics = await http.get(
        f"{base}/participants/{pid}/invitation.ics", headers=bearer(summit.ru_token)
    )
    assert ics.status_code == 403


async def test_duplicate_participant_is_refused(http: httpx.AsyncClient, summit: Seeded) -> None:
    base = f"/api/v1/summits/{summit.id}/participants"
    first = await http.post(
        base, headers=bearer(summit.ru_token), json={"name": "Sergey Lavrov", "role": "delegate"}
    )
    assert first.status_code == 201
    again = await http.post(
        base, headers=bearer(summit.ru_token), json={"name": "Sergey Lavrov", "role": "observer"}
    )
    assert (again.status_code, again.json()["error"]) == (409, "conflict")
    roster = (await http.get(base, headers=bearer(summit.us_token))).json()
    assert [p["name"] for p in roster].count("Sergey Lavrov") == 1


async def test_invalid_expired_and_revoked_tokens(
    http: httpx.AsyncClient, server: Server, summit: Seeded
) -> None:
    base = f"/api/v1/summits/{summit.id}"
    forged = jwt.encode(
        {
            "aud": "summitry",
            "sub": "x",
            "jti": "y",
            "exp": 2**31,
            "summit": summit.id,
            "side": summit.ru_side,
            "role": "coordinator",
        },
        "not the server's secret, but long enough",
        "HS256",
    )
    response = await http.post(f"{base}/actions/open_lobby", headers=bearer(forged))
    assert (response.status_code, response.json()["error"]) == (401, "not_authenticated")
    claims = jwt.decode(summit.ru_token, options={"verify_signature": False})
    secret = (server.data_dir / "grant.key").read_text().strip().encode()
    expired = jwt.encode({**claims, "exp": int(datetime.now(UTC).timestamp()) - 1}, secret, "HS256")
    response = await http.get(base, headers=bearer(expired))
    assert response.status_code == 401
    assert "expired" in response.json()["message"]
    invite = await invited(http, summit.id, summit.ru_token, "Dmitry Peskov", "delegate")
    assert (await http.get("/api/v1/me", headers=bearer(invite["token"]))).status_code == 200
    removed = await http.delete(
        f"{base}/participants/{invite['participant']['id']}", headers=bearer(summit.ru_token)
    )
    assert removed.json()["presence"] == "removed"
    response = await http.get("/api/v1/me", headers=bearer(invite["token"]))
    assert (response.status_code, response.json()["message"]) == (
        401,
        "this invitation link has been revoked",
    )


async def test_invitation_link_and_ics(http: httpx.AsyncClient, summit: Seeded) -> None:
    base = f"/api/v1/summits/{summit.id}/participants"
    invite = await invited(http, summit.id, summit.us_token, "Antony Blinken", "delegate")
    pid = invite["participant"]["id"]
    own = (await http.get(f"{base}/{pid}/invitation", headers=bearer(invite["token"]))).json()
    assert own["link"] == invite["link"]
    ics = await http.get(own["ics_url"], headers=bearer(summit.us_token))
    assert ics.headers["content-type"].startswith("text/calendar")
    assert "DTSTART;TZID=America/New_York:" in ics.text
    assert "BEGIN:VTIMEZONE" in ics.text and "TZID:America/New_York" in ics.text


async def test_public_view_shows_nothing_private(http: httpx.AsyncClient, summit: Seeded) -> None:
    response = await http.get(f"/api/v1/public/{summit.slug}", params={"tz": "Asia/Tokyo"})
    body = response.json()
    assert set(body) == {
        "slug",
        "title",
        "agenda",
        "starts_at",
        "phase",
        "live",
        "sides",
        "viewer_local_start",
        "readouts",
        "audit_public_key",
        "whep",
        "watching",
        "streams",
        "recordings",
    }
    assert (body["whep"], body["watching"], body["streams"], body["recordings"]) == (
        None,
        0,
        [],
        [],
    )
    text = response.text
    for secret in (summit.id, summit.ru_token, summit.ru_side, "Yuri Ushakov"):
        assert secret not in text
    assert [s["name"] for s in body["sides"]] == ["Russian Federation", "United States"]
    assert (await http.get("/api/v1/public/no-such-summit")).status_code == 404
    bad_zone = await http.get(f"/api/v1/public/{summit.slug}", params={"tz": "Nowhere/Else"})
    assert (bad_zone.status_code, bad_zone.json()["field"]) == (422, "tz")


async def test_readout_after_the_end(http: httpx.AsyncClient, summit: Seeded) -> None:
    base = f"/api/v1/summits/{summit.id}"
    for action in ("open_lobby", "skip_public", "end"):
        response = await http.post(f"{base}/actions/{action}", headers=bearer(summit.ru_token))
        assert response.status_code == 200, response.text
    both = await http.put(
        f"{base}/readout",
        headers=bearer(summit.ru_token),
        json={"statement": "x", "no_statement": True},
    )
    assert both.status_code == 422
    ru = await http.put(
        f"{base}/readout",
        headers=bearer(summit.ru_token),
        json={"statement": "The leaders discussed strategic stability."},
    )
    assert ru.status_code == 201
    us = await http.put(
        f"{base}/readout", headers=bearer(summit.us_token), json={"no_statement": True}
    )
    assert us.json()["no_statement"] is True
    public = (await http.get(f"/api/v1/public/{summit.slug}")).json()
    assert [(r["side_name"], r["statement"]) for r in public["readouts"]] == [
        ("Russian Federation", "The leaders discussed strategic stability."),
        ("United States", None),
    ]
    # The public page names the sides, and carries none of their ids.
    assert all("side_id" not in r for r in public["readouts"])
    assert summit.ru_side not in json.dumps(public) and summit.us_side not in json.dumps(public)


async def read_events(response: httpx.Response, wanted: int) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    async for line in response.aiter_lines():
        if line.startswith("data: "):
            events.append(json.loads(line[6:]))
            if len(events) == wanted:
                break
    return events


async def test_event_streams_carry_phase_and_roster(
    http: httpx.AsyncClient, summit: Seeded
) -> None:
    base = f"/api/v1/summits/{summit.id}"
    async with (
        http.stream("GET", f"{base}/events", headers=bearer(summit.us_token)) as own,
        http.stream("GET", f"/api/v1/public/{summit.slug}/events") as public,
    ):
        assert own.headers["content-type"].startswith("text/event-stream")
        own_events = asyncio.create_task(read_events(own, 3))
        public_events = asyncio.create_task(read_events(public, 2))
        await asyncio.sleep(0.2)
        await http.post(f"{base}/actions/open_lobby", headers=bearer(summit.ru_token))
        await http.post(f"{base}/lobby", headers=bearer(summit.ru_token))
        own_seen = await asyncio.wait_for(own_events, 5)
        public_seen = await asyncio.wait_for(public_events, 5)
    assert [(e["type"], e.get("phase")) for e in own_seen] == [
        ("phase", "scheduled"),
        ("phase", "lobby"),
        ("roster", None),
    ]
    assert own_seen[2]["presence"] == "admitted"
    assert own_seen[2]["name"] == "Yuri Ushakov"
    assert public_seen == [
        {"type": "phase", "phase": "scheduled"},
        {"type": "phase", "phase": "lobby"},
    ]
    refused = await http.get(f"{base}/events")
    assert refused.status_code == 401


async def summitry_cli(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "summitry.cli",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode is not None
    return process.returncode, out.decode().strip(), err.decode().strip()


async def test_audit_verify_cli_names_the_tampered_record(
    http: httpx.AsyncClient, server: Server, summit: Seeded
) -> None:
    await http.post(
        f"/api/v1/summits/{summit.id}/actions/open_lobby", headers=bearer(summit.ru_token)
    )
    data_dir = str(server.data_dir)
    public_key = AuditKey(audit_seed(server.data_dir / "audit.key")).public_key
    assert await summitry_cli("audit", "verify", summit.id, "--data-dir", data_dir) == (
        0,
        f"OK: 2 records, chain intact, signed with {public_key}, head at record 2",
        "",
    )
    with sqlite3.connect(server.data_dir / "summitry.db") as db:
        db.execute(
            "UPDATE audit_records SET details = replace(details, 'lobby', 'public') "
            "WHERE summit_id = ? AND seq = 2",
            (summit.id,),
        )
    assert await summitry_cli("audit", "verify", summit.id, "--data-dir", data_dir) == (
        1,
        "",
        "BROKEN at record 2 (chain): its content does not match its hash",
    )
    api_view = (await http.get(f"/api/v1/summits/{summit.id}/audit", headers=operator())).json()
    assert (api_view["ok"], api_view["broken_seq"]) == (False, 2)
    assert await summitry_cli("audit", "verify", "nope", "--data-dir", data_dir) == (
        2,
        "",
        "summitry: no summit 'nope'",
    )


async def test_grant_expires_a_day_after_the_planned_end(
    http: httpx.AsyncClient, summit: Seeded
) -> None:
    claims = jwt.decode(summit.ru_token, options={"verify_signature": False})
    view = (await http.get(f"/api/v1/summits/{summit.id}", headers=operator())).json()
    ends_at = datetime.fromisoformat(view["ends_at"])
    assert datetime.fromtimestamp(claims["exp"], UTC) == ends_at + timedelta(days=1)


async def test_the_event_stream_takes_a_ticket_and_never_the_links_grant_in_its_url(
    http: httpx.AsyncClient, server: Server, summit: Seeded
) -> None:
    base = f"/api/v1/summits/{summit.id}"
    # The link's grant is good in a header, never in a URL.
    in_url = await http.get(f"{base}/events", params={"ticket": summit.ru_token})
    assert in_url.status_code == 401
    assert in_url.json()["message"].startswith("this needs an event-stream ticket")
    as_before = await http.get(f"{base}/events", params={"token": summit.ru_token})
    assert (as_before.status_code, as_before.json()["message"]) == (
        401,
        "this needs the grant from your invitation link",
    )

    issued = await http.post(f"{base}/events/tickets", headers=bearer(summit.ru_token))
    assert issued.status_code == 201, issued.text
    ticket = issued.json()["ticket"]
    lifetime = datetime.fromisoformat(issued.json()["expires_at"]) - datetime.now(UTC)
    assert timedelta(seconds=50) < lifetime <= timedelta(seconds=60)
    async with http.stream("GET", f"{base}/events", params={"ticket": ticket}) as events:
        assert events.status_code == 200
        async for line in events.aiter_lines():
            if line.startswith("data: "):
                assert json.loads(line[6:])["type"] == "phase"
                break
    # A ticket opens that stream once, and nothing else.
    again = await http.get(f"{base}/events", params={"ticket": ticket})
    assert (again.status_code, again.json()["message"]) == (
        401,
        "this event-stream ticket was used already; ask for a new one",
    )
    me = await http.get("/api/v1/me", headers=bearer(ticket))
    assert (me.status_code, me.json()["message"]) == (
        401,
        "this needs the grant of an invitation link, not another credential",
    )
    other = await create_summit(http)
    fresh = (await http.post(f"{base}/events/tickets", headers=bearer(summit.ru_token))).json()
    elsewhere = await http.get(
        f"/api/v1/summits/{other.id}/events", params={"ticket": fresh["ticket"]}
    )
    assert elsewhere.status_code == 403
    refused = await http.post(
        f"/api/v1/summits/{other.id}/events/tickets", headers=bearer(summit.ru_token)
    )
    assert refused.status_code == 403
    # Expired, or of a removed participant: refused.
    claims = jwt.decode(ticket, options={"verify_signature": False})
    secret = (server.data_dir / "grant.key").read_text().strip().encode()
    expired = jwt.encode({**claims, "exp": int(datetime.now(UTC).timestamp()) - 1}, secret, "HS256")
    response = await http.get(f"{base}/events", params={"ticket": expired})
    assert (response.status_code, response.json()["message"]) == (
        401,
        "this event-stream ticket has expired; ask for a new one",
    )
    peskov = await invited(http, summit.id, summit.ru_token, "Dmitry Peskov", "delegate")
    his = (await http.post(f"{base}/events/tickets", headers=bearer(peskov["token"]))).json()
    await http.delete(
        f"{base}/participants/{peskov['participant']['id']}", headers=bearer(summit.ru_token)
    )
    response = await http.get(f"{base}/events", params={"ticket": his["ticket"]})
    assert (response.status_code, response.json()["message"]) == (
        401,
        "this invitation link has been revoked",
    )


async def test_a_removed_participants_event_stream_ends_with_the_news(
    http: httpx.AsyncClient, summit: Seeded
) -> None:
    base = f"/api/v1/summits/{summit.id}"
    peskov = await invited(http, summit.id, summit.ru_token, "Dmitry Peskov", "delegate")
    seen: list[dict[str, Any]] = []
    async with http.stream("GET", f"{base}/events", headers=bearer(peskov["token"])) as events:
        async with asyncio.timeout(10):
            async for line in events.aiter_lines():
                if not line.startswith("data: "):
                    continue
                seen.append(json.loads(line[6:]))
                if len(seen) == 1:  # listening: now he is removed
                    removed = await http.delete(
                        f"{base}/participants/{peskov['participant']['id']}",
                        headers=bearer(summit.ru_token),
                    )
                    assert removed.status_code == 200
            # The server closed the stream: nothing more reaches him.
    assert [event["type"] for event in seen] == ["phase", "roster"]
    assert (seen[1]["participant"], seen[1]["presence"]) == (
        peskov["participant"]["id"],
        "removed",
    )


def client_from(server: Server, address: str) -> httpx.AsyncClient:
    """A client on another loopback address: the limits count per address."""
    transport = httpx.AsyncHTTPTransport(local_address=address)
    return httpx.AsyncClient(base_url=server.url, transport=transport, timeout=10)


async def until_stopped(send: Callable[[], Awaitable[httpx.Response]]) -> list[int]:
    """The statuses of guesses sent until one is stopped (429), 60 at most: the bucket
    lets one more through every 6 s, so a slow machine takes a few more to empty it."""
    statuses = []
    for _ in range(60):
        statuses.append((answer := await send()).status_code)
        if answer.status_code == 429:
            assert answer.json()["error"] == "too_many_failures"
            assert 1 <= int(answer.headers["retry-after"]) <= 6
            assert "try again in" in answer.json()["message"]
            break
    return statuses


async def test_guesses_are_stopped_per_kind_and_a_good_grant_always_gets_in(
    http: httpx.AsyncClient, server: Server, summit: Seeded
) -> None:
    base = f"/api/v1/summits/{summit.id}"
    invite = await invited(http, summit.id, summit.ru_token, "Dmitry Peskov", "delegate")
    await http.delete(
        f"{base}/participants/{invite['participant']['id']}", headers=bearer(summit.ru_token)
    )
    before = await summit_count(http)
    async with (
        client_from(server, "127.0.0.7") as guesser,
        client_from(server, "127.0.0.8") as removed,
    ):
        # A genuine grant that was revoked is refused as often as it comes, never throttled.
        refused = [
            await removed.get("/api/v1/me", headers=bearer(invite["token"])) for _ in range(30)
        ]
        assert {r.status_code for r in refused} == {401}
        assert refused[-1].json()["message"] == "this invitation link has been revoked"

        # Tickets in a URL, which any web page can make a browser send, cost nothing.
        tickets = [await guesser.get(f"{base}/events?ticket=guess-{n}") for n in range(30)]
        assert {r.status_code for r in tickets} == {401}

        forged = summit.ru_token[:-4] + ("AAAA" if not summit.ru_token.endswith("AAAA") else "BBBB")
        grants = await until_stopped(lambda: guesser.get("/api/v1/me", headers=bearer(forged)))
        assert grants[-1] == 429 and set(grants[:-1]) == {401} and len(grants) > 20, grants
        # A good grant from the same address gets in all the same.
        assert (await guesser.get("/api/v1/me", headers=bearer(summit.ru_token))).status_code == 200
        # Operator tokens have a bucket of their own, and once it is empty none is tried
        # from that address, not even the right one.
        tokens = await until_stopped(
            lambda: guesser.post("/api/v1/summits", json=summit_body(), headers=bearer("guess"))
        )
        assert tokens[-1] == 429 and set(tokens[:-1]) == {403} and len(tokens) > 20, tokens
        stopped = await guesser.post("/api/v1/summits", json=summit_body(), headers=operator())
        assert stopped.status_code == 429
        # The public page stays open to it, and other addresses are not affected.
        assert (await guesser.get(f"/api/v1/public/{summit.slug}")).status_code == 200
        assert (await guesser.get("/api/v1/health")).status_code == 200
        assert (await http.get("/api/v1/me", headers=bearer(summit.ru_token))).status_code == 200
    assert await summit_count(http) == before


async def test_public_endpoints_are_rate_limited(
    http: httpx.AsyncClient, server: Server, summit: Seeded
) -> None:
    """The wiring: the public endpoints take from the address's bucket, participants'
    do not. (How the bucket counts is tested on a clock of the test's own, in
    tests/unit/test_limits.py.) Requests go in concurrent bursts until one is refused,
    so a slow machine only needs more of them; its own address drains no other test's."""
    url = f"/api/v1/public/{summit.slug}"
    async with client_from(server, "127.0.0.10") as viewer:
        limited = None
        for _ in range(20):
            burst = await asyncio.gather(*(viewer.get(url) for _ in range(150)))
            if limited := next((a for a in burst if a.status_code == 429), None):
                break
        assert limited is not None, "150-request bursts never emptied the bucket"
        assert limited.json()["error"] == "rate_limited"
        assert limited.headers["retry-after"] == "1"
        # Participants' endpoints are not the public's: they are not limited by it.
        own = await viewer.get(f"/api/v1/summits/{summit.id}", headers=bearer(summit.ru_token))
        assert own.status_code == 200


async def test_the_data_folder_and_the_answers_keep_their_secrets(
    http: httpx.AsyncClient, server: Server, summit: Seeded
) -> None:
    # Only the server's user reads its folder: the database, secrets and keys.
    assert stat.S_IMODE(server.data_dir.stat().st_mode) == 0o700
    written = [path for path in server.data_dir.rglob("*") if path.name != "server.log"]
    assert any(path.name == "summitry.db" for path in written)
    for path in written:
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, (path, oct(path.stat().st_mode))

    me = await http.get("/api/v1/me", headers=bearer(summit.ru_token))
    assert me.headers["cache-control"] == "no-store"
    csp = me.headers["content-security-policy"]
    for directive in ("base-uri 'none'", "form-action 'self'", "object-src 'none'"):
        assert directive in csp, csp
    public = await http.get(f"/api/v1/public/{summit.slug}")
    assert "no-store" not in public.headers.get("cache-control", "")

    # An event-stream ticket travels in the URL, but stays out of the access log.
    base = f"/api/v1/summits/{summit.id}"
    ticket = (await http.post(f"{base}/events/tickets", headers=bearer(summit.ru_token))).json()
    async with http.stream("GET", f"{base}/events", params={"ticket": ticket["ticket"]}) as sse:
        assert sse.status_code == 200
    async with asyncio.timeout(10):
        while f"{base}/events?ticket=" not in server.log:
            await asyncio.sleep(0.05)
    assert ticket["ticket"] not in server.log


async def test_a_summit_without_a_public_part_has_no_public_page(
    http: httpx.AsyncClient,
) -> None:
    closed = await create_summit(http, public_minutes=0)
    for path in (
        f"/api/v1/public/{closed.slug}",
        f"/api/v1/public/{closed.slug}/events",
        f"/api/v1/public/{closed.slug}/ice-servers",
    ):
        answer = await http.get(path)
        assert answer.status_code == 404, (path, answer.text)
        assert answer.json()["message"] == "there is no public summit at this address"
    # A slug carries 96 random bits after the title's words.
    suffix = closed.slug.rsplit("-", 1)[1]
    assert len(suffix) == 24 and int(suffix, 16) >= 0


async def test_the_lobby_reads_only_its_own_state_until_admitted(
    http: httpx.AsyncClient, summit: Seeded
) -> None:
    base = f"/api/v1/summits/{summit.id}"
    await http.post(f"{base}/actions/open_lobby", headers=bearer(summit.ru_token))
    await http.post(f"{base}/lobby", headers=bearer(summit.ru_token))
    peskov = await invited(http, summit.id, summit.ru_token, "Dmitry Peskov", "delegate")
    lavrov = await invited(http, summit.id, summit.ru_token, "Sergey Lavrov", "delegate")
    await http.post(f"{base}/lobby", headers=bearer(lavrov["token"]))
    await http.post(
        f"{base}/participants/{lavrov['participant']['id']}/deny", headers=bearer(summit.ru_token)
    )
    for token in (peskov["token"], lavrov["token"]):  # invited; denied
        mine = await http.get(f"{base}/participants", headers=bearer(token))
        assert [p["name"] for p in mine.json()] in (["Dmitry Peskov"], ["Sergey Lavrov"])
        for path in ("/readouts", "/e2ee", "/feeds"):
            refused = await http.get(base + path, headers=bearer(token))
            assert (refused.status_code, refused.json()["error"]) == (403, "forbidden"), path
        assert (await http.get(base, headers=bearer(token))).status_code == 200  # the summit
        assert (await http.get("/api/v1/me", headers=bearer(token))).status_code == 200

    # Waiting, Peskov's stream carries the phase and news of himself, nothing of the
    # others; once admitted, everything.
    await http.post(f"{base}/lobby", headers=bearer(peskov["token"]))
    async with http.stream("GET", f"{base}/events", headers=bearer(peskov["token"])) as stream:
        seen = asyncio.create_task(read_events(stream, 3))
        await asyncio.sleep(0.2)
        await http.post(f"{base}/lobby", headers=bearer(summit.us_token))  # not for him
        await http.post(
            f"{base}/participants/{peskov['participant']['id']}/admit",
            headers=bearer(summit.ru_token),
        )
        await http.post(f"{base}/leave", headers=bearer(summit.us_token))  # for him now
        events = await asyncio.wait_for(seen, 5)
    assert [(e["type"], e.get("name"), e.get("presence")) for e in events] == [
        ("phase", None, None),
        ("roster", "Dmitry Peskov", "admitted"),
        ("roster", "Jake Sullivan", "left"),
    ]
    everyone = await http.get(f"{base}/participants", headers=bearer(peskov["token"]))
    assert len(everyone.json()) > 1


async def test_coordinators_come_with_the_summit_and_links_can_be_reissued(
    http: httpx.AsyncClient, summit: Seeded
) -> None:
    base = f"/api/v1/summits/{summit.id}"
    ru = bearer(summit.ru_token)
    deputy = await http.post(
        f"{base}/participants", json={"name": "Deputy", "role": "coordinator"}, headers=ru
    )
    assert (deputy.status_code, deputy.json()["error"]) == (403, "forbidden"), deputy.text
    me = (await http.get("/api/v1/me", headers=bearer(summit.us_token))).json()
    removal = await http.delete(f"{base}/participants/{me['participant']['id']}", headers=ru)
    assert removal.status_code == 403  # not another side's, and not a coordinator

    # A leaked link: a new one, and the old one dies at once.
    peskov = await invited(http, summit.id, summit.ru_token, "Dmitry Peskov", "delegate")
    pid = peskov["participant"]["id"]
    again = await http.post(f"{base}/participants/{pid}/invitation", headers=ru)
    assert again.status_code == 201, again.text
    fresh = again.json()["token"]
    assert fresh != peskov["token"]
    assert (await http.get("/api/v1/me", headers=bearer(peskov["token"]))).status_code == 401
    assert (await http.get("/api/v1/me", headers=bearer(fresh))).status_code == 200
    # Only his coordinator does that, not he himself.
    own = await http.post(f"{base}/participants/{pid}/invitation", headers=bearer(fresh))
    assert own.status_code == 403
    # Removed, he can be invited again under his name, with yet another link.
    await http.delete(f"{base}/participants/{pid}", headers=ru)
    assert (await http.get("/api/v1/me", headers=bearer(fresh))).status_code == 401
    back = await invited(http, summit.id, summit.ru_token, "Dmitry Peskov", "observer")
    assert back["participant"]["role"] == "observer"
    assert (await http.get("/api/v1/me", headers=bearer(back["token"]))).status_code == 200
    assert (await http.get("/api/v1/me", headers=bearer(fresh))).status_code == 401
    trail = (await http.get(f"{base}/audit", headers=operator())).json()["trail"]
    assert [r["details"]["participant"] for r in trail if r["action"] == "invitation_reissued"] == [
        pid
    ]


async def test_event_streams_are_capped_per_holder(
    http: httpx.AsyncClient, server: Server, summit: Seeded
) -> None:
    public = f"/api/v1/public/{summit.slug}/events"
    async with contextlib.AsyncExitStack() as streams, client_from(server, "127.0.0.9") as viewer:
        opened = [
            await streams.enter_async_context(viewer.stream("GET", public)) for _ in range(32)
        ]
        assert {s.status_code for s in opened} == {200}
        refused = await viewer.get(public)
        assert (refused.status_code, refused.json()["error"]) == (429, "rate_limited")
        assert "event streams are open from here" in refused.json()["message"]
        # Another address is not held back by it.
        async with http.stream("GET", public) as elsewhere:
            assert elsewhere.status_code == 200
        # A stream that closes frees its place.
        await opened[0].aclose()
        async with asyncio.timeout(10):
            while True:
                async with viewer.stream("GET", public) as again:
                    if again.status_code == 200:
                        break
                await asyncio.sleep(0.1)
    own = f"/api/v1/summits/{summit.id}/events"
    async with contextlib.AsyncExitStack() as streams:
        for _ in range(4):
            mine = await streams.enter_async_context(
                http.stream("GET", own, headers=bearer(summit.ru_token))
            )
            assert mine.status_code == 200
        fifth = await http.get(own, headers=bearer(summit.ru_token))
        assert fifth.status_code == 429
