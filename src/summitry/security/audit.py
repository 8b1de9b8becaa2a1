"""The tamper-evident audit chain: each record's hash is
sha256(previous hash || canonical JSON of the record), so changing, removing or
reordering any record breaks every hash after it."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

GENESIS = "0" * 64


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
) -> AuditEntry:
    digest = chain_hash(prev_hash, canonical(summit_id, seq, at, actor, action, details))
    return AuditEntry(summit_id, seq, at, actor, action, details, prev_hash, digest)


@dataclass(frozen=True)
class Verdict:
    ok: bool
    records: int
    broken_seq: int | None = None
    problem: str | None = None


def verify(entries: Iterable[AuditEntry]) -> Verdict:
    """Walks the chain from the start; the first record that does not hold is named."""
    prev = GENESIS
    count = 0
    for expected_seq, entry in enumerate(entries, start=1):
        count = expected_seq
        if entry.seq != expected_seq:
            return Verdict(
                False, count, entry.seq, f"expected record {expected_seq}, found {entry.seq}"
            )
        if entry.prev_hash != prev:
            return Verdict(False, count, entry.seq, "does not link to the record before it")
        body = canonical(
            entry.summit_id, entry.seq, entry.at, entry.actor, entry.action, entry.details
        )
        if chain_hash(prev, body) != entry.hash:
            return Verdict(False, count, entry.seq, "its content does not match its hash")
        prev = entry.hash
    return Verdict(True, count)
