"""What the public reaches: the summit's public page, the live broadcast while it is on,
the recordings of the public part afterwards, and readouts once out of embargo."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from summitry.control.media import PublicOutputs, peer_safe, require_media
from summitry.control.unit import UnitOfWork
from summitry.control.views import (
    IceServersView,
    Links,
    PublicReadoutView,
    PublicRecording,
    PublicSideView,
    PublicStream,
    PublicView,
    readout_views,
    turn_offer,
)
from summitry.domain.errors import IllegalTransition, NotFound
from summitry.domain.phases import Phase
from summitry.domain.sdp import PeerPolicy, check_description
from summitry.domain.times import require_zone, wall_time
from summitry.security.turn import VIEWER_LONGEST, VIEWER_OVERRUN, TurnRelay, expiry
from summitry.store.models import SideRow, SummitRow

RECORDING_NAMES = ("recording.mp4", "audio.ogg")


class PublicSide:
    def __init__(
        self,
        work: UnitOfWork,
        links: Links,
        media: PublicOutputs | None,
        peers: PeerPolicy,
        turn: TurnRelay | None = None,
    ) -> None:
        self._work = work
        self._links = links
        self._media = media
        self._peers = peers
        self._turn = turn

    async def view(self, slug: str, viewer_zone: str | None = None) -> PublicView:
        if viewer_zone is not None:
            require_zone(viewer_zone, "tz")
        now = self._work.clock.now()
        async with self._work.reading() as repo:
            row = await repo.summit_by_slug(slug)
            sides = await repo.sides(row.id)
            readouts = readout_views(await repo.readouts(row.id), sides)
        return PublicView(
            slug=row.slug,
            title=row.title,
            agenda=row.agenda,
            starts_at=row.starts_at,
            phase=row.phase,
            live=row.phase == Phase.PUBLIC.value,
            sides=[
                PublicSideView(s.name, s.time_zone, wall_time(row.starts_at, s.time_zone))
                for s in sides
            ],
            viewer_local_start=wall_time(row.starts_at, viewer_zone) if viewer_zone else None,
            readouts=[
                PublicReadoutView.of(r)
                for r in readouts
                if r.embargo_until is None or r.embargo_until <= now
            ],
            audit_public_key=self._work.audit_key.public_key,
            **self._where_to_watch(row, sides),
        )

    def _where_to_watch(self, row: SummitRow, sides: list[SideRow]) -> dict[str, Any]:
        """WHEP and HLS while live, the recordings afterwards."""
        if self._media is None:
            return {}
        names = {side.position: side.name for side in sides}
        media: dict[str, Any] = {
            "recordings": [
                PublicRecording(
                    names[r.position],
                    r.kind,
                    self._links.recording(row.slug, r.position, r.kind),
                    r.sha256,
                    r.bytes,
                )
                for r in self._media.recordings(row.id)
            ]
        }
        if row.phase == Phase.PUBLIC.value:
            media["whep"] = self._links.whep(row.slug)
            media["watching"] = self._media.watching(row.id)
            media["streams"] = [
                PublicStream(
                    names[side.position], self._links.live_playlist(row.slug, side.position)
                )
                for side in sides
            ]
        return media

    async def summit_id_for(self, slug: str) -> str:
        async with self._work.reading() as repo:
            return await repo.summit_id_for_slug(slug)

    async def ice_servers(self, slug: str) -> IceServersView:
        """TURN for a viewer behind a strict firewall, only while the summit is live, with
        a credential of its own that dies soon after the public part's planned end. Not
        audited one by one: anyone may ask, and the audit trail is no place for floods."""
        async with self._work.reading() as repo:
            row = await repo.summit_by_slug(slug)
        if row.phase != Phase.PUBLIC.value:
            raise IllegalTransition("the summit is not being broadcast now")
        if self._turn is None:
            return IceServersView([], None)
        now = self._work.clock.now()
        return turn_offer(
            self._turn,
            f"viewer-{secrets.token_hex(6)}",
            expiry(public_end(row, now), now, VIEWER_LONGEST, VIEWER_OVERRUN),
        )

    async def watch(self, slug: str, offer: str, gone: Callable[[], None]) -> tuple[str, str]:
        """A public viewer's WHEP offer: the live broadcast, nothing else. `gone` is
        called once the viewer is no more (stopped, let go, or the cut)."""
        offer = peer_safe(self._peers, check_description(offer), f"a viewer of {slug}")
        async with self._work.reading() as repo:
            row = await repo.summit_by_slug(slug)
        if row.phase != Phase.PUBLIC.value:
            raise IllegalTransition("the summit is not being broadcast now")
        return await require_media(self._media).watch_broadcast(row.id, offer, gone)

    async def stop_watching(self, slug: str, resource_id: str) -> None:
        summit_id = await self.summit_id_for(slug)
        await require_media(self._media).stop_watching(summit_id, resource_id)

    async def file(self, slug: str, position: int, name: str) -> str:
        """The path of a public output file of this summit, if the public may have it now:
        the live playlist and segments while live, the recordings once sealed."""
        summit_id = await self.summit_id_for(slug)
        media = require_media(self._media)
        folder = media.broadcast_folder(summit_id, position)
        if folder is None or position not in (0, 1):
            raise NotFound("no such file")
        if name in RECORDING_NAMES:
            if not any(r.position == position for r in media.recordings(summit_id)):
                raise NotFound("the recording is not finished")
            return f"{folder}/{name}"
        return f"{folder}/live/{name}"


def public_end(row: SummitRow, now: datetime) -> datetime:
    """When the public part is planned to end: its planned length after it went live."""
    return (row.public_since or now) + timedelta(seconds=row.public_seconds)
