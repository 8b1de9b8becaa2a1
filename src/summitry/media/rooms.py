"""The media plane on Janus: one VideoRoom per summit, WHIP publishers and the
server-offer subscriptions of participants.

Rooms are created when the lobby opens (with a random secret and pin), destroyed when
the summit ends, and recreated after Janus restarts. A feed is announced to the room
only once its publisher's PeerConnection is up (`webrtcup`): subscribing to a feed
before that fails in Janus (428)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from summitry.control.media import Feed, Offered, Published, Publisher, RecordingFile, Stream
from summitry.domain import phases
from summitry.domain.errors import BadDescription, IllegalTransition, MediaUnavailable, NotFound
from summitry.domain.sdp import has_candidates

if TYPE_CHECKING:
    from summitry.media.broadcast import BroadcastChain
from summitry.media.janus import JSON, Handle, Janus, JanusError, JanusUnavailable, Session

log = logging.getLogger(__name__)

VIDEOROOM = "janus.plugin.videoroom"
MAX_PUBLISHERS = 32
ROOM_EXISTS = 427  # the VideoRoom plugin's error code
Announce = Callable[[str, dict[str, Any]], None]


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


def write_private(path: Path, text: str) -> None:
    """Replaces `path` at once with `text`, readable by its owner only."""
    temporary = path.with_name(f"{path.name}.{secrets.token_hex(4)}.tmp")
    temporary.write_text(text)
    temporary.chmod(0o600)
    temporary.replace(path)


async def answer_offer(
    handle: Handle, body: dict[str, Any], offer: str, encrypted: bool = False
) -> tuple[JSON, str]:
    """Sends a client's offer along with `body`: the event's data and Janus's answer.
    `encrypted` tells Janus the media is end-to-end encrypted (it reads that from the
    JSEP). When Janus refuses, the handle is let go and the error says why."""
    jsep_in: dict[str, Any] = {"type": "offer", "sdp": offer}
    if encrypted:
        jsep_in["e2ee"] = True
    try:
        data, jsep = await handle.message(body, jsep_in)
    except JanusError as error:
        await handle.detach()
        raise BadDescription(f"the media server refused the offer: {error.reason}") from error
    except JanusUnavailable as error:
        raise MediaUnavailable("the media server did not answer") from error
    if jsep is None or jsep.get("type") != "answer":
        await handle.detach()
        raise BadDescription("the media server did not answer the offer")
    return data, str(jsep["sdp"])


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


def new_room_id() -> int:
    return secrets.randbits(52) or 1


class JanusRooms:
    """Implements control.media.MediaPlane on one Janus server.

    What lives in Janus (the session, rooms, handles) is written to `state_path` after
    every change, so a summitry that crashed and came back can claim the same session
    and carry on with the calls in progress."""

    def __init__(self, announce: Announce, state_path: Path | None = None) -> None:
        self._announce = announce
        self._state_path = state_path
        self._janus: Janus | None = None
        self._session: Session | None = None
        self._control: Handle | None = None
        self._admin_key = ""
        self.rooms: dict[str, Room] = {}
        self._publishers: dict[str, PublisherResource] = {}
        self._subscriptions: dict[str, SubscriptionResource] = {}
        self._lock = asyncio.Lock()
        self._save_lock = asyncio.Lock()
        self._connecting = asyncio.Lock()
        self._keeper: asyncio.Task[None] | None = None
        self.generation = 0
        self.broadcast: BroadcastChain | None = None

    # --- connection

    async def connect(
        self, url: str, api_secret: str, admin_key: str, resume: bool = False
    ) -> None:
        """Talk to the Janus at `url`. With `resume`, take over the session a previous
        summitry left in that same Janus; otherwise (a new Janus) everything that lived
        in the old one is gone: rooms are recreated and clients told to rejoin."""
        async with self._connecting:
            await self._connect(url, api_secret, admin_key, resume)
        self._keep_session(url, api_secret, admin_key)

    def _keep_session(self, url: str, api_secret: str, admin_key: str) -> None:
        self._keeper = asyncio.create_task(
            self._keep(url, api_secret, admin_key), name="janus-session-keeper"
        )

    async def _keep(self, url: str, api_secret: str, admin_key: str) -> None:
        """Janus may drop our session and live on (it timed the session out, or someone
        destroyed it): then a new session, rooms recreated, clients told to rejoin. A
        Janus that died is the supervisor's: it connects us to the one it restarts."""
        assert self._session is not None
        await self._session.lost.wait()
        delay = 0.5
        while True:
            async with self._connecting:
                log.warning("the Janus session was lost; opening a new one")
                try:
                    await self._connect(url, api_secret, admin_key, resume=False)
                    break
                except (JanusError, JanusUnavailable) as error:
                    log.warning("no new Janus session yet: %s", error)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
        self._keep_session(url, api_secret, admin_key)

    async def _connect(self, url: str, api_secret: str, admin_key: str, resume: bool) -> None:
        await self._disconnect()
        self._janus = Janus(url, api_secret)
        self._admin_key = admin_key
        self.generation += 1
        if resume and await self._resume():
            return
        self._session = await Session.open(self._janus, None)
        self._control = await self._session.attach(VIDEOROOM)
        self._publishers.clear()
        self._subscriptions.clear()
        if self.broadcast is not None:
            await self.broadcast.lost_media_server()
        for room in list(self.rooms.values()):
            await self._recreate_room(room)
        await self._save()
        for summit_id in self.rooms:
            self._announce(summit_id, {"type": "media_reset", "generation": self.generation})

    async def _resume(self) -> bool:
        assert self._janus is not None
        if self._state_path is None:
            return False
        try:
            state = json.loads(await asyncio.to_thread(self._state_path.read_text))
            self._session = await Session.open(self._janus, int(state["session"]))
        except (OSError, ValueError, KeyError, JanusError, JanusUnavailable):
            log.info("no Janus session to resume; starting afresh")
            return False
        session = self._session
        self._control = await session.attach(VIDEOROOM, int(state["control"]))
        self.rooms = {summit: Room(**room) for summit, room in state["rooms"].items()}
        for item in state["publishers"]:
            resource = PublisherResource(
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
            )
            resource.watcher = asyncio.create_task(self._watch_publisher(resource))
            self._publishers[resource.id] = resource
        for item in state["subscriptions"]:
            handle = item["handle"]
            subscription = self._subscriptions[item["id"]] = SubscriptionResource(
                item["id"],
                item["summit_id"],
                item["participant_id"],
                None if handle is None else await session.attach(VIDEOROOM, handle),
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
            if subscription.handle is not None:
                subscription.watcher = asyncio.create_task(self._watch_subscription(subscription))
        log.info(
            "resumed Janus session %s: %d rooms, %d publishers, %d subscriptions",
            session.id,
            len(self.rooms),
            len(self._publishers),
            len(self._subscriptions),
        )
        return True

    async def _save(self) -> None:
        if self._state_path is None or self._session is None or self._control is None:
            return
        state = {
            "session": self._session.id,
            "control": self._control.id,
            "rooms": {summit: dataclasses.asdict(room) for summit, room in self.rooms.items()},
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
                }
                for r in self._publishers.values()
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
                for s in self._subscriptions.values()
            ],
        }
        async with self._save_lock:  # the last state written is the last state made
            await asyncio.to_thread(write_private, self._state_path, json.dumps(state))

    async def close(self) -> None:
        if self.broadcast is not None:
            await self.broadcast.close()
        await self._disconnect()
        if self._state_path is not None:
            self._state_path.unlink(missing_ok=True)

    async def _disconnect(self) -> None:
        if self._keeper is not None and self._keeper is not asyncio.current_task():
            self._keeper.cancel()
        watchers = [r.watcher for r in self._publishers.values()]
        watchers += [s.watcher for s in self._subscriptions.values()]
        for watcher in watchers:
            if watcher is not None:
                watcher.cancel()
        if self._session is not None:
            await self._session.close()
        if self._janus is not None:
            await self._janus.close()
        self._session = self._control = self._janus = None

    def announce(self, summit_id: str, event: dict[str, Any]) -> None:
        self._announce(summit_id, event)

    @property
    def admin_key(self) -> str:
        return self._admin_key

    @property
    def connected(self) -> bool:
        return self._session is not None and not self._session.lost.is_set()

    @property
    def session(self) -> Session:
        if self._session is None or self._session.lost.is_set():
            raise MediaUnavailable("the media server is restarting; try again in a moment")
        return self._session

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
                room = Room(new_room_id(), secrets.token_urlsafe(18), secrets.token_urlsafe(12))
                await self._create_room(room)
                self.rooms[summit_id] = room
                await self._save()
            return room

    async def _create_room(self, room: Room) -> None:
        assert self._control is not None
        try:
            await self._control.request(
                {
                    "request": "create",
                    "admin_key": self._admin_key,
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
        except JanusUnavailable as error:
            raise MediaUnavailable("the media server did not answer") from error

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
                self._announce(
                    summit_id,
                    {
                        "type": "media_state",
                        "participant": participant_id,
                        "audio": audio,
                        "video": video,
                    },
                )
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
        feed_id = secrets.randbits(52) or 1
        try:
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
        except JanusError as error:
            await handle.detach()
            raise IllegalTransition(f"the room refused to let you in: {error.reason}") from error
        except JanusUnavailable as error:
            raise MediaUnavailable("the media server did not answer") from error
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
        try:
            if candidates:
                await resource.handle.trickle(candidates)
            if completed:
                await resource.handle.trickle_completed()
        except JanusUnavailable as error:
            raise MediaUnavailable("the media server did not answer") from error

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
                        {
                            "type": "speaking",
                            "participant": resource.publisher.participant_id,
                            "speaking": data["videoroom"] == "talking",
                        },
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
        self._announce(summit_id, {"type": "feeds"})

    # --- the broadcast, seen from the orchestrator

    def _chain(self) -> BroadcastChain:
        if self.broadcast is None:
            raise MediaUnavailable("this server has no broadcast chain")
        return self.broadcast

    async def watch_broadcast(self, summit_id: str, offer: str) -> tuple[str, str]:
        return await self._chain().watch(summit_id, offer)

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
                "admin_key": self._admin_key,
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
                    "admin_key": self._admin_key,
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

    async def request_keyframe(self, resource: PublisherResource) -> None:
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
            self._announce(summit_id, {"type": "feeds"})

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
        try:
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
        except JanusError as error:
            raise IllegalTransition(
                f"the media server refused the subscription: {error.reason}"
            ) from error
        except JanusUnavailable as error:
            raise MediaUnavailable("the media server did not answer") from error
        if "streams" in data:
            subscription.streams = carried_streams(data)
        carried = [stream.feed_id for stream in subscription.streams]
        subscription.feeds = {f: wanted[f] for f in wanted if f in carried}
        offer = str(jsep["sdp"]) if jsep and jsep.get("type") == "offer" else pending
        await self._save()
        return Offered(resource_id, offer, list(subscription.feeds.values()), subscription.streams)

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
                self._announce(subscription.summit_id, {"type": "feeds"})

    async def answer(self, resource_id: str, answer: str) -> None:
        subscription = self._subscription(resource_id)
        if subscription.handle is None:
            raise IllegalTransition("there is no offer to answer yet")
        try:
            await subscription.handle.message(
                {"request": "start"}, {"type": "answer", "sdp": answer}
            )
            # Janus offered and controls ICE: it learns the subscriber's addresses from
            # its connectivity checks, so the answer may come before the client gathers
            # (and the client may apply it only after Janus has it, which saves the DTLS
            # retransmission a lost first handshake packet costs).
            await subscription.handle.trickle_completed()
        except JanusError as error:
            raise BadDescription(f"the media server refused the answer: {error.reason}") from error
        except JanusUnavailable as error:
            raise MediaUnavailable("the media server did not answer") from error

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

    async def _attach(self) -> Handle:
        try:
            return await self.session.attach(VIDEOROOM)
        except JanusUnavailable as error:
            raise MediaUnavailable("the media server did not answer") from error
