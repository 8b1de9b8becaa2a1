"""The audit trail end to end: coordinators' receipts over the API, the public key on the
public page, and `summitry audit verify` against a real database that the tests rewrite
with SQL as someone with access to it would."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from summitry.config import audit_seed
from summitry.security import audit
from tests.api.test_api import summitry_cli
from tests.servers import Seeded, Server, bearer, create_summit, invited, operator


def server_key(server: Server) -> audit.AuditKey:
    """The server's own signing key: the strongest attacker has stolen it too."""
    return audit.AuditKey(audit_seed(server.data_dir / "audit.key"))


async def trail_of(http: httpx.AsyncClient, summit: Seeded) -> dict[str, Any]:
    response = await http.get(f"/api/v1/summits/{summit.id}/audit", headers=operator())
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def receipt_file(
    http: httpx.AsyncClient, summit: Seeded, token: str, folder: Path
) -> tuple[Path, dict[str, Any]]:
    response = await http.get(f"/api/v1/summits/{summit.id}/audit/receipt", headers=bearer(token))
    assert response.status_code == 200, response.text
    receipt: dict[str, Any] = response.json()
    path = folder / f"summitry-receipt-{summit.id}-{receipt['seq']}.json"
    path.write_text(response.text)
    return path, receipt


async def with_records(http: httpx.AsyncClient, summit: Seeded, count: int) -> None:
    """The summit's trail grown to `count` records: the lobby opens, then invitations."""
    base = f"/api/v1/summits/{summit.id}"
    await http.post(f"{base}/actions/open_lobby", headers=bearer(summit.ru_token))
    for n in range(count - 2):
        await invited(http, summit.id, summit.ru_token, f"Delegate {n}", "delegate")
    assert (await trail_of(http, summit))["records"] == count


def database(server: Server) -> sqlite3.Connection:
    return sqlite3.connect(server.data_dir / "summitry.db")


def delete_and_reseal(server: Server, summit_id: str, seq: int, key: audit.AuditKey) -> None:
    """The reproduced attack: record `seq` deleted, every later record renumbered and
    resealed with `audit.seal`, and the summit's head moved to the new end."""
    with database(server) as db:
        rows = db.execute(
            "SELECT seq, at, actor, action, details, prev_hash FROM audit_records "
            "WHERE summit_id = ? ORDER BY seq",
            (summit_id,),
        ).fetchall()
        db.execute("DELETE FROM audit_records WHERE summit_id = ? AND seq = ?", (summit_id, seq))
        prev = rows[seq - 1][5]
        new_seq = seq - 1
        for old_seq, at, actor, action, details, _ in rows[seq:]:
            new_seq += 1
            entry = audit.seal(
                summit_id,
                new_seq,
                datetime.fromisoformat(at).replace(tzinfo=UTC),
                actor,
                action,
                json.loads(details),
                prev,
                key,
            )
            db.execute(
                "UPDATE audit_records SET seq = ?, prev_hash = ?, hash = ?, signature = ? "
                "WHERE summit_id = ? AND seq = ?",
                (new_seq, prev, entry.hash, entry.signature, summit_id, old_seq),
            )
            prev = entry.hash
        move_head(db, summit_id, new_seq, prev)


def move_head(db: sqlite3.Connection, summit_id: str, seq: int, head: str) -> None:
    db.execute(
        "UPDATE summits SET audit_seq = ?, audit_head = ? WHERE id = ?", (seq, head, summit_id)
    )


def truncate(server: Server, summit_id: str, keep: int) -> None:
    with database(server) as db:
        db.execute("DELETE FROM audit_records WHERE summit_id = ? AND seq > ?", (summit_id, keep))
        (head,) = db.execute(
            "SELECT hash FROM audit_records WHERE summit_id = ? AND seq = ?", (summit_id, keep)
        ).fetchone()
        move_head(db, summit_id, keep, head)


def empty(server: Server, summit_id: str) -> None:
    with database(server) as db:
        db.execute("DELETE FROM audit_records WHERE summit_id = ?", (summit_id,))
        move_head(db, summit_id, 0, audit.GENESIS)


async def verify_cli(server: Server, summit_id: str, *receipts: Path) -> tuple[int, str, str]:
    options = [arg for path in receipts for arg in ("--receipt", str(path))]
    return await summitry_cli(
        "audit", "verify", summit_id, "--data-dir", str(server.data_dir), *options
    )


async def test_coordinators_get_a_receipt_of_the_head_and_nobody_else(
    http: httpx.AsyncClient, server: Server, summit: Seeded
) -> None:
    url = f"/api/v1/summits/{summit.id}/audit/receipt"
    await http.post(
        f"/api/v1/summits/{summit.id}/actions/open_lobby", headers=bearer(summit.ru_token)
    )
    trail = await trail_of(http, summit)
    for token in (summit.ru_token, summit.us_token):
        response = await http.get(url, headers=bearer(token))
        assert response.status_code == 200, response.text
        receipt = response.json()
        assert receipt == {
            "summit": summit.id,
            "seq": 2,
            "hash": trail["head"]["hash"],
            "at": receipt["at"],
            "signature": receipt["signature"],
            "public_key": server_key(server).public_key,
        }
        assert datetime.fromisoformat(receipt["at"]) == datetime.fromisoformat(
            trail["trail"][-1]["at"]
        )
        assert audit.read_receipt(response.text, summit.id).seq == 2
    principal = await invited(http, summit.id, summit.ru_token, "Vladimir Putin", "principal")
    refused = await http.get(url, headers=bearer(principal["token"]))
    assert (refused.status_code, refused.json()["error"]) == (403, "forbidden")
    other = await create_summit(http)
    refused = await http.get(url, headers=bearer(other.ru_token))
    assert (refused.status_code, refused.json()["message"]) == (
        403,
        "your invitation is for another summit",
    )
    assert (await http.get(url)).status_code == 401
    spec = (await http.get("/openapi.json")).json()
    answers = spec["paths"]["/api/v1/summits/{summit_id}/audit/receipt"]["get"]["responses"]
    assert {"200", "401", "403", "404", "409"} <= set(answers)
    assert answers["403"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorOut"
    }


