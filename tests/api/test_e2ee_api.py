"""The end-to-end encryption key exchange over HTTP, against a running server: browsers'
public keys (real P-256 points), wrapped media keys (opaque to the server), who makes and
makes keys, when a key goes in force, what the audit trail keeps and what it refuses."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import os
import time
from dataclasses import dataclass
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tests.servers import Seeded, bearer, create_summit, invited, operator


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def public_key() -> str:
    """What a browser posts: its ECDH P-256 public key, raw, base64url."""
    private = ec.generate_private_key(ec.SECP256R1())
    return b64url(private.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint))


def blob() -> str:
    """A wrapped media key: IV, key and tag, which only the recipient can open."""
    return b64url(os.urandom(60))


def transcript(*members: tuple[str, str, str]) -> list[dict[str, str]]:
    """What a key's recipients are told it was made for: (id, name, public key) each, in
    participant id order."""
    return [
        {"participant_id": id_, "name": name, "public_key": key}
        for id_, name, key in sorted(members)
    ]


@dataclass
class Person:
    id: str
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return bearer(self.token)


class Keys:
    """One summit's key exchange, as its participants' browsers reach it."""

    def __init__(self, http: httpx.AsyncClient, summit: Seeded) -> None:
        self.http = http
        self.summit = summit
        self.base = f"/api/v1/summits/{summit.id}"

    async def view(self, who: Person) -> dict[str, Any]:
        response = await self.http.get(f"{self.base}/e2ee", headers=who.auth)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def put_key(self, who: Person, key: str) -> httpx.Response:
        return await self.http.put(
            f"{self.base}/e2ee/public-key", json={"public_key": key}, headers=who.auth
        )

    async def make(self, who: Person, epoch: int, wraps: dict[str, str]) -> httpx.Response:
        return await self.http.post(
            f"{self.base}/e2ee/epochs", json={"epoch": epoch, "wraps": wraps}, headers=who.auth
        )

    async def confirm(self, who: Person, epoch: int) -> httpx.Response:
        return await self.http.post(
            f"{self.base}/e2ee/confirmations", json={"epoch": epoch}, headers=who.auth
        )

    async def audit(self) -> list[dict[str, Any]]:
        response = await self.http.get(f"{self.base}/audit", headers=operator())
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["ok"] is True
        trail: list[dict[str, Any]] = body["trail"]
        return trail

    async def audit_text(self) -> str:
        return (await self.http.get(f"{self.base}/audit", headers=operator())).text

    async def knock(self, token: str) -> Person:
        response = await self.http.post(f"{self.base}/lobby", headers=bearer(token))
        assert response.status_code == 200, response.text
        return Person(response.json()["id"], token)

    async def coordinators_in_the_call(self) -> tuple[Person, Person]:
        opened = await self.http.post(
            f"{self.base}/actions/open_lobby", headers=bearer(self.summit.ru_token)
        )
        assert opened.status_code == 200, opened.text
        return await self.knock(self.summit.ru_token), await self.knock(self.summit.us_token)

    async def coordinators_with_public_keys(self) -> tuple[Person, Person]:
        ru, us = await self.coordinators_in_the_call()
        for person in (ru, us):
            posted = await self.put_key(person, public_key())
            assert posted.status_code == 204, posted.text
        return ru, us

    async def invite(self, coordinator: Person, name: str, role: str = "principal") -> Person:
        invite = await invited(self.http, self.summit.id, coordinator.token, name, role)
        return Person(invite["participant"]["id"], invite["token"])

    async def admitted(self, coordinator: Person, name: str) -> Person:
        guest = await self.invite(coordinator, name)
        waiting = await self.http.post(f"{self.base}/lobby", headers=guest.auth)
        assert waiting.json()["presence"] == "waiting"
        admitted = await self.http.post(
            f"{self.base}/participants/{guest.id}/admit", headers=coordinator.auth
        )
        assert admitted.json()["presence"] == "admitted", admitted.text
        return guest

    async def in_force_within(self, who: Person, epoch: int, seconds: float) -> dict[str, Any]:
        deadline = time.monotonic() + seconds
        while True:
            view = await self.view(who)
            if view["in_force"] == epoch or time.monotonic() > deadline:
                return view
            await asyncio.sleep(0.05)


async def events_while_idle(
    http: httpx.AsyncClient, keys: Keys, who: Person, seconds: float
) -> list[dict[str, Any]]:
    """What `who`'s browser hears while nobody does anything, after the stream's snapshot."""
    events: list[dict[str, Any]] = []

    async def read(response: httpx.Response) -> None:
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))

    async with http.stream("GET", f"{keys.base}/events", headers=bearer(who.token)) as stream:
        reader = asyncio.create_task(read(stream))
        await asyncio.sleep(seconds)
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
    return [e for e in events if e["type"] != "phase"]


def holds(view: dict[str, Any]) -> dict[str, list[int]]:
    return {m["participant_id"]: m["holds"] for m in view["members"]}


def refused(response: httpx.Response, status: int, error: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert body["error"] == error
    assert body["message"]
    return body


async def test_key_exchange_from_first_key_to_rekey_after_a_departure(
    http: httpx.AsyncClient, summit: Seeded
) -> None:
    keys = Keys(http, summit)
    ru, us = await keys.coordinators_in_the_call()
    empty = await keys.view(ru)
    assert (empty["members"], empty["make_key"], empty["next_epoch"]) == ([], False, 1)
    assert (empty["in_force"], empty["pending"], empty["private"]) == (None, None, False)

    ru_key, us_key = public_key(), public_key()
    assert (await keys.put_key(ru, ru_key)).status_code == 204
    assert (await keys.put_key(us, us_key)).status_code == 204
    assert (await keys.put_key(us, us_key)).status_code == 204  # the same key again: no change
    first, second = await keys.view(ru), await keys.view(us)
    assert [(m["participant_id"], m["public_key"]) for m in first["members"]] == [
        (ru.id, ru_key),
        (us.id, us_key),
    ]
    assert [(m["name"], m["role"]) for m in first["members"]] == [
        ("Yuri Ushakov", "coordinator"),
        ("Jake Sullivan", "coordinator"),
    ]
    assert first["members"][0]["side_id"] == summit.ru_side
    assert (first["make_key"], second["make_key"]) == (True, False)
    assert first["next_epoch"] == second["next_epoch"] == 1
    assert first["keys_for_you"] == second["keys_for_you"] == []
    assert not first["receives_private"]

    wraps = {ru.id: blob(), us.id: blob()}
    assert (await keys.make(ru, 1, wraps)).status_code == 204
    offered = await keys.view(us)
    pair = transcript((ru.id, "Yuri Ushakov", ru_key), (us.id, "Jake Sullivan", us_key))
    assert offered["keys_for_you"] == [
        {"epoch": 1, "sender_id": ru.id, "wrapped": wraps[us.id], "transcript": pair}
    ]
    assert (await keys.view(ru))["keys_for_you"] == [
        {"epoch": 1, "sender_id": ru.id, "wrapped": wraps[ru.id], "transcript": pair}
    ]
    assert offered["pending"] == 1 or offered["in_force"] == 1  # in force after 1 s anyway
    assert (await keys.confirm(ru, 1)).status_code == 204
    assert (await keys.confirm(us, 1)).status_code == 204
    assert (await keys.confirm(us, 1)).status_code == 204  # confirming twice is harmless
    both = await keys.view(us)
    assert (both["in_force"], both["pending"], both["next_epoch"]) == (1, None, 2)
    assert holds(both) == {ru.id: [1], us.id: [1]}
    assert both["receives_private"] and not both["make_key"]

    # A principal joins the call after the key was made: everyone gets a new key, made by
    # the longest-present holder, so the newcomer never holds what was said before.
    putin = await keys.admitted(ru, "Vladimir Putin")
    putin_key = public_key()
    assert (await keys.put_key(putin, putin_key)).status_code == 204
    holder, other, newcomer = await keys.view(ru), await keys.view(us), await keys.view(putin)
    assert (holder["make_key"], other["make_key"], newcomer["make_key"]) == (True, False, False)
    assert newcomer["keys_for_you"] == [] and not newcomer["receives_private"]
    assert holder["next_epoch"] == 2
    trio = {ru.id: blob(), us.id: blob(), putin.id: blob()}
    refused(await keys.make(us, 2, trio), 403, "forbidden")  # not the one named
    refused(await keys.make(putin, 2, trio), 403, "forbidden")
    refused(await keys.make(ru, 2, {ru.id: blob(), us.id: blob()}), 422, "invalid_input")
    assert (await keys.make(ru, 2, trio)).status_code == 204
    assert (await keys.view(putin))["keys_for_you"] == [
        {
            "epoch": 2,
            "sender_id": ru.id,
            "wrapped": trio[putin.id],
            "transcript": transcript(
                (ru.id, "Yuri Ushakov", ru_key),
                (us.id, "Jake Sullivan", us_key),
                (putin.id, "Vladimir Putin", putin_key),
            ),
        }
    ]
    for person in (ru, us, putin):
        assert (await keys.confirm(person, 2)).status_code == 204
    joined = await keys.view(putin)
    assert joined["receives_private"]
    assert holds(joined) == {ru.id: [1, 2], us.id: [1, 2], putin.id: [2]}
    assert (joined["in_force"], joined["next_epoch"]) == (2, 3)

    # The principal leaves: the key they hold must be replaced, by the longest-present holder.
    left = await http.post(f"{keys.base}/leave", headers=putin.auth)
    assert left.json()["presence"] == "left"
    after, other = await keys.view(ru), await keys.view(us)
    assert [m["participant_id"] for m in after["members"]] == [ru.id, us.id]
    assert (after["make_key"], other["make_key"]) == (True, False)
    assert after["next_epoch"] == 3 and after["in_force"] == 2
    gone = await keys.view(putin)
    assert gone["keys_for_you"] == [] and not gone["receives_private"]
    refused(await keys.make(us, 2, {ru.id: blob(), us.id: blob()}), 409, "conflict")
    rekey = {ru.id: blob(), us.id: blob()}
    refused(await keys.make(ru, 3, {**rekey, putin.id: blob()}), 422, "invalid_input")
    assert (await keys.make(ru, 3, rekey)).status_code == 204
    assert (await keys.confirm(ru, 3)).status_code == 204
    assert (await keys.confirm(us, 3)).status_code == 204
    final = await keys.view(us)
    assert (final["in_force"], final["pending"], final["make_key"]) == (3, None, False)
    assert holds(final) == {ru.id: [1, 2, 3], us.id: [1, 2, 3]}
    assert [k["epoch"] for k in final["keys_for_you"]] == [3]

    trail = await keys.audit()
    e2ee = [(r["action"], r["details"]) for r in trail if r["action"].startswith("e2ee_")]
    assert [action for action, _ in e2ee] == [
        "e2ee_public_key",
        "e2ee_public_key",
        "e2ee_key_made",
        "e2ee_key_in_force",
        "e2ee_public_key",
        "e2ee_key_made",
        "e2ee_key_in_force",
        "e2ee_key_made",
        "e2ee_key_in_force",
    ]
    assert e2ee[0][1]["participant"] == ru.id
    assert e2ee[2][1] == {"epoch": 1, "recipients": sorted([ru.id, us.id])}
    # Both confirmed at once; on a machine slower than IN_FORCE_AFTER the clock comes first.
    assert (e2ee[3][1]["epoch"], e2ee[3][1]["recipients"]) == (1, 2)
    assert e2ee[3][1]["confirmed"] in (0, 1, 2)
    assert e2ee[5][1] == {"epoch": 2, "recipients": sorted([ru.id, us.id, putin.id])}
    assert (e2ee[6][1]["epoch"], e2ee[6][1]["recipients"]) == (2, 3)
    assert e2ee[7][1] == {"epoch": 3, "recipients": sorted([ru.id, us.id])}
    assert (e2ee[8][1]["epoch"], e2ee[8][1]["recipients"]) == (3, 2)
    fingerprints = {d["fingerprint"] for a, d in e2ee if a == "e2ee_public_key"}
    assert len(fingerprints) == 3 and all(len(f) == 16 for f in fingerprints)
    text = await keys.audit_text()
    for secret in [*wraps.values(), *trio.values(), *rekey.values(), ru_key, us_key, putin_key]:
        assert secret not in text


def fingerprint(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:16]


async def test_a_new_key_pair_gets_no_key_until_another_coordinator_accepts_it(
    http: httpx.AsyncClient, summit: Seeded
) -> None:
    keys = Keys(http, summit)
    ru, us = await keys.coordinators_in_the_call()
    ru_key, us_key, us_new = public_key(), public_key(), public_key()
    for person, key in ((ru, ru_key), (us, us_key)):
        assert (await keys.put_key(person, key)).status_code == 204
    assert (await keys.make(ru, 1, {ru.id: blob(), us.id: blob()})).status_code == 204
    await keys.confirm(ru, 1)
    await keys.confirm(us, 1)

    # His link opened in another browser, or by someone else: a key nobody has seen.
    assert (await keys.put_key(us, us_new)).status_code == 204
    changed, holder = await keys.view(us), await keys.view(ru)
    change = {
        "participant_id": us.id,
        "name": "Jake Sullivan",
        "side_id": summit.us_side,
        "public_key": us_new,
        "pinned_key": us_key,
    }
    assert holder["key_changes"] == changed["key_changes"] == [change]
    assert [m["participant_id"] for m in holder["members"]] == [ru.id]
    assert changed["keys_for_you"] == [] and not changed["receives_private"]
    refused(await keys.confirm(us, 1), 409, "conflict")
    # He received the key in force: a new one is made without him meanwhile.
    assert holder["make_key"] and not changed["make_key"]
    refused(await keys.make(ru, 2, {ru.id: blob(), us.id: blob()}), 422, "invalid_input")
    assert (await keys.make(ru, 2, {ru.id: blob()})).status_code == 204

    accept = f"{keys.base}/e2ee/key-changes/{us.id}/acceptance"
    putin = await keys.admitted(ru, "Vladimir Putin")
    for who, key, status, code in (
        (us, us_new, 403, "forbidden"),  # not his own
        (putin, us_new, 403, "forbidden"),  # coordinators only
        (ru, us_key, 409, "conflict"),  # not the key waiting
    ):
        refused(await http.post(accept, json={"public_key": key}, headers=who.auth), status, code)
    refused(
        await http.post(
            f"{keys.base}/e2ee/key-changes/{ru.id}/acceptance",
            json={"public_key": ru_key},
            headers=us.auth,
        ),
        409,
        "conflict",
    )
    accepted = await http.post(accept, json={"public_key": us_new}, headers=ru.auth)
    assert accepted.status_code == 204, accepted.text
    holder = await keys.view(ru)
    assert holder["key_changes"] == []
    assert [(m["participant_id"], m["public_key"]) for m in holder["members"]] == [
        (ru.id, ru_key),
        (us.id, us_new),
    ]
    assert holder["make_key"]  # his new key needs a key of its own
    assert (await keys.make(ru, 3, {ru.id: blob(), us.id: blob()})).status_code == 204
    assert [k["epoch"] for k in (await keys.view(us))["keys_for_you"]] == [3]
    # The old browser coming back is a change again: the pin moved to the accepted key.
    assert (await keys.put_key(us, us_key)).status_code == 204
    assert [c["public_key"] for c in (await keys.view(ru))["key_changes"]] == [us_key]

    trail = [(r["action"], r["details"]) for r in await keys.audit()]
    changes = [d for a, d in trail if a == "e2ee_key_changed"]
    assert changes == [
        {"participant": us.id, "fingerprint": fingerprint(us_new), "pinned": fingerprint(us_key)},
        {"participant": us.id, "fingerprint": fingerprint(us_key), "pinned": fingerprint(us_new)},
    ]
    assert [d for a, d in trail if a == "e2ee_key_change_accepted"] == [
        {"participant": us.id, "fingerprint": fingerprint(us_new), "pinned": fingerprint(us_key)}
    ]


async def test_a_wrap_that_does_not_open_is_taken_back_and_a_new_key_made(
    http: httpx.AsyncClient, summit: Seeded
) -> None:
    keys = Keys(http, summit)
    ru, us = await keys.coordinators_with_public_keys()
    assert (await keys.make(ru, 1, {ru.id: blob(), us.id: blob()})).status_code == 204
    assert (await keys.confirm(ru, 1)).status_code == 204
    failures = f"{keys.base}/e2ee/failures"
    refused(await http.post(failures, json={"epoch": 1}, headers=ru.auth), 409, "conflict")
    refused(await http.post(failures, json={"epoch": 2}, headers=us.auth), 409, "conflict")
    reported = await http.post(failures, json={"epoch": 1}, headers=us.auth)
    assert reported.status_code == 204, reported.text
    broken, holder = await keys.view(us), await keys.view(ru)
    assert broken["keys_for_you"] == [] and not broken["receives_private"]
    assert holder["make_key"] and holder["next_epoch"] == 2  # repaired by a new key
    refused(await http.post(failures, json={"epoch": 1}, headers=us.auth), 409, "conflict")
    assert (await keys.make(ru, 2, {ru.id: blob(), us.id: blob()})).status_code == 204
    assert [k["epoch"] for k in (await keys.view(us))["keys_for_you"]] == [2]
    trail = [(r["action"], r["details"]) for r in await keys.audit()]
    assert [d for a, d in trail if a == "e2ee_wrap_failed"] == [
        {"participant": us.id, "epoch": 1, "maker": ru.id}
    ]


async def test_a_key_goes_in_force_by_itself_when_someone_does_not_confirm(
    http: httpx.AsyncClient, summit: Seeded
) -> None:
    keys = Keys(http, summit)
    ru, us = await keys.coordinators_with_public_keys()
    started = time.monotonic()
    assert (await keys.make(ru, 1, {ru.id: blob(), us.id: blob()})).status_code == 204
    assert (await keys.confirm(ru, 1)).status_code == 204
    early = await keys.view(ru)
    if time.monotonic() - started < 0.8:  # a slow machine may already be past the deadline
        assert (early["in_force"], early["pending"]) == (None, 1)
    view = await keys.in_force_within(ru, 1, 5)
    assert (view["in_force"], view["pending"]) == (1, None), view
    assert time.monotonic() - started >= 0.9
    assert holds(view) == {ru.id: [1], us.id: []}
    assert view["receives_private"] and not (await keys.view(us))["receives_private"]
    assert not view["make_key"]  # someone holds it: no new key
    in_force = [r for r in await keys.audit() if r["action"] == "e2ee_key_in_force"]
    assert [r["details"] for r in in_force] == [{"epoch": 1, "confirmed": 1, "recipients": 2}]
    assert in_force[0]["actor"] != ru.id
    # The late browser still gets the key in force, and confirms it.
    assert [k["epoch"] for k in (await keys.view(us))["keys_for_you"]] == [1]
    assert (await keys.confirm(us, 1)).status_code == 204
    assert (await keys.view(us))["receives_private"]
    # Settled: the clock has nothing more to do, and browsers are left in peace.
    assert await events_while_idle(http, keys, us, 2.5) == []


async def test_bad_requests_are_refused_and_change_nothing(
    http: httpx.AsyncClient, summit: Seeded
) -> None:
    keys = Keys(http, summit)
    ru, us = await keys.coordinators_with_public_keys()
    outsider = await keys.invite(ru, "Sergey Lavrov", "delegate")  # invited, not in the call
    waiting = await keys.invite(us, "Antony Blinken", "delegate")
    assert (await http.post(f"{keys.base}/lobby", headers=waiting.auth)).status_code == 200
    other_summit = await create_summit(http)
    stranger = Person("?", other_summit.ru_token)
    before_view, before_audit = await keys.view(ru), await keys.audit()

    body = refused(await keys.put_key(ru, "AAAA"), 422, "invalid_input")
    assert body["field"] == "public_key"
    refused(await keys.put_key(ru, "not base64 at all!"), 422, "invalid_input")
    off_curve = b64url(b"\x04" + bytes(64))
    body = refused(await keys.put_key(ru, off_curve), 422, "invalid_input")
    assert "not a point on P-256" in body["message"]
    refused(await keys.put_key(ru, "A" * 101), 422, "invalid_input")  # longer than any key
    response = await http.put(
        f"{keys.base}/e2ee/public-key", json={"public_key": public_key(), "x": 1}, headers=ru.auth
    )
    refused(response, 422, "invalid_input")
    response = await http.put(
        f"{keys.base}/e2ee/public-key",
        content=b'{"public_key": ',
        headers={**ru.auth, "content-type": "application/json"},
    )
    refused(response, 400, "malformed_json")

    both = {ru.id: blob(), us.id: blob()}
    body = refused(await keys.make(ru, 2, both), 409, "conflict")
    assert (body["field"], body["message"]) == ("epoch", "the next key is epoch 1, not 2")
    refused(await keys.make(ru, 0, both), 422, "invalid_input")
    refused(await keys.make(ru, 70000, both), 422, "invalid_input")
    body = refused(await keys.make(ru, 1, {ru.id: blob()}), 422, "invalid_input")
    assert (body["field"], us.id in body["message"]) == ("wraps", True)
    refused(await keys.make(ru, 1, {**both, "nobody": blob()}), 422, "invalid_input")
    short = b64url(os.urandom(59))
    body = refused(await keys.make(ru, 1, {ru.id: blob(), us.id: short}), 422, "invalid_input")
    assert body["field"] == "wrapped"
    refused(await keys.make(outsider, 1, both), 403, "forbidden")  # not in the call

    refused(await keys.confirm(ru, 1), 409, "conflict")  # nothing was wrapped for you

    body = refused(await keys.put_key(outsider, public_key()), 403, "forbidden")
    assert "not in the call" in body["message"]
    refused(await keys.put_key(waiting, public_key()), 403, "forbidden")  # in the lobby
    refused(await keys.confirm(waiting, 1), 403, "forbidden")

    body = refused(await keys.put_key(stranger, public_key()), 403, "forbidden")
    assert body["message"] == "your invitation is for another summit"
    refused(await http.get(f"{keys.base}/e2ee", headers=stranger.auth), 403, "forbidden")
    refused(await keys.make(stranger, 1, both), 403, "forbidden")
    refused(await keys.confirm(stranger, 1), 403, "forbidden")

    for response in (
        await http.get(f"{keys.base}/e2ee"),
        await http.put(f"{keys.base}/e2ee/public-key", json={"public_key": public_key()}),
        await http.post(f"{keys.base}/e2ee/epochs", json={"epoch": 1, "wraps": both}),
        await http.post(f"{keys.base}/e2ee/confirmations", json={"epoch": 1}),
    ):
        refused(response, 401, "not_authenticated")

    assert await keys.view(ru) == before_view
    assert await keys.audit() == before_audit

    # With a key in use: a second key is refused.
    assert (await keys.make(ru, 1, both)).status_code == 204
    await keys.confirm(ru, 1)
    await keys.confirm(us, 1)
    in_use = await keys.view(ru)
    body = refused(await keys.make(us, 2, both), 409, "conflict")
    assert body["message"] == "no new key is needed now"
    refused(await keys.make(ru, 1, both), 409, "conflict")
    refused(await keys.confirm(ru, 2), 409, "conflict")
    assert await keys.view(ru) == in_use


async def test_a_key_replaced_before_it_went_in_force_leaves_the_clock_quiet(
    http: httpx.AsyncClient, summit: Seeded
) -> None:
    keys = Keys(http, summit)
    ru, us = await keys.coordinators_in_the_call()
    putin = await keys.admitted(ru, "Vladimir Putin")
    for person in (ru, us, putin):
        await keys.put_key(person, public_key())
    made = await keys.make(ru, 1, {ru.id: blob(), us.id: blob(), putin.id: blob()})
    assert made.status_code == 204
    await http.post(f"{keys.base}/leave", headers=putin.auth)  # before anyone confirmed
    assert (await keys.view(ru))["make_key"]
    assert (await keys.make(ru, 2, {ru.id: blob(), us.id: blob()})).status_code == 204
    await keys.confirm(ru, 2)
    await keys.confirm(us, 2)
    view = await keys.view(us)
    assert (view["in_force"], view["pending"], view["make_key"]) == (2, None, False)
    await asyncio.sleep(1.2)  # epoch 1 is now "overdue", though it will never be used
    assert await events_while_idle(http, keys, us, 2.5) == []


async def test_a_key_posted_while_leaving_does_not_outlive_the_leave(
    http: httpx.AsyncClient, summit: Seeded
) -> None:
    keys = Keys(http, summit)
    ru, _us = await keys.coordinators_in_the_call()
    putin = await keys.admitted(ru, "Vladimir Putin")
    for _ in range(20):
        posted, left = await asyncio.gather(
            keys.put_key(putin, public_key()),
            http.post(f"{keys.base}/leave", headers=putin.auth),
        )
        assert left.json()["presence"] == "left"
        assert posted.status_code in (204, 403)
        members = [m["participant_id"] for m in (await keys.view(ru))["members"]]
        assert putin.id not in members, "someone who left is still sent keys"
        await http.post(f"{keys.base}/lobby", headers=putin.auth)
        readmitted = await http.post(f"{keys.base}/participants/{putin.id}/admit", headers=ru.auth)
        assert readmitted.status_code == 200, readmitted.text


async def test_a_browser_that_keeps_changing_keys_is_cut_short(
    http: httpx.AsyncClient, summit: Seeded
) -> None:
    """Every new public key writes the trail and may force a new media key for
    everyone: a grant gets a bucket of such changes, one more every 10 s."""
    keys = Keys(http, summit)
    ru, us = await keys.coordinators_in_the_call()
    answers = []
    for _ in range(60):  # the bucket refills meanwhile: a slow machine needs a few more
        answers.append(await keys.put_key(ru, public_key()))
        if answers[-1].status_code == 429:
            break
    stopped = answers[-1]
    assert (stopped.status_code, stopped.json()["error"]) == (429, "rate_limited"), stopped.text
    assert 1 <= int(stopped.headers["retry-after"]) <= 10
    accepted = [a for a in answers if a.status_code == 204]
    assert len(accepted) == len(answers) - 1 >= 20
    changes = [
        r
        for r in await keys.audit()
        if r["action"] in ("e2ee_public_key", "e2ee_key_changed")
        and r["details"]["participant"] == ru.id
    ]
    assert len(changes) == len(accepted)
    # The other side's browser has a bucket of its own.
    assert (await keys.put_key(us, public_key())).status_code == 204
