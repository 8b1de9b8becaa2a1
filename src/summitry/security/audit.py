"""The audit trail, and what it proves.

Theory of operation:

* Every record's hash is sha256(previous hash || canonical JSON of the record), so
  changing, removing or reordering a record breaks every hash after it (`chain`).
* Every record carries the server's Ed25519 signature over its hash. The signing key
  lives in the data directory, never in the database: whoever can rewrite the database
  but not read that file cannot make a record that verifies (`signature`).
* The summit's row keeps the head, the number and hash of its newest record, written in
  the transaction that appends it; the next record links to that head, not to whatever
  the table holds last. A record removed from the end leaves the head pointing past the
  trail (`head`).
* A receipt is the head signed for a coordinator to keep outside the server. Whoever
  holds the key and the database can rewrite a trail, its signatures and its head
  together; they cannot take back a receipt: the trail must still hold the receipt's
  record with the receipt's hash, so no rewritten, truncated or emptied trail verifies
  against it (`receipt`).

Signed bytes, with a context so a record's signature can never pass for a receipt's:
a record's is `b"summitry audit record\\n" + hash` (64 hex digits); a receipt's is
`b"summitry audit receipt\\n"` followed by the JSON object of its `at`, `hash`, `seq`
and `summit`, keys sorted, no white space, UTF-8. Keys and signatures are written in
base64url without padding (an Ed25519 public key is 32 raw bytes).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

GENESIS = "0" * 64
RECORD_CONTEXT = b"summitry audit record\n"
RECEIPT_CONTEXT = b"summitry audit receipt\n"
RECEIPT_FIELDS = ("summit", "seq", "hash", "at", "signature", "public_key")
SEED_BYTES = 32


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def from_b64url(text: str) -> bytes:
    """Raises ValueError unless `text` is base64url."""
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, UnicodeEncodeError) as error:
        raise ValueError("not base64url") from error


class AuditKey:
    """The server's Ed25519 signing key, made from the 32-byte seed in its data directory."""

    def __init__(self, seed: bytes) -> None:
        self._private = Ed25519PrivateKey.from_private_bytes(seed)
        self.public_key = b64url(self._private.public_key().public_bytes_raw())

    def sign(self, message: bytes) -> str:
        return b64url(self._private.sign(message))


def signed_by(public_key: str, message: bytes, signature: str) -> bool:
    """Whether `signature` is `public_key`'s over `message`; malformed input is not."""
    try:
        key = Ed25519PublicKey.from_public_bytes(from_b64url(public_key))
        key.verify(from_b64url(signature), message)
    except (ValueError, InvalidSignature):
        return False
    return True


@dataclass(frozen=True)
class AuditEntry:
    summit_id: str
    seq: int
    at: datetime
    actor: str
    action: str
    details: Mapping[str, Any]
    prev_hash: str
    hash: str
    signature: str | None


def canonical(
    summit_id: str, seq: int, at: datetime, actor: str, action: str, details: Mapping[str, Any]
) -> bytes:
    body = {
        "summit": summit_id,
        "seq": seq,
        "at": at.isoformat(),
        "actor": actor,
        "action": action,
        "details": details,
    }
    return canonical_json(body)


def canonical_json(body: Mapping[str, Any]) -> bytes:
    """Keys sorted, no white space, UTF-8."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def chain_hash(prev_hash: str, body: bytes) -> str:
    return hashlib.sha256(prev_hash.encode() + body).hexdigest()


def seal(
    summit_id: str,
    seq: int,
    at: datetime,
    actor: str,
    action: str,
    details: Mapping[str, Any],
    prev_hash: str,
    key: AuditKey,
) -> AuditEntry:
    """The record that follows `prev_hash`, hashed and signed."""
    digest = chain_hash(prev_hash, canonical(summit_id, seq, at, actor, action, details))
    signature = key.sign(RECORD_CONTEXT + digest.encode())
    return AuditEntry(summit_id, seq, at, actor, action, details, prev_hash, digest, signature)


@dataclass(frozen=True)
class Head:
    """The newest record of a summit's trail as its row keeps it (0 and GENESIS: none)."""

    seq: int
    hash: str


@dataclass(frozen=True)
class Receipt:
    summit: str
    seq: int
    hash: str
    at: str  # the time of record `seq`, ISO 8601, exactly as signed
    signature: str
    public_key: str

    def document(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in RECEIPT_FIELDS}


def receipt_message(summit: str, seq: int, hash: str, at: str) -> bytes:
    return RECEIPT_CONTEXT + canonical_json({"summit": summit, "seq": seq, "hash": hash, "at": at})


def issue_receipt(head: AuditEntry, key: AuditKey) -> Receipt:
    """The receipt of `head`, the newest record of its summit's trail."""
    at = head.at.isoformat()
    signature = key.sign(receipt_message(head.summit_id, head.seq, head.hash, at))
    return Receipt(head.summit_id, head.seq, head.hash, at, signature, key.public_key)


