"""The media plane on Janus: one VideoRoom per summit, WHIP publishers and the
server-offer subscriptions of participants.

Rooms are created when the lobby opens (with a random secret and pin), destroyed when
the summit ends, and recreated after Janus restarts. A feed is announced to the room
only once its publisher's PeerConnection is up (`webrtcup`): subscribing to a feed
before that fails in Janus (428)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from summitry.control.media import Feed, Offered, Published, Publisher, RecordingFile, Stream
from summitry.domain import phases
from summitry.domain.errors import (
    BadDescription,
    IllegalTransition,
    MediaRefused,
    MediaUnavailable,
    NotFound,
)
from summitry.domain.events import FeedsChanged, MediaReset, MediaStateChanged, Speaking
from summitry.domain.sdp import has_candidates, is_simulcast
from summitry.media.connection import Announce, JanusConnection, answer_offer, janus_errors
from summitry.media.janus import (
    JSON,
    Handle,
    Janus,
    JanusError,
    JanusUnavailable,
    Session,
    janus_id,
)
from summitry.media.preflight import Preflights
from summitry.media.resources import VIDEOROOM, PublisherResource, Room, SubscriptionResource
from summitry.media.state_file import StateFile

log = logging.getLogger(__name__)

MAX_PUBLISHERS = 32
ROOM_EXISTS = 427  # the VideoRoom plugin's error code


class Broadcast(Protocol):
    """What the rooms need of the broadcast chain (media/broadcast.py implements it)."""

    def is_live(self, summit_id: str) -> bool: ...

    async def start(self, summit_id: str, sides: tuple[str, str]) -> None: ...

    async def stop(self, summit_id: str) -> None: ...

    async def refresh(self, summit_id: str) -> None:
        """The room's publishers changed: put each side's speaker on air."""
        ...

    async def lost_media_server(self) -> None: ...

    async def watch(
        self, summit_id: str, offer: str, gone: Callable[[], None]
    ) -> tuple[str, str]: ...

    def watching(self, summit_id: str) -> int: ...

    def viewer_summit(self, resource_id: str) -> str: ...

    async def unwatch(self, resource_id: str) -> None: ...

    def recordings(self, summit_id: str) -> list[RecordingFile]: ...

    async def choose_on_air(
        self, summit_id: str, side_id: str, participant_id: str | None
    ) -> None: ...

    def on_air_now(self, summit_id: str) -> dict[str, str | None]: ...

    def output_folder(self, summit_id: str, position: int) -> Path: ...


def carried_streams(data: JSON) -> list[Stream]:
    """The media sections of a subscription that carry a feed, from Janus's event."""
    return [
        Stream(str(s["mid"]), int(s["feed_id"]), str(s["type"]))
        for s in data.get("streams", [])
        if s.get("active", True) and "feed_id" in s
    ]


def first_mids(streams: list[dict[str, Any]]) -> dict[str, str]:
    """The mid of the first audio and the first video stream a publisher sends."""
    mids: dict[str, str] = {}
    for stream in streams:
        if stream.get("type") in ("audio", "video") and "mid" in stream:
            mids.setdefault(str(stream["type"]), str(stream["mid"]))
    return mids


