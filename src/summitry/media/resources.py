"""What the rooms keep in Janus for each summit: its VideoRoom, the publishers in it and
the participants' subscriptions (each with the Janus handle it lives on)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from summitry.control.media import Feed, Publisher, Stream
from summitry.media.janus import Handle

VIDEOROOM = "janus.plugin.videoroom"


@dataclass(frozen=True)
class Room:
    room_id: int
    secret: str
    pin: str


@dataclass
class PublisherResource:
    id: str
    summit_id: str
    publisher: Publisher
    feed_id: int
    handle: Handle
    up: bool = False
    audio: bool = True
    video: bool = True
    mids: dict[str, str] = field(default_factory=dict)  # kind -> mid of the published streams
    encrypted: bool = False  # flagged end-to-end encrypted in Janus
    simulcast: bool = False  # its video comes in layers (the offer said so)
    watcher: asyncio.Task[None] | None = None


@dataclass
class SubscriptionResource:
    id: str
    summit_id: str
    participant_id: str
    handle: Handle | None = None
    feeds: dict[int, Feed] = field(default_factory=dict)
    streams: list[Stream] = field(default_factory=list)
    # An offer Janus made by itself (a publisher left): the client answers it next sync.
    pending_offer: str | None = None
    watcher: asyncio.Task[None] | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # one negotiation at a time
