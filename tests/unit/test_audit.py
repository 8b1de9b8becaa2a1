"""The audit trail as pure functions: the chain, each record's signature, the summit's
head, and receipts, against each way of rewriting a trail."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from summitry.security import audit

NOW = datetime(2021, 12, 7, 12, tzinfo=UTC)
KEY = audit.AuditKey(bytes(range(32)))
# Whoever holds the database but not the server's key signs with a key of their own.
FORGER = audit.AuditKey(b"f" * 32)
SUMMIT = "summit-1"


def chain(count: int, key: audit.AuditKey = KEY) -> list[audit.AuditEntry]:
    return extend([], count, key)


def extend(
    entries: list[audit.AuditEntry], count: int, key: audit.AuditKey = KEY
) -> list[audit.AuditEntry]:
    """`entries` and `count` records more, sealed after the last one as the server does."""
    entries = list(entries)
    for _ in range(count):
        seq = len(entries) + 1
        prev = entries[-1].hash if entries else audit.GENESIS
        entries.append(
            audit.seal(
                SUMMIT,
                seq,
                NOW + timedelta(seconds=seq),
                "coordinator:p-1",
                "cut",
                {"n": seq, "to": "private"},
                prev,
                key,
            )
        )
    return entries


def without(
    entries: list[audit.AuditEntry], seq: int, key: audit.AuditKey
) -> list[audit.AuditEntry]:
    """The attack: record `seq` deleted and every later one renumbered and resealed."""
    kept = entries[: seq - 1]
    for entry in entries[seq:]:
        prev = kept[-1].hash if kept else audit.GENESIS
        kept.append(
            audit.seal(
                entry.summit_id,
                len(kept) + 1,
                entry.at,
                entry.actor,
                entry.action,
                entry.details,
                prev,
                key,
            )
        )
    return kept


def head_of(entries: list[audit.AuditEntry]) -> audit.Head:
    return (
        audit.Head(entries[-1].seq, entries[-1].hash) if entries else audit.Head(0, audit.GENESIS)
    )


def verify(
    entries: list[audit.AuditEntry],
    head: audit.Head | None = None,
    receipts: tuple[audit.Receipt, ...] = (),
) -> audit.Verdict:
    """As the server verifies: its own key, the head its row keeps (by default the one
    that matches `entries`, as a rewriter who also moves the head leaves it)."""
    return audit.verify(entries, KEY.public_key, head or head_of(entries), receipts)


def checks(verdict: audit.Verdict) -> list[tuple[str, int]]:
    return [(problem.check, problem.seq) for problem in verdict.problems]


def test_an_intact_trail_verifies_with_its_head_and_receipt() -> None:
    entries = chain(12)
    receipt = audit.issue_receipt(entries[-1], KEY)
    assert verify(entries, receipts=(receipt,)) == audit.Verdict(12)
    assert verify([], audit.Head(0, audit.GENESIS)) == audit.Verdict(0)


def test_each_record_is_signed_over_its_hash_with_the_servers_key() -> None:
    entry = chain(1)[0]
    assert entry.signature is not None
    assert audit.signed_by(
        KEY.public_key, b"summitry audit record\n" + entry.hash.encode(), entry.signature
    )
    assert not audit.signed_by(
        FORGER.public_key, audit.RECORD_CONTEXT + entry.hash.encode(), entry.signature
    )
    assert len(audit.from_b64url(KEY.public_key)) == 32


def test_a_changed_record_is_named() -> None:
    entries = chain(5)
    entries[2] = replace(entries[2], details={"n": 3, "to": "public"})
    verdict = verify(entries)
    assert not verdict.ok
    assert verdict.problems == (audit.Problem("chain", 3, "its content does not match its hash"),)


def test_a_tampered_signature_is_named() -> None:
    entries = chain(5)
    signature = audit.from_b64url(entries[3].signature or "")
    flipped = audit.b64url(bytes([signature[0] ^ 1]) + signature[1:])
    entries[3] = replace(entries[3], signature=flipped)
    assert verify(entries).problems == (
        audit.Problem("signature", 4, "its signature is not the server key's"),
    )
    entries[3] = replace(entries[3], signature="not base64url!")
    assert checks(verify(entries)) == [("signature", 4)]
    entries[3] = replace(entries[3], signature=None)
    assert verify(entries).problems == (audit.Problem("signature", 4, "it is not signed"),)


def test_a_deleted_record_with_the_tail_resealed_without_the_key_is_caught() -> None:
    entries = chain(12)
    receipt = audit.issue_receipt(entries[-1], KEY)
    # Record 11 deleted, the tail renumbered and resealed: the chain holds again...
    rewritten = without(entries, 11, FORGER)
    assert audit.chain_problem(rewritten) is None
    # ...but record 11 is not signed by the server, the head is not the trail's end, and
    # the receipt's record 12 is gone.
    assert checks(verify(rewritten, head_of(entries), (receipt,))) == [
        ("signature", 11),
        ("head", 12),
        ("receipt", 12),
    ]


def test_a_deleted_record_resealed_with_the_key_is_caught_by_the_head() -> None:
    entries = chain(12)
    rewritten = without(entries, 11, KEY)  # the key stolen too, the head left as it was
    verdict = verify(rewritten, head_of(entries))
    assert verdict.problems == (
        audit.Problem(
            "head",
            12,
            "the trail ends at record 11 but the summit's head is record 12: records were removed",
        ),
    )


def test_a_rewrite_with_the_key_and_the_head_is_caught_by_a_receipt() -> None:
    entries = chain(12)
    receipt = audit.issue_receipt(entries[10], KEY)  # kept by a coordinator at record 11
    # Record 11 deleted and the tail resealed with the server's key, the head moved to
    # match, the trail grown back: nothing in the server gives it away.
    rewritten = extend(without(entries, 11, KEY), 1)
    assert verify(rewritten) == audit.Verdict(12)
    assert verify(rewritten, receipts=(receipt,)).problems == (
        audit.Problem(
            "receipt", 11, "record 11 is not the one the receipt holds: the trail was rewritten"
        ),
    )


def test_a_truncated_trail_is_caught_by_a_receipt() -> None:
    entries = chain(12)
    receipt = audit.issue_receipt(entries[-1], KEY)
    truncated = entries[:9]
    assert verify(truncated) == audit.Verdict(9)  # the head moved back with it
    assert verify(truncated, receipts=(receipt,)).problems == (
        audit.Problem(
            "receipt",
            12,
            "the trail ends at record 9 but a receipt holds record 12: it was truncated",
        ),
    )
    assert checks(verify(truncated, head_of(entries))) == [("head", 12)]


def test_an_emptied_trail_is_caught_by_a_receipt() -> None:
    entries = chain(3)
    receipt = audit.issue_receipt(entries[0], KEY)
    assert verify([]) == audit.Verdict(0)
    assert verify([], receipts=(receipt,)).problems == (
        audit.Problem("receipt", 1, "the trail is empty but a receipt holds record 1"),
    )
    assert verify([], head_of(entries)).problems == (
        audit.Problem(
            "head",
            3,
            "the trail ends at record 0 but the summit's head is record 3: records were removed",
        ),
    )


def test_a_receipt_from_another_key_means_the_key_was_replaced() -> None:
    entries = chain(4, FORGER)
    receipt = audit.issue_receipt(chain(4)[-1], KEY)
    verdict = audit.verify(entries, FORGER.public_key, head_of(entries), (receipt,))
    assert verdict.problems == (
        audit.Problem(
            "receipt",
            4,
            "a receipt holds record 4, signed with another key than the server's: "
            "the key was replaced",
        ),
    )


def test_a_head_ahead_of_a_different_last_record_is_named() -> None:
    entries = chain(3)
    assert verify(entries, audit.Head(3, "e" * 64)).problems == (
        audit.Problem("head", 3, "the trail's last record is not the summit's head (record 3)"),
    )


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
    verdict = verify(entries)
    assert not verdict.ok
    assert verdict.problems[0].seq == index + 1


def test_a_receipt_is_the_signed_head_and_reads_back() -> None:
    entries = chain(3)
    receipt = audit.issue_receipt(entries[-1], KEY)
    assert receipt.document() == {
        "summit": SUMMIT,
        "seq": 3,
        "hash": entries[-1].hash,
        "at": "2021-12-07T12:00:03+00:00",
        "signature": receipt.signature,
        "public_key": KEY.public_key,
    }
    signed = (
        b"summitry audit receipt\n"
        + json.dumps(
            {"at": receipt.at, "hash": receipt.hash, "seq": 3, "summit": SUMMIT},
            separators=(",", ":"),
        ).encode()
    )
    assert audit.signed_by(KEY.public_key, signed, receipt.signature)
    # A record's signature never passes for a receipt's, nor the other way round.
    assert receipt.signature != entries[-1].signature
    assert audit.read_receipt(json.dumps(receipt.document(), indent=2), SUMMIT) == receipt


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: "{not json", "it is not JSON"),
        (lambda d: [d], "it is not a receipt"),
        (lambda d: {**d, "extra": 1}, "it is not a receipt"),
        (lambda d: {k: v for k, v in d.items() if k != "hash"}, "it is not a receipt"),
        (lambda d: {**d, "seq": "3"}, "its seq is not a record number"),
        (lambda d: {**d, "seq": True}, "its seq is not a record number"),
        (lambda d: {**d, "seq": 0}, "its seq is not a record number"),
        (lambda d: {**d, "hash": 3}, "must be strings"),
        (lambda d: {**d, "summit": "summit-2"}, "a receipt of summit 'summit-2', not 'summit-1'"),
        (lambda d: {**d, "seq": 2}, "its signature does not match its content"),
        (lambda d: {**d, "hash": "0" * 64}, "its signature does not match its content"),
        (lambda d: {**d, "at": "2021-12-07T12:00:03Z"}, "its signature does not match"),
        (lambda d: {**d, "public_key": FORGER.public_key}, "its signature does not match"),
        (lambda d: {**d, "public_key": "~"}, "its signature does not match"),
        (lambda d: {**d, "signature": "AAAA"}, "its signature does not match"),
    ],
)
def test_a_bad_receipt_is_refused_with_its_reason(
    change: Callable[[dict[str, Any]], object], message: str
) -> None:
    document = audit.issue_receipt(chain(3)[-1], KEY).document()
    changed = change(document)
    text = changed if isinstance(changed, str) else json.dumps(changed)
    with pytest.raises(audit.BadReceipt, match=message):
        audit.read_receipt(text, SUMMIT)
