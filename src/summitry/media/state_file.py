"""`media.state.json`: what lives in Janus for the rooms (our session, the rooms'
control handle, rooms, publishers and subscriptions), written after every change so a
summitry that crashed and came back can claim the same session and carry on with the
calls in progress. The file is readable by its owner only (it holds the rooms' secrets)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from summitry.control.media import Feed, Publisher, Stream
from summitry.media.janus import Handle, Janus, JanusError, JanusUnavailable, Session
from summitry.media.resources import VIDEOROOM, PublisherResource, Room, SubscriptionResource

log = logging.getLogger(__name__)


def write_private(path: Path, text: str) -> None:
    """Replaces `path` at once with `text`, readable by its owner only."""
    temporary = path.with_name(f"{path.name}.{secrets.token_hex(4)}.tmp")
    temporary.write_text(text)
    temporary.chmod(0o600)
    temporary.replace(path)


@dataclass
class Resumed:
    """What a previous summitry left in Janus, claimed again (handles attached; nobody
    follows their events yet)."""

    control: Handle
    rooms: dict[str, Room]
    publishers: list[PublisherResource]
    subscriptions: list[SubscriptionResource]


class StateFile:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = asyncio.Lock()

    async def resume(self, janus: Janus) -> Resumed | None:
        """Claims the session the file names, in `janus`; None if there is no file or
        Janus no longer has that session."""
        try:
            state = json.loads(await asyncio.to_thread(self.path.read_text))
            session = await Session.open(janus, int(state["session"]))
        except (OSError, ValueError, KeyError, JanusError, JanusUnavailable):
            log.info("no Janus session to resume; starting afresh")
            return None
        control = await session.attach(VIDEOROOM, int(state["control"]))
        rooms = {summit: Room(**room) for summit, room in state["rooms"].items()}
        publishers = [
            PublisherResource(
                item["id"],
                item["summit_id"],
                Publisher(**item["publisher"]),
                item["feed_id"],
                await session.attach(VIDEOROOM, item["handle"]),
                item["up"],
                item["audio"],
                item["video"],
                item["mids"],
                item.get("encrypted", False),
                item.get("simulcast", False),
            )
            for item in state["publishers"]
        ]
        subscriptions = [
            SubscriptionResource(
                item["id"],
                item["summit_id"],
                item["participant_id"],
                None if item["handle"] is None else await session.attach(VIDEOROOM, item["handle"]),
                {
                    feed["feed_id"]: Feed(
                        feed["feed_id"],
                        Publisher(**feed["publisher"]),
                        feed["audio"],
                        feed["video"],
                    )
                    for feed in item["feeds"]
                },
                [Stream(**stream) for stream in item["streams"]],
            )
            for item in state["subscriptions"]
        ]
        log.info(
            "resumed Janus session %s: %d rooms, %d publishers, %d subscriptions",
            session.id,
            len(rooms),
            len(publishers),
            len(subscriptions),
        )
        return Resumed(control, rooms, publishers, subscriptions)

    async def save(
        self,
        control: Handle,
        rooms: Mapping[str, Room],
        publishers: Iterable[PublisherResource],
        subscriptions: Iterable[SubscriptionResource],
    ) -> None:
        state = {
            "session": control.session.id,
            "control": control.id,
            "rooms": {summit: dataclasses.asdict(room) for summit, room in rooms.items()},
            "publishers": [
                {
                    "id": r.id,
                    "summit_id": r.summit_id,
                    "publisher": dataclasses.asdict(r.publisher),
                    "feed_id": r.feed_id,
                    "handle": r.handle.id,
                    "up": r.up,
                    "audio": r.audio,
                    "video": r.video,
                    "mids": r.mids,
                    "encrypted": r.encrypted,
                    "simulcast": r.simulcast,
                }
                for r in publishers
            ],
            "subscriptions": [
                {
                    "id": s.id,
                    "summit_id": s.summit_id,
                    "participant_id": s.participant_id,
                    "handle": None if s.handle is None else s.handle.id,
                    "feeds": [dataclasses.asdict(feed) for feed in s.feeds.values()],
                    "streams": [dataclasses.asdict(stream) for stream in s.streams],
                }
                for s in subscriptions
            ],
        }
        async with self._lock:  # the last state written is the last state made
            await asyncio.to_thread(write_private, self.path, json.dumps(state))

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
