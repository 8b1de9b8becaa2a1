"""The summit's phases: coordinators' actions, forced cuts and the summit's own clock.
What may happen is the phase machine's (`domain/phases.py`); this service loads, applies,
persists with the audit record, then carries out the effects and announces the change."""

from __future__ import annotations

import logging
import time

from summitry.control.caller import CLOCK_ACTOR, actor_of, require_coordinator, require_summit
from summitry.control.consoles import Consoles
from summitry.control.events import Announce
from summitry.control.keys import KeyExchange
from summitry.control.media import BroadcastControl
from summitry.control.unit import UnitOfWork
from summitry.control.views import SummitView, phase_changed, summit_view
from summitry.domain import phases
from summitry.domain.errors import IllegalTransition, StaleVersion
from summitry.security.grants import Grant
from summitry.store.repository import state_of, store_state

log = logging.getLogger(__name__)


class PhaseControl:
    def __init__(
        self,
        work: UnitOfWork,
        announce: Announce,
        keys: KeyExchange,
        consoles: Consoles,
        media: BroadcastControl | None,
    ) -> None:
        self._work = work
        self._announce = announce
        self._keys = keys
        self._consoles = consoles
        self._media = media

    async def heartbeat(self, grant: Grant, summit_id: str) -> None:
        """A coordinator's console reports in; while live, its silence cuts the broadcast."""
        require_summit(grant, summit_id)
        require_coordinator(grant)
        self._consoles.report(summit_id, grant.participant_id, self._work.clock.now())

    async def act(
        self, grant: Grant, summit_id: str, action: str, expected_version: int | None
    ) -> SummitView:
        """A coordinator's phase action, refused if it acts on a stale version."""
        require_summit(grant, summit_id)
        require_coordinator(grant)
        event = phases.coordinator_event(action, grant.side_id)
        return await self._apply(summit_id, event, actor_of(grant), expected_version)

    async def fail(self, summit_id: str, reason: phases.CutReason) -> SummitView:
        """The media plane or a lost control connection forces the cut."""
        return await self._apply(
            summit_id, phases.Cut(reason=reason), f"system:{reason.value}", None
        )

    async def tick(self) -> list[str]:
        """Raises the events the clock makes due; returns the summits that moved."""
        now = self._work.clock.now()
        async with self._work.reading() as repo:
            rows = await repo.clock_may_move(now)
            sides = await repo.sides_of([row.id for row in rows])
            states = [(row, state_of(row, sides[row.id])) for row in rows]
        moved = []
        for row, state in states:
            event = phases.due_event(state, now, row.empty_since, self._consoles.last_seen(row.id))
            if event is None:
                continue
            try:
                await self._apply(row.id, event, CLOCK_ACTOR, row.version)
            except (IllegalTransition, StaleVersion):
                continue  # someone acted first; the next tick looks again
            moved.append(row.id)
        for summit_id in set(await self._keys.overdue()):
            await self._keys.settle(summit_id)
        return moved

    async def _apply(
        self, summit_id: str, event: phases.Event, actor: str, expected_version: int | None
    ) -> SummitView:
        now = self._work.clock.now()
        started = time.perf_counter()
        async with self._work.command(summit_id) as repo:
            row = await repo.summit(summit_id)
            if expected_version is not None and expected_version != row.version:
                raise StaleVersion(
                    f"the summit changed since you looked (version {row.version}, you acted on "
                    f"{expected_version}); reload and decide again"
                )
            before = row.phase
            sides = await repo.sides(summit_id)
            transition = phases.apply(state_of(row, sides), event, now)
            store_state(row, transition.state)
            if (
                transition.state.phase is phases.Phase.PRIVATE
                and row.empty_since is None
                and await repo.call_is_empty(summit_id)
            ):
                row.empty_since = now
            await repo.audit(
                summit_id,
                actor,
                phases.EVENT_NAMES[type(event)],
                {
                    "from": before,
                    "to": row.phase,
                    "version": row.version,
                    "reason": event.reason.value if isinstance(event, phases.Cut) else None,
                    "consents": sorted(row.consents),
                    "effects": [type(effect).__name__ for effect in transition.effects],
                },
                now,
            )
        persisted = time.perf_counter()
        view = summit_view(row, sides, None, now)
        told = None
        for effect in transition.effects:
            if self._media is not None:
                await self._media.carry_out(summit_id, effect)
            if isinstance(effect, phases.StopBroadcast):
                # The forwards are stopped: the participants hear of the cut before
                # anything else is done, and seal their frames from then on.
                self._announce(summit_id, phase_changed(view, now))
                told = time.perf_counter()
            if isinstance(effect, phases.EnterPrivate):
                await self._keys.settle(summit_id)  # off private feeds: whoever lacks the key
        if told is None:
            self._announce(summit_id, phase_changed(view, now))
            told = time.perf_counter()
        log.info(
            "summit %s: %s -> %s (persisted in %.1f ms, told after %.1f ms, effects in %.1f ms)",
            summit_id,
            before,
            row.phase,
            (persisted - started) * 1000,
            (told - persisted) * 1000,
            (time.perf_counter() - persisted) * 1000,
        )
        return view
