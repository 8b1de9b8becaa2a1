"""Each side's statement after the talks, or its explicit "no statement"."""

from __future__ import annotations

import hashlib
from datetime import datetime

from summitry.control.caller import CallerContext, actor_of, require_coordinator, require_summit
from summitry.control.events import Announce
from summitry.control.unit import UnitOfWork
from summitry.control.views import ReadoutView, readout_views
from summitry.domain.errors import Conflict, IllegalTransition
from summitry.domain.events import ReadoutPublished
from summitry.domain.model import MAX_READOUT, require_text
from summitry.domain.phases import Phase
from summitry.domain.times import require_aware
from summitry.security.grants import Grant
from summitry.store.models import ReadoutRow


class Readouts:
    def __init__(self, work: UnitOfWork, announce: Announce) -> None:
        self._work = work
        self._announce = announce

    async def publish(
        self, grant: Grant, summit_id: str, statement: str | None, embargo_until: datetime | None
    ) -> ReadoutView:
        """The side's statement after the talks; `None` publishes "no statement"."""
        require_summit(grant, summit_id)
        require_coordinator(grant)
        if statement is not None:
            require_text(statement, "statement", MAX_READOUT)
        if embargo_until is not None:
            embargo_until = require_aware(embargo_until, "embargo_until")
        now = self._work.clock.now()
        async with self._work.command(summit_id) as repo:
            row = await repo.summit(summit_id)
            if row.phase != Phase.ENDED.value:
                raise IllegalTransition("readouts are published once the summit has ended")
            if await repo.readout(summit_id, grant.side_id) is not None:
                raise Conflict("your side has already published its readout")
            readout = ReadoutRow(
                summit_id=summit_id,
                side_id=grant.side_id,
                text=statement.strip() if statement else None,
                embargo_until=embargo_until,
                published_at=now,
            )
            repo.add(readout)
            await repo.audit(
                summit_id,
                actor_of(grant),
                "readout_published",
                {
                    "side": grant.side_id,
                    "no_statement": readout.text is None,
                    "text_sha256": (
                        None
                        if readout.text is None
                        else hashlib.sha256(readout.text.encode()).hexdigest()
                    ),
                    "embargo_until": embargo_until.isoformat() if embargo_until else None,
                },
                now,
            )
            sides = await repo.sides(summit_id)
        self._announce(summit_id, ReadoutPublished(grant.side_id))
        return readout_views([readout], sides)[0]

    async def of(self, grant: Grant, summit_id: str) -> list[ReadoutView]:
        async with self._work.reading() as repo:
            await CallerContext.reader(repo, grant, summit_id)
            return readout_views(await repo.readouts(summit_id), await repo.sides(summit_id))