async def test_the_public_page_and_the_trail_publish_the_audit_key(
    http: httpx.AsyncClient, server: Server, summit: Seeded
) -> None:
    public = (await http.get(f"/api/v1/public/{summit.slug}")).json()
    key = server_key(server).public_key
    assert public["audit_public_key"] == key
    assert len(audit.from_b64url(key)) == 32
    trail = await trail_of(http, summit)
    assert (trail["public_key"], trail["ok"], trail["signatures_ok"], trail["head_ok"]) == (
        key,
        True,
        True,
        True,
    )
    assert trail["head"] == {"seq": 1, "hash": trail["trail"][0]["hash"]}
    created = trail["trail"][0]["details"]
    assert (created["go_live_consent"], created["public_seconds"]) == ("both", 600)
    assert (server.data_dir / "audit.key").stat().st_mode & 0o777 == 0o600


async def test_a_record_deleted_and_resealed_without_the_key_is_caught(
    http: httpx.AsyncClient, server: Server, summit: Seeded
) -> None:
    await with_records(http, summit, 12)
    with database(server) as db:
        (head_before,) = db.execute(
            "SELECT audit_head FROM summits WHERE id = ?", (summit.id,)
        ).fetchone()
    delete_and_reseal(server, summit.id, 11, audit.AuditKey(b"x" * 32))
    with database(server) as db:  # the head is the server's; it is left alone this time
        move_head(db, summit.id, 12, head_before)
    trail = await trail_of(http, summit)
    assert (trail["ok"], trail["chain_ok"], trail["signatures_ok"], trail["head_ok"]) == (
        False,
        True,
        False,
        False,
    )
    assert await verify_cli(server, summit.id) == (
        1,
        "",
        "BROKEN at record 11 (signature): its signature is not the server key's\n"
        "BROKEN at record 12 (head): the trail ends at record 11 but the summit's head is "
        "record 12: records were removed",
    )


@pytest.mark.parametrize(
    ("attack", "found"),
    [
        (
            lambda server, summit_id: delete_and_reseal(server, summit_id, 11, server_key(server)),
            "BROKEN at record 12 (receipt): the trail ends at record 11 but a receipt holds "
            "record 12: it was truncated",
        ),
        (
            lambda server, summit_id: truncate(server, summit_id, 5),
            "BROKEN at record 12 (receipt): the trail ends at record 5 but a receipt holds "
            "record 12: it was truncated",
        ),
        (
            empty,
            "BROKEN at record 12 (receipt): the trail is empty but a receipt holds record 12",
        ),
    ],
    ids=["deleted-and-resealed", "truncated", "emptied"],
)
async def test_a_rewrite_that_fools_the_server_is_caught_by_a_receipt(
    http: httpx.AsyncClient,
    server: Server,
    summit: Seeded,
    tmp_path: Path,
    attack: Any,
    found: str,
) -> None:
    """With the database and the server's key, a trail, its signatures and its head can
    be rewritten together: only a receipt kept outside the server shows it."""
    await with_records(http, summit, 12)
    receipt, _ = await receipt_file(http, summit, summit.us_token, tmp_path)
    attack(server, summit.id)
    assert (await trail_of(http, summit))["ok"] is True  # chain, signatures and head hold
    assert await verify_cli(server, summit.id, receipt) == (1, "", found)


async def test_a_trail_grown_back_past_the_receipt_is_still_caught(
    http: httpx.AsyncClient, server: Server, summit: Seeded, tmp_path: Path
) -> None:
    await with_records(http, summit, 12)
    receipt, _ = await receipt_file(http, summit, summit.ru_token, tmp_path)
    delete_and_reseal(server, summit.id, 11, server_key(server))
    await invited(http, summit.id, summit.ru_token, "Sergey Lavrov", "delegate")
    trail = await trail_of(http, summit)
    assert (trail["ok"], trail["records"]) == (True, 12)
    assert await verify_cli(server, summit.id, receipt) == (
        1,
        "",
        "BROKEN at record 12 (receipt): record 12 is not the one the receipt holds: "
        "the trail was rewritten",
    )


async def test_a_bad_receipt_file_is_an_error_of_the_command(
    http: httpx.AsyncClient, server: Server, summit: Seeded, tmp_path: Path
) -> None:
    good, document = await receipt_file(http, summit, summit.ru_token, tmp_path)
    other = await create_summit(http)
    elsewhere, _ = await receipt_file(http, other, other.ru_token, tmp_path)
    not_json = tmp_path / "not.json"
    not_json.write_text("a receipt, honestly")
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps({**document, "seq": document["seq"] + 1}))
    missing = tmp_path / "missing.json"
    for path, reason in (
        (not_json, f"{not_json} is not a usable receipt: it is not JSON"),
        (
            elsewhere,
            f"{elsewhere} is not a usable receipt: it is a receipt of summit {other.id!r}, "
            f"not {summit.id!r}",
        ),
        (forged, f"{forged} is not a usable receipt: its signature does not match its content"),
    ):
        assert await verify_cli(server, summit.id, good, path) == (2, "", f"summitry: {reason}")
    code, out, err = await verify_cli(server, summit.id, missing)
    assert (code, out) == (2, "")
    assert err.startswith(f"summitry: cannot read the receipt {missing}: ")
    assert (await verify_cli(server, summit.id, good))[1].endswith(", 1 receipt(s) held")
