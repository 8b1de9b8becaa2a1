"""A summit's audit trail as it is checked and vouched for: the trail with every check's
verdict (`security/audit.py`), the receipts coordinators keep of its head, and the
record of the recordings once they are sealed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from summitry.control.caller import MEDIA_ACTOR, require_coordinator, require_summit
from summitry.control.media import RecordingFile
from summitry.control.unit import UnitOfWork
from summitry.domain.errors import Conflict
from summitry.security import audit
from summitry.security.grants import Grant


@dataclass(frozen=True)
class CheckedTrail:
    head: audit.Head
    entries: list[audit.AuditEntry]
    verdict: audit.Verdict
    public_key: str


class AuditTrail:
    def __init__(self, work: UnitOfWork) -> None:
        self._work = work

    async def check(self, summit_id: str, receipts: Sequence[audit.Receipt] = ()) -> CheckedTrail:
        """The trail, checked against the server's key, the summit's head and `receipts`."""
        public_key = self._work.audit_key.public_key
        async with self._work.reading() as repo:
            head, entries = await repo.audit_trail(summit_id)
        verdict = audit.verify(entries, public_key, head, receipts)
        return CheckedTrail(head, entries, verdict, public_key)

    async def receipt(self, grant: Grant, summit_id: str) -> audit.Receipt:
        """A coordinator's receipt of the trail's head, to keep outside the server."""
        require_summit(grant, summit_id)
        require_coordinator(grant)
        async with self._work.reading() as repo:
            head, entries = await repo.audit_trail(summit_id)
        newest = entries[-1] if entries else None
        if newest is None or audit.Head(newest.seq, newest.hash) != head:
            raise Conflict(
                "the audit trail does not end at the summit's head; the operator should run "
                "summitry audit verify"
            )
        return audit.issue_receipt(newest, self._work.audit_key)

    async def recordings_sealed(self, summit_id: str, files: list[RecordingFile]) -> None:
        """The recordings of the public part are final: their checksums join the trail."""
        now = self._work.clock.now()
        async with self._work.command(summit_id) as repo:
            sides = await repo.sides(summit_id)
            await repo.audit(
                summit_id,
                MEDIA_ACTOR,
                "recordings_sealed",
                {
                    "recordings": [
                        {
                            "side": sides[file.position].id,
                            "kind": file.kind,
                            "sha256": file.sha256,
                            "bytes": file.bytes,
                        }
                        for file in files
                    ]
                },
                now,
            )