class JanusRooms:
    """Implements control.media.MediaPlane on one Janus server, through `connection`.

    What lives in Janus (the session, rooms, handles) is written to `state` after every
    change, so a summitry that crashed and came back can claim the same session and
    carry on with the calls in progress."""

    def __init__(self, connection: JanusConnection, state: StateFile, announce: Announce) -> None:
        self._connection = connection
        self._state = state
        self._announce = announce
        self._control: Handle | None = None
        self.rooms: dict[str, Room] = {}
        self._publishers: dict[str, PublisherResource] = {}
        self._subscriptions: dict[str, SubscriptionResource] = {}
        self._lock = asyncio.Lock()
        self.broadcast: Broadcast | None = None
        self._preflights = Preflights(connection)

    # --- the session (connection.SessionUser)

    async def resume(self, janus: Janus) -> Session | None:
        resumed = await self._state.resume(janus)
        if resumed is None:
            return None
        self._control = resumed.control
        self.rooms = resumed.rooms
        for resource in resumed.publishers:
            resource.watcher = asyncio.create_task(self._watch_publisher(resource))
            self._publishers[resource.id] = resource
        for subscription in resumed.subscriptions:
            self._subscriptions[subscription.id] = subscription
            if subscription.handle is not None:
                subscription.watcher = asyncio.create_task(self._watch_subscription(subscription))
        return resumed.control.session

    def let_go(self) -> None:
        watchers = [r.watcher for r in self._publishers.values()]
        watchers += [s.watcher for s in self._subscriptions.values()]
        for watcher in watchers:
            if watcher is not None:
                watcher.cancel()
        self._control = None

    async def start_afresh(self, session: Session) -> None:
        self._control = await session.attach(VIDEOROOM)
        self._publishers.clear()
        self._subscriptions.clear()
        if self.broadcast is not None:
            await self.broadcast.lost_media_server()
        for room in list(self.rooms.values()):
            await self._recreate_room(room)
        await self._save()
        for summit_id in self.rooms:
            self._announce(summit_id, MediaReset(self.generation))

    async def _save(self) -> None:
        if self._control is not None:
            await self._state.save(
                self._control, self.rooms, self._publishers.values(), self._subscriptions.values()
            )

    @property
    def generation(self) -> int:
        return self._connection.generation

    @property
    def connected(self) -> bool:
        return self._connection.connected

    # --- effects of the phase machine

    async def carry_out(self, summit_id: str, effect: phases.Effect) -> None:
        if isinstance(effect, phases.OpenRoom):
            await self.open_room(summit_id)
        elif isinstance(effect, phases.CloseRoom):
            await self.close_room(summit_id)
        elif isinstance(effect, phases.StartBroadcast) and self.broadcast is not None:
            await self.broadcast.start(summit_id, effect.sides)
        elif isinstance(effect, phases.StopBroadcast) and self.broadcast is not None:
            await self.broadcast.stop(summit_id)
        # EnterPrivate is the browsers' business: they encrypt from now on.

    async def restore(self, summit_ids: list[str]) -> None:
        for summit_id in summit_ids:
            await self.open_room(summit_id)

    async def open_room(self, summit_id: str) -> Room:
        async with self._lock:
            room = self.rooms.get(summit_id)
            if room is None:
                room = Room(janus_id(), secrets.token_urlsafe(18), secrets.token_urlsafe(12))
                await self._create_room(room)
                self.rooms[summit_id] = room
                await self._save()
            return room

    async def _create_room(self, room: Room) -> None:
        assert self._control is not None
        async with janus_errors():
            await self._control.request(
                {
                    "request": "create",
                    "admin_key": self._connection.admin_key,
                    "room": room.room_id,
                    "permanent": False,
                    "secret": room.secret,
                    "pin": room.pin,
                    "is_private": True,
                    "publishers": MAX_PUBLISHERS,
                    "audiocodec": "opus",
                    "videocodec": "vp8",
                    "bitrate": 1_500_000,
                    "fir_freq": 10,
                    "notify_joining": True,
                    "audiolevel_event": True,
                    "audio_active_packets": 50,
                    "audio_level_average": 40,
                }
            )

    async def _recreate_room(self, room: Room) -> None:
        """The room again, in a new session. A Janus that outlived our old session still
        has the room, with nobody left in it: it is made afresh."""
        assert self._control is not None
        try:
            await self._create_room(room)
        except JanusError as error:
            if error.code != ROOM_EXISTS:
                raise
            await self._control.request(
                {"request": "destroy", "room": room.room_id, "secret": room.secret}
            )
            await self._create_room(room)

    async def close_room(self, summit_id: str) -> None:
        room = self.rooms.pop(summit_id, None)
        for resource_id in [r.id for r in self._publishers.values() if r.summit_id == summit_id]:
            await self._drop_publisher(resource_id, announce=False)
        for resource_id in [s.id for s in self._subscriptions.values() if s.summit_id == summit_id]:
            await self._drop_subscription(resource_id)
        if room is not None and self._control is not None:
            with contextlib.suppress(JanusError, JanusUnavailable):
                await self._control.request(
                    {
                        "request": "destroy",
                        "room": room.room_id,
                        "secret": room.secret,
                        "permanent": False,
                    }
                )
        await self._save()

    def _room(self, summit_id: str) -> Room:
        room = self.rooms.get(summit_id)
        if room is None:
            raise IllegalTransition("the room is not open: the lobby has not opened yet")
        return room

    # --- publishing (WHIP)

    def feeds(self, summit_id: str) -> list[Feed]:
        return [
            Feed(r.feed_id, r.publisher, r.audio, r.video)
            for r in self._publishers.values()
            if r.summit_id == summit_id and r.up
        ]

    async def set_media_state(
        self, summit_id: str, participant_id: str, audio: bool, video: bool
    ) -> None:
        for resource in self._publishers.values():
            if (resource.summit_id, resource.publisher.participant_id) == (
                summit_id,
                participant_id,
            ):
                resource.audio, resource.video = audio, video
                await self._save()
                self._announce(summit_id, MediaStateChanged(participant_id, audio, video))
                return
        raise NotFound("you are not publishing in this room")

    def owner(self, resource_id: str) -> tuple[str, str] | None:
        if resource_id in self._publishers:
            resource = self._publishers[resource_id]
            return resource.summit_id, resource.publisher.participant_id
        if resource_id in self._subscriptions:
            subscription = self._subscriptions[resource_id]
            return subscription.summit_id, subscription.participant_id
        return None

    async def publish(
        self, summit_id: str, publisher: Publisher, offer: str, encrypted: bool = False
    ) -> Published:
        room = self._room(summit_id)
        # One camera per person: publishing again (a reconnect) replaces the old feed.
        for old in [
            r.id
            for r in self._publishers.values()
            if r.summit_id == summit_id and r.publisher.participant_id == publisher.participant_id
        ]:
            await self._drop_publisher(old, announce=False)
        # Janus refuses a subscription that mixes flagged and unflagged feeds, and a feed
        # published in the clear before the cut cannot be flagged without renegotiating:
        # the flag goes on once every feed in the room has it (after a media restart, or
        # when the clear ones are gone). The frames are sealed either way.
        encrypted = encrypted and all(
            r.encrypted for r in self._publishers.values() if r.summit_id == summit_id
        )
        handle = await self._attach()
        feed_id = janus_id()
        async with janus_errors(MediaRefused, "the room refused to let you in", detach=handle):
            await handle.message(
                {
                    "request": "join",
                    "ptype": "publisher",
                    "room": room.room_id,
                    "pin": room.pin,
                    "id": feed_id,
                    "display": publisher.name,
                }
            )
        published, answer = await answer_offer(
            handle, {"request": "publish", "audio": True, "video": True}, offer, encrypted
        )
        if has_candidates(offer):
            await handle.trickle_completed()
        resource = PublisherResource(
            secrets.token_urlsafe(12),
            summit_id,
            publisher,
            feed_id,
            handle,
            mids=first_mids(published.get("streams", [])),
            encrypted=encrypted,
            simulcast=is_simulcast(offer),
        )
        resource.watcher = asyncio.create_task(self._watch_publisher(resource))
        self._publishers[resource.id] = resource
        await self._save()
        return Published(resource.id, answer)

    async def trickle(
        self, resource_id: str, candidates: list[dict[str, object]], completed: bool
    ) -> None:
        resource = self._publishers.get(resource_id)
        if resource is None:
            raise NotFound("no such WHIP resource")
        async with janus_errors():
            if candidates:
                await resource.handle.trickle(candidates)
            if completed:
                await resource.handle.trickle_completed()

    async def _watch_publisher(self, resource: PublisherResource) -> None:
        """Follows a publisher's PeerConnection: announce its feed once up, drop it when
        its client goes away without saying so."""
        while True:
            event = await resource.handle.session.events(resource.handle.id).get()
            kind = event.get("janus")
            if kind == "webrtcup":
                resource.up = True
                await self._save()
                await self._feeds_changed(resource.summit_id)
            elif kind in ("hangup", "detached"):
                resource.watcher = None
                await self._drop_publisher(resource.id, announce=True)
                return
            elif kind == "event":
                data = event.get("plugindata", {}).get("data", {})
                if data.get("videoroom") in ("talking", "stopped-talking"):
                    self._announce(
                        resource.summit_id,
                        Speaking(resource.publisher.participant_id, data["videoroom"] == "talking"),
                    )

    async def _drop_publisher(self, resource_id: str, announce: bool) -> None:
        resource = self._publishers.pop(resource_id, None)
        if resource is None:
            return
        if resource.watcher is not None and resource.watcher is not asyncio.current_task():
            resource.watcher.cancel()
        await resource.handle.detach()
        await self._save()
        if announce and resource.up:
            await self._feeds_changed(resource.summit_id)

    async def _feeds_changed(self, summit_id: str) -> None:
        if self.broadcast is not None and self.broadcast.is_live(summit_id):
            await self.broadcast.refresh(summit_id)
        self._announce(summit_id, FeedsChanged())

    # --- the broadcast, seen from the orchestrator

    def _chain(self) -> Broadcast:
        if self.broadcast is None:
            raise MediaUnavailable("this server has no broadcast chain")
        return self.broadcast

    async def watch_broadcast(
        self, summit_id: str, offer: str, gone: Callable[[], None]
    ) -> tuple[str, str]:
        return await self._chain().watch(summit_id, offer, gone)

    def watching(self, summit_id: str) -> int:
        return 0 if self.broadcast is None else self.broadcast.watching(summit_id)

    async def stop_watching(self, summit_id: str, resource_id: str) -> None:
        chain = self._chain()
        if chain.viewer_summit(resource_id) != summit_id:
            raise NotFound("no such WHEP resource")
        await chain.unwatch(resource_id)

    def recordings(self, summit_id: str) -> list[RecordingFile]:
        return [] if self.broadcast is None else self.broadcast.recordings(summit_id)

    async def choose_on_air(self, summit_id: str, side_id: str, participant_id: str | None) -> None:
        await self._chain().choose_on_air(summit_id, side_id, participant_id)

    def on_air(self, summit_id: str) -> dict[str, str | None]:
        return {} if self.broadcast is None else self.broadcast.on_air_now(summit_id)

    def broadcast_folder(self, summit_id: str, position: int) -> str | None:
        if self.broadcast is None:
            return None
        return str(self.broadcast.output_folder(summit_id, position))

    # --- forwarding into the broadcast chain

    def live_publishers(self, summit_id: str) -> list[PublisherResource]:
        return [r for r in self._publishers.values() if r.summit_id == summit_id and r.up]

    async def forward(
        self, summit_id: str, feed_id: int, streams: list[dict[str, Any]]
    ) -> list[int]:
        """Opens rtp_forwards of a publisher's streams to local ports: their ids."""
        room = self._room(summit_id)
        assert self._control is not None
        data = await self._control.request(
            {
                "request": "rtp_forward",
                "room": room.room_id,
                "publisher_id": feed_id,
                "secret": room.secret,
                "admin_key": self._connection.admin_key,
                "host": "127.0.0.1",
                "host_family": "ipv4",
                "streams": streams,
            }
        )
        return [int(f["stream_id"]) for f in data.get("forwarders", [])]

    async def stop_forward(self, summit_id: str, feed_id: int, stream_id: int) -> None:
        room = self.rooms.get(summit_id)
        if room is None or self._control is None:
            return
        with contextlib.suppress(JanusError):  # a publisher that left took its forwards along
            await self._control.request(
                {
                    "request": "stop_rtp_forward",
                    "room": room.room_id,
                    "publisher_id": feed_id,
                    "stream_id": stream_id,
                    "secret": room.secret,
                    "admin_key": self._connection.admin_key,
                }
            )

    async def stop_all_forwards(self, summit_id: str) -> int:
        """Stops every forward Janus has for the room, whoever opened it: the chokepoint
        closes even if this process never knew of a forward. Returns how many."""
        room = self.rooms.get(summit_id)
        if room is None or self._control is None:
            return 0
        listing = await self._control.request(
            {"request": "listforwarders", "room": room.room_id, "secret": room.secret}
        )
        stops = [
            self.stop_forward(summit_id, int(publisher["publisher_id"]), int(f["stream_id"]))
            for publisher in listing.get("publishers", [])
            for f in publisher.get("forwarders", [])
        ]
        await asyncio.gather(*stops)
        return len(stops)

    async def request_keyframe(self, summit_id: str, feed_id: int) -> None:
        """Asks a publisher's browser for a key frame (best effort: it may have left)."""
        for resource in self.live_publishers(summit_id):
            if resource.feed_id == feed_id:
                with contextlib.suppress(JanusError, JanusUnavailable):
                    await resource.handle.message({"request": "configure", "keyframe": True})

    # --- subscribing (server offer, client answer)

    def _wanted(self, summit_id: str, participant_id: str, sees_feeds: bool) -> dict[int, Feed]:
        if not sees_feeds:
            return {}
        return {
            feed.feed_id: feed
            for feed in self.feeds(summit_id)
            if feed.publisher.participant_id != participant_id
        }

    async def subscribe(self, summit_id: str, participant_id: str, sees_feeds: bool) -> Offered:
        self._room(summit_id)
        for old in [
            s.id
            for s in self._subscriptions.values()
            if s.summit_id == summit_id and s.participant_id == participant_id
        ]:
            await self._drop_subscription(old)
        subscription = SubscriptionResource(secrets.token_urlsafe(12), summit_id, participant_id)
        self._subscriptions[subscription.id] = subscription
        return await self.sync(subscription.id, sees_feeds)

    async def sync(self, resource_id: str, sees_feeds: bool) -> Offered:
        """Brings the subscription to the feeds the participant may see now (none unless
        `sees_feeds`); an offer comes back when that changed what it carries. Feeds whose
        publisher left are Janus's to remove: it makes that offer itself, and it is
        handed over here."""
        subscription = self._subscription(resource_id)
        async with subscription.lock:
            return await self._sync(subscription, sees_feeds)

    async def withhold_feeds(self, summit_id: str, allowed: set[str]) -> None:
        """Takes every feed away from the subscriptions of participants not `allowed`,
        at once in Janus; their browsers get the offer that says so on their next sync."""
        for subscription in [
            s
            for s in self._subscriptions.values()
            if s.summit_id == summit_id and s.participant_id not in allowed and s.streams
        ]:
            async with subscription.lock:
                offered = await self._sync(subscription, sees_feeds=False)
                subscription.pending_offer = offered.offer
            self._announce(summit_id, FeedsChanged())

    async def _sync(self, subscription: SubscriptionResource, sees_feeds: bool) -> Offered:
        resource_id = subscription.id
        pending, subscription.pending_offer = subscription.pending_offer, None
        wanted = self._wanted(subscription.summit_id, subscription.participant_id, sees_feeds)
        live = {feed.feed_id for feed in self.feeds(subscription.summit_id)}
        carried = [stream.feed_id for stream in subscription.streams]
        added = [feed_id for feed_id in wanted if feed_id not in carried]
        removed = sorted({f for f in carried if f not in wanted and f in live})
        if not added and not removed:
            subscription.feeds = {f: wanted[f] for f in wanted if f in carried}
            return Offered(
                resource_id, pending, list(subscription.feeds.values()), subscription.streams
            )
        room = self._room(subscription.summit_id)
        async with janus_errors(MediaRefused, "the media server refused the subscription"):
            if subscription.handle is None:
                subscription.handle = await self._attach()
                subscription.watcher = asyncio.create_task(self._watch_subscription(subscription))
                data, jsep = await subscription.handle.message(
                    {
                        "request": "join",
                        "ptype": "subscriber",
                        "room": room.room_id,
                        "pin": room.pin,
                        "streams": [{"feed": feed_id} for feed_id in added],
                    }
                )
            else:
                body: dict[str, Any] = {"request": "update"}
                if added:
                    body["subscribe"] = [{"feed": feed_id} for feed_id in added]
                if removed:
                    body["unsubscribe"] = [{"feed": feed_id} for feed_id in removed]
                data, jsep = await subscription.handle.message(body)
        if "streams" in data:
            subscription.streams = carried_streams(data)
        carried = [stream.feed_id for stream in subscription.streams]
        subscription.feeds = {f: wanted[f] for f in wanted if f in carried}
        offer = str(jsep["sdp"]) if jsep and jsep.get("type") == "offer" else pending
        await self._save()
        return Offered(resource_id, offer, list(subscription.feeds.values()), subscription.streams)

    async def choose_layers(self, resource_id: str, layers: dict[int, int]) -> None:
        """Which simulcast layer (0 lowest to 2 highest) of each feed's video the
        subscription receives; Janus switches at the next key frame, and feeds that are
        not simulcast stay as they are."""
        subscription = self._subscription(resource_id)
        streams = [
            {"mid": stream.mid, "substream": layers[stream.feed_id]}
            for stream in subscription.streams
            if stream.kind == "video" and stream.feed_id in layers
        ]
        if not streams or subscription.handle is None:
            return
        async with subscription.lock, janus_errors(MediaRefused, "the media server refused"):
            await subscription.handle.message({"request": "configure", "streams": streams})

    async def _watch_subscription(self, subscription: SubscriptionResource) -> None:
        """Takes the offers Janus makes by itself (when a publisher leaves) and tells the
        participant to sync; ends when the handle goes."""
        assert subscription.handle is not None
        queue = subscription.handle.session.events(subscription.handle.id)
        while True:
            event = await queue.get()
            if event.get("janus") == "detached":
                return
            jsep = event.get("jsep")
            data = event.get("plugindata", {}).get("data", {})
            if event.get("janus") == "event" and jsep and jsep.get("type") == "offer":
                subscription.pending_offer = str(jsep["sdp"])
                if "streams" in data:
                    subscription.streams = carried_streams(data)
                await self._save()
                self._announce(subscription.summit_id, FeedsChanged())

    async def answer(self, resource_id: str, answer: str) -> None:
        subscription = self._subscription(resource_id)
        if subscription.handle is None:
            raise IllegalTransition("there is no offer to answer yet")
        async with janus_errors(BadDescription, "the media server refused the answer"):
            await subscription.handle.message(
                {"request": "start"}, {"type": "answer", "sdp": answer}
            )
            # Janus offered and controls ICE: it learns the subscriber's addresses from
            # its connectivity checks, so the answer may come before the client gathers
            # (and the client may apply it only after Janus has it, which saves the DTLS
            # retransmission a lost first handshake packet costs).
            await subscription.handle.trickle_completed()

    def _subscription(self, resource_id: str) -> SubscriptionResource:
        subscription = self._subscriptions.get(resource_id)
        if subscription is None:
            raise NotFound("no such subscription")
        return subscription

    async def _drop_subscription(self, resource_id: str) -> None:
        subscription = self._subscriptions.pop(resource_id, None)
        if subscription is not None and subscription.watcher is not None:
            subscription.watcher.cancel()
        if subscription is not None and subscription.handle is not None:
            await subscription.handle.detach()
        await self._save()

    # --- leaving

    async def leave(self, resource_id: str) -> None:
        if resource_id in self._publishers:
            await self._drop_publisher(resource_id, announce=True)
        elif resource_id in self._subscriptions:
            await self._drop_subscription(resource_id)
        else:
            raise NotFound("no such media resource")

    async def drop_participant(self, summit_id: str, participant_id: str) -> None:
        for resource_id, (summit, participant) in [
            (rid, owner)
            for rid in [*self._publishers, *self._subscriptions]
            if (owner := self.owner(rid)) is not None
        ]:
            if (summit, participant) == (summit_id, participant_id):
                await self.leave(resource_id)

    async def preflight(self, offer: str) -> str:
        return await self._preflights.answer(offer)

    async def _attach(self) -> Handle:
        async with janus_errors():
            return await self._connection.session.attach(VIDEOROOM)
