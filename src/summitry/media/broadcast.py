"""The broadcast chain of a summit's public part.

Theory of operation
-------------------
Media reaches the public only through `rtp_forward`s of the room's publishers, opened
when the summit goes live and stopped at the cut: those forwards are the single
chokepoint. Each side has a slot: the picture and sound of the person the side has on
air (its principal by default, else whoever speaks for it). A slot is forwarded twice:

* into a Janus Streaming mountpoint (one per summit, a video and an audio stream per
  side) that public viewers watch over WHEP, and
* into an ffmpeg packager per side that writes low-latency HLS and the recording of the
  public part (a video file and an audio-only edition).

At the cut every forward is stopped first (nothing of the room reaches the chain after
that), then the packagers are finished (playlist ended, files closed) and the
recordings checksummed, and the mountpoint is destroyed. A packager that dies while
live is a broadcast failure: the summit cuts rather than broadcast half-blind.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from summitry.control.media import Publisher, RecordingFile
from summitry.domain.errors import IllegalTransition, MediaUnavailable, NotFound
from summitry.domain.events import RecordingsReady
from summitry.domain.model import Role
from summitry.domain.on_air import Speaker, on_air
from summitry.media.connection import Announce, JanusConnection, answer_offer, janus_errors
from summitry.media.janus import Handle, JanusError, JanusUnavailable, janus_id
from summitry.media.packager import (
    AUDIO_PT,
    VIDEO_PT,
    Packager,
    Recording,
    free_udp_ports,
    read_recordings,
    seal,
)

log = logging.getLogger(__name__)

STREAMING = "janus.plugin.streaming"

Failed = Callable[[str], Awaitable[None]]
# Told the recordings of a summit's public part once they are sealed.
Sealed = Callable[[str, list[RecordingFile]], Awaitable[None]]


class LivePublisher(Protocol):
    """A feed of the room that is up, as the broadcast chain sees it."""

    @property
    def feed_id(self) -> int: ...

    @property
    def publisher(self) -> Publisher: ...

    @property
    def mids(self) -> Mapping[str, str]:
        """kind ("audio", "video") -> the mid of its first stream of that kind."""
        ...

    @property
    def simulcast(self) -> bool:
        """Whether its video comes in layers."""
        ...


class Room(Protocol):
    """What the broadcast chain needs of the summits' rooms (JanusRooms has it): who
    publishes, and forwards of their streams, the single chokepoint."""

    def live_publishers(self, summit_id: str) -> Sequence[LivePublisher]: ...

    async def forward(
        self, summit_id: str, feed_id: int, streams: list[dict[str, Any]]
    ) -> list[int]: ...

    async def stop_forward(self, summit_id: str, feed_id: int, stream_id: int) -> None: ...

    async def stop_all_forwards(self, summit_id: str) -> int: ...

    async def request_keyframe(self, summit_id: str, feed_id: int) -> None: ...


def speaker_of(live: LivePublisher) -> Speaker | None:
    """The publisher as the on-air ranking sees them (None: a role it does not know)."""
    publisher = live.publisher
    try:
        return Speaker(publisher.participant_id, publisher.side_id, Role(publisher.role))
    except ValueError:
        return None


def on_air_of(
    publishers: Sequence[LivePublisher], side_id: str, chosen: str | None
) -> LivePublisher | None:
    """The publisher a side has on air (see domain/on_air.py)."""
    speakers = [(speaker_of(live), live) for live in publishers]
    speaker = on_air([s for s, _ in speakers if s is not None], side_id, chosen)
    if speaker is None:
        return None
    return next(live for s, live in speakers if s is speaker)


@dataclass
class Slot:
    side_id: str
    position: int
    mountpoint_ports: tuple[int, int, int]  # video, video RTCP, audio
    packager_ports: tuple[int, int]  # video, audio
    feed_id: int | None = None
    forwards: list[int] = field(default_factory=list)
    packager: Packager | None = None


@dataclass
class Broadcast:
    summit_id: str
    mountpoint: int
    secret: str
    slots: list[Slot]
    folder: Path
    started: float = field(default_factory=time.monotonic)


@dataclass
class Viewer:
    summit_id: str
    handle: Handle
    gone: Callable[[], None]
    follower: asyncio.Task[None] | None = None


class BroadcastChain:
    def __init__(
        self,
        connection: JanusConnection,
        room: Room,
        announce: Announce,
        folder: Path,
        ffmpeg: str,
        viewer_connect_seconds: float = 20,
    ) -> None:
        self._connection = connection
        self.viewer_connect_seconds = viewer_connect_seconds
        self.room = room
        self._announce = announce
        self.folder = folder
        self.ffmpeg = ffmpeg
        self.on_failure: list[Failed] = []
        self.on_sealed: list[Sealed] = []
        self._live: dict[str, Broadcast] = {}
        self._viewers: dict[str, Viewer] = {}
        self._streaming: Handle | None = None
        self._lock = asyncio.Lock()
        self._finishing: set[asyncio.Task[list[Recording]]] = set()
        self._chosen: dict[tuple[str, str], str] = {}  # (summit, side) -> participant

    def is_live(self, summit_id: str) -> bool:
        return summit_id in self._live

    def recordings(self, summit_id: str) -> list[RecordingFile]:
        return read_recordings(self.folder / summit_id)

    def output_folder(self, summit_id: str, position: int) -> Path:
        return self.folder / summit_id / str(position)

    async def _control(self) -> Handle:
        session = self._connection.session
        if self._streaming is None or self._streaming.session is not session:
            self._streaming = await session.attach(STREAMING)
        return self._streaming

    # --- going live and cutting

    async def start(self, summit_id: str, sides: tuple[str, str]) -> None:
        async with self._lock:
            if summit_id in self._live:
                return
            # All ports at once, so no two slots are handed the same free port.
            ports = free_udp_ports(3 * len(sides))
            pairs = [
                port
                for port in free_udp_ports(2 * len(sides) + 4, pairs=True)
                if not {port, port + 1} & set(ports)
            ]
            slots = []
            for position, side_id in enumerate(sides):
                video, rtcp, audio = ports[3 * position :][:3]
                packager_video, packager_audio = pairs[2 * position :][:2]
                slots.append(
                    Slot(side_id, position, (video, rtcp, audio), (packager_video, packager_audio))
                )
            broadcast = Broadcast(
                summit_id,
                janus_id(),
                secrets.token_urlsafe(18),
                slots,
                self.folder / summit_id,
            )
            await self._create_mountpoint(broadcast)
            self._live[summit_id] = broadcast
        await self.refresh(summit_id)
        log.info("broadcast of %s is live", summit_id)

    async def _create_mountpoint(self, broadcast: Broadcast) -> None:
        media: list[dict[str, Any]] = []
        for slot in broadcast.slots:
            video, rtcp, audio = slot.mountpoint_ports
            media += [
                {
                    "type": "video",
                    "mid": f"v{slot.position}",
                    "label": f"side {slot.position}",
                    "port": video,
                    "rtcpport": rtcp,
                    "pt": VIDEO_PT,
                    "codec": "vp8",
                    "videobufferkf": True,
                    "iface": "127.0.0.1",
                },
                {
                    "type": "audio",
                    "mid": f"a{slot.position}",
                    "port": audio,
                    "pt": AUDIO_PT,
                    "codec": "opus",
                    "iface": "127.0.0.1",
                },
            ]
        control = await self._control()
        await control.request(
            {
                "request": "create",
                "admin_key": self._connection.admin_key,
                "type": "rtp",
                "id": broadcast.mountpoint,
                "name": f"summit {broadcast.summit_id}",
                "permanent": False,
                "secret": broadcast.secret,
                "is_private": True,
                "media": media,
            }
        )

    async def refresh(self, summit_id: str) -> None:
        """Puts each side's speaker on air (the publishers changed)."""
        async with self._lock:
            broadcast = self._live.get(summit_id)
            if broadcast is None:
                return
            publishers = self.room.live_publishers(summit_id)
            for slot in broadcast.slots:
                chosen = on_air_of(
                    publishers, slot.side_id, self._chosen.get((summit_id, slot.side_id))
                )
                feed_id = chosen.feed_id if chosen else None
                if feed_id == slot.feed_id:
                    continue
                await self._unforward(summit_id, slot)
                if chosen is None:
                    continue
                await self._forward(broadcast, slot, chosen)

    async def choose_on_air(self, summit_id: str, side_id: str, participant_id: str | None) -> None:
        if participant_id is None:
            self._chosen.pop((summit_id, side_id), None)
        else:
            self._chosen[(summit_id, side_id)] = participant_id
        await self.refresh(summit_id)

    def on_air_now(self, summit_id: str) -> dict[str, str | None]:
        broadcast = self._live.get(summit_id)
        if broadcast is None:
            return {}
        by_feed = {
            p.feed_id: p.publisher.participant_id for p in self.room.live_publishers(summit_id)
        }
        return {
            slot.side_id: by_feed.get(slot.feed_id) if slot.feed_id else None
            for slot in broadcast.slots
        }

    async def _forward(self, broadcast: Broadcast, slot: Slot, publisher: LivePublisher) -> None:
        video_mid, audio_mid = publisher.mids.get("video"), publisher.mids.get("audio")
        if video_mid is None or audio_mid is None:
            return
        video, rtcp, audio = slot.mountpoint_ports
        packager_video, packager_audio = slot.packager_ports
        if slot.packager is None:
            slot.packager = await Packager.start(
                self.ffmpeg,
                self.output_folder(broadcast.summit_id, slot.position),
                packager_video,
                packager_audio,
                functools.partial(self._packager_died, broadcast.summit_id),
            )
        if self._live.get(broadcast.summit_id) is not broadcast:
            return  # cut while the packager started: nothing more goes on air
        slot.feed_id = publisher.feed_id
        # A simulcast camera goes on air as one stream, its highest layer (Janus's
        # forwarder acts as a viewer); a single-layer one is forwarded as it is (a
        # viewer-like forwarder of it would forward nothing).
        video_layer = {"pt": VIDEO_PT, "simulcast": publisher.simulcast}
        slot.forwards = await self.room.forward(
            broadcast.summit_id,
            publisher.feed_id,
            [
                {"mid": video_mid, "port": video, "rtcp_port": rtcp, **video_layer},
                {"mid": audio_mid, "port": audio, "pt": AUDIO_PT},
                {"mid": video_mid, "port": packager_video, **video_layer},
                {"mid": audio_mid, "port": packager_audio, "pt": AUDIO_PT},
            ],
        )
        if self._live.get(broadcast.summit_id) is not broadcast:
            await self._unforward(broadcast.summit_id, slot)  # the cut came meanwhile
            return
        log.info(
            "side %s on air: feed %s (%s), forwards %s",
            slot.position,
            publisher.feed_id,
            publisher.publisher.name,
            slot.forwards,
        )
        await self.room.request_keyframe(broadcast.summit_id, publisher.feed_id)

    async def _unforward(self, summit_id: str, slot: Slot) -> None:
        if slot.feed_id is not None:
            feed_id = slot.feed_id
            await asyncio.gather(
                *(
                    self.room.stop_forward(summit_id, feed_id, stream_id)
                    for stream_id in slot.forwards
                )
            )
        slot.feed_id, slot.forwards = None, []

    async def stop(self, summit_id: str) -> None:
        """The cut: every forward this broadcast made stops before this returns (nothing
        of the room reaches the chain after it). The rest is done in the background, so
        the participants hear of the cut at once: any forward Janus still lists for the
        room is stopped, and the outputs are finished."""
        # No lock: the cut never waits for a packager that is starting. Whatever goes on
        # air meanwhile finds the summit no longer live and takes itself off again.
        broadcast = self._live.pop(summit_id, None)
        if broadcast is None:
            # Not ours (a previous process went live): close the chokepoint anyway.
            await self.room.stop_all_forwards(summit_id)
            return
        await asyncio.gather(*(self._unforward(summit_id, slot) for slot in broadcast.slots))
        log.info("broadcast of %s cut: forwards stopped", summit_id)
        task = asyncio.create_task(self._finish(broadcast))
        self._finishing.add(task)
        task.add_done_callback(self._finishing.discard)

    async def _finish(self, broadcast: Broadcast) -> list[Recording]:
        # Belt and braces: whatever Janus still forwards for this room stops too.
        leftover = await self.room.stop_all_forwards(broadcast.summit_id)
        if leftover:
            log.error(
                "stopped %d forwards of %s nobody had recorded", leftover, broadcast.summit_id
            )
        for rid in [
            rid for rid, viewer in self._viewers.items() if viewer.summit_id == broadcast.summit_id
        ]:
            await self.unwatch(rid)
        with contextlib.suppress(JanusError, JanusUnavailable, MediaUnavailable):
            await (await self._control()).request(
                {
                    "request": "destroy",
                    "id": broadcast.mountpoint,
                    "secret": broadcast.secret,
                    "permanent": False,
                }
            )
        packagers = [slot for slot in broadcast.slots if slot.packager is not None]
        await asyncio.gather(*(slot.packager.finish() for slot in packagers if slot.packager))
        recordings = [
            await asyncio.to_thread(
                seal,
                self.output_folder(broadcast.summit_id, slot.position),
                slot.side_id,
                slot.position,
            )
            for slot in packagers
        ]
        log.info("recordings of %s sealed", broadcast.summit_id)
        files = await asyncio.to_thread(self.recordings, broadcast.summit_id)
        for callback in self.on_sealed:
            try:
                await callback(broadcast.summit_id, files)
            except Exception:  # the recordings stay sealed in their manifests; it is logged
                log.exception(
                    "telling that the recordings of %s are sealed failed", broadcast.summit_id
                )
        self._announce(broadcast.summit_id, RecordingsReady())
        return recordings

    async def close(self) -> None:
        """Shutdown: live broadcasts end (forwards stopped, outputs finished)."""
        for summit_id in list(self._live):
            with contextlib.suppress(JanusError, JanusUnavailable, MediaUnavailable):
                await self.stop(summit_id)
        if self._finishing:
            await asyncio.gather(*self._finishing, return_exceptions=True)

    async def _packager_died(self, summit_id: str, code: int) -> None:
        log.error("a packager of %s exited with %s while live: cutting", summit_id, code)
        await self.fail(summit_id)

    async def fail(self, summit_id: str) -> None:
        for callback in self.on_failure:
            try:
                await callback(summit_id)
            except Exception:  # the cut may already be under way; it is logged
                log.exception("cutting %s after a broadcast failure failed", summit_id)

    async def lost_media_server(self) -> None:
        """Janus went away: every live broadcast failed (it is never resumed)."""
        self._streaming = None
        for viewer in self._viewers.values():
            viewer.gone()
            if viewer.follower is not None:
                viewer.follower.cancel()
        self._viewers.clear()
        for summit_id in list(self._live):
            await self.fail(summit_id)

    # --- WHEP viewers

    async def watch(self, summit_id: str, offer: str, gone: Callable[[], None]) -> tuple[str, str]:
        broadcast = self._live.get(summit_id)
        if broadcast is None:
            raise IllegalTransition("the summit is not broadcasting now")
        async with janus_errors():
            handle = await self._connection.session.attach(STREAMING)
        _, answer = await answer_offer(
            handle, {"request": "watch", "id": broadcast.mountpoint}, offer
        )
        await handle.trickle_completed()
        resource_id = secrets.token_urlsafe(12)
        viewer = self._viewers[resource_id] = Viewer(summit_id, handle, gone)
        viewer.follower = asyncio.create_task(self._follow(resource_id, viewer))
        return resource_id, answer

    def watching(self, summit_id: str) -> int:
        return sum(viewer.summit_id == summit_id for viewer in self._viewers.values())

    async def _follow(self, resource_id: str, viewer: Viewer) -> None:
        """Lets a viewer go when its connection is not up in time, or when it ends
        without a DELETE (Janus hangs up on ICE or DTLS failure, or a closed peer)."""
        events = viewer.handle.session.events(viewer.handle.id)
        try:
            async with asyncio.timeout(self.viewer_connect_seconds):
                while (kind := (await events.get()).get("janus")) != "webrtcup":
                    if kind in ("hangup", "detached"):
                        break
                else:
                    kind = None
            while kind not in ("hangup", "detached"):
                kind = (await events.get()).get("janus")
            log.info("WHEP viewer %s of %s went away", resource_id, viewer.summit_id)
        except TimeoutError:
            log.info(
                "WHEP viewer %s of %s did not connect within %s s",
                resource_id,
                viewer.summit_id,
                self.viewer_connect_seconds,
            )
        await self.unwatch(resource_id)

    def viewer_summit(self, resource_id: str) -> str:
        viewer = self._viewers.get(resource_id)
        if viewer is None:
            raise NotFound("no such WHEP resource")
        return viewer.summit_id

    async def unwatch(self, resource_id: str) -> None:
        viewer = self._viewers.pop(resource_id, None)
        if viewer is None:
            return
        viewer.gone()
        if viewer.follower is not None and viewer.follower is not asyncio.current_task():
            viewer.follower.cancel()
        with contextlib.suppress(JanusError, JanusUnavailable, MediaUnavailable):
            await viewer.handle.detach()