class BadReceipt(ValueError):
    """A receipt file that cannot be used: the message says why."""


def read_receipt(text: str, summit_id: str) -> Receipt:
    """The receipt in `text`, if it is one of `summit_id` signed by the key it names."""
    try:
        document = json.loads(text)
    except ValueError as error:
        raise BadReceipt("it is not JSON") from error
    if not isinstance(document, dict) or set(document) != set(RECEIPT_FIELDS):
        raise BadReceipt(f"it is not a receipt: a receipt has exactly {', '.join(RECEIPT_FIELDS)}")
    seq = document["seq"]
    strings = [document[name] for name in RECEIPT_FIELDS if name != "seq"]
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
        raise BadReceipt("its seq is not a record number")
    if not all(isinstance(value, str) for value in strings):
        raise BadReceipt("its summit, hash, at, signature and public_key must be strings")
    receipt = Receipt(**document)
    if receipt.summit != summit_id:
        raise BadReceipt(f"it is a receipt of summit {receipt.summit!r}, not {summit_id!r}")
    message = receipt_message(receipt.summit, receipt.seq, receipt.hash, receipt.at)
    if not signed_by(receipt.public_key, message, receipt.signature):
        raise BadReceipt("its signature does not match its content")
    return receipt


@dataclass(frozen=True)
class Problem:
    check: str  # chain, signature, head or receipt
    seq: int
    message: str


@dataclass(frozen=True)
class Verdict:
    records: int
    problems: tuple[Problem, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems

    def holds(self, check: str) -> bool:
        return all(problem.check != check for problem in self.problems)


def verify(
    entries: Sequence[AuditEntry],
    public_key: str,
    head: Head,
    receipts: Iterable[Receipt] = (),
) -> Verdict:
    """Every check of the trail; each names the first record it finds wrong."""
    found = [
        chain_problem(entries),
        signature_problem(entries, public_key),
        head_problem(entries, head),
        *(receipt_problem(entries, receipt, public_key) for receipt in receipts),
    ]
    return Verdict(len(entries), tuple(problem for problem in found if problem is not None))


def chain_problem(entries: Sequence[AuditEntry]) -> Problem | None:
    """Walks the chain from the start: numbering, links and hashes."""
    prev = GENESIS
    for expected_seq, entry in enumerate(entries, start=1):
        if entry.seq != expected_seq:
            return Problem("chain", entry.seq, f"expected record {expected_seq}, found {entry.seq}")
        if entry.prev_hash != prev:
            return Problem("chain", entry.seq, "does not link to the record before it")
        body = canonical(
            entry.summit_id, entry.seq, entry.at, entry.actor, entry.action, entry.details
        )
        if chain_hash(prev, body) != entry.hash:
            return Problem("chain", entry.seq, "its content does not match its hash")
        prev = entry.hash
    return None


def signature_problem(entries: Sequence[AuditEntry], public_key: str) -> Problem | None:
    for entry in entries:
        if entry.signature is None:
            return Problem("signature", entry.seq, "it is not signed")
        if not signed_by(public_key, RECORD_CONTEXT + entry.hash.encode(), entry.signature):
            return Problem("signature", entry.seq, "its signature is not the server key's")
    return None


def head_problem(entries: Sequence[AuditEntry], head: Head) -> Problem | None:
    last = Head(entries[-1].seq, entries[-1].hash) if entries else Head(0, GENESIS)
    if last == head:
        return None
    if last.seq < head.seq:
        return Problem(
            "head",
            head.seq,
            f"the trail ends at record {last.seq} but the summit's head is record {head.seq}: "
            "records were removed",
        )
    return Problem(
        "head", last.seq, f"the trail's last record is not the summit's head (record {head.seq})"
    )


def receipt_problem(
    entries: Sequence[AuditEntry], receipt: Receipt, public_key: str
) -> Problem | None:
    held = f"a receipt holds record {receipt.seq}"
    if receipt.public_key != public_key:
        return Problem(
            "receipt",
            receipt.seq,
            f"{held}, signed with another key than the server's: the key was replaced",
        )
    if not entries:
        return Problem("receipt", receipt.seq, f"the trail is empty but {held}")
    if entries[-1].seq < receipt.seq:
        return Problem(
            "receipt",
            receipt.seq,
            f"the trail ends at record {entries[-1].seq} but {held}: it was truncated",
        )
    entry = next((e for e in entries if e.seq == receipt.seq), None)
    if entry is None:
        return Problem("receipt", receipt.seq, f"the trail has no record {receipt.seq}; {held}")
    if entry.hash != receipt.hash:
        return Problem(
            "receipt",
            receipt.seq,
            f"record {receipt.seq} is not the one the receipt holds: the trail was rewritten",
        )
    return None
