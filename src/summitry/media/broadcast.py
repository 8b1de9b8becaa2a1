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
import hashlib
import json
import logging
import os
import secrets
import signal
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from summitry.control.media import RecordingFile
from summitry.domain.errors import IllegalTransition, MediaUnavailable, NotFound
from summitry.media.janus import Handle, JanusError, JanusUnavailable
from summitry.media.rooms import JanusRooms, PublisherResource, answer_offer

log = logging.getLogger(__name__)

STREAMING = "janus.plugin.streaming"
VIDEO_PT, AUDIO_PT = 96, 111
ON_AIR_ORDER = ("principal", "delegate", "coordinator", "interpreter")
# ffmpeg gives up on a silent input after this long: at the cut that ends it, and while
# live a side silent for longer is a broadcast failure (the summit cuts).
INPUT_TIMEOUT = 2
SEGMENT_SECONDS = 0.5

Failed = Callable[[str], Awaitable[None]]


def free_udp_ports(count: int, pairs: bool = False) -> list[int]:
    """Distinct free UDP ports on 127.0.0.1; with `pairs`, each with the next port free
    too (RTP on an even port, its RTCP on the odd one after it)."""
    sockets: list[socket.socket] = []
    ports: list[int] = []
    try:
        while len(ports) < count:
            probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sockets.append(probe)
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
            if pairs:
                if port % 2 or port + 1 > 65535:
                    continue
                partner = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                sockets.append(partner)
                try:
                    partner.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
            ports.append(port)
    finally:
        for probe in sockets:
            probe.close()
    return ports


def udp_port_taken(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


async def until_listening(ports: tuple[int, ...], process: asyncio.subprocess.Process) -> None:
    """Waits until ffmpeg has bound its input ports: a key frame sent before that is lost,
    and a browser sends the next one only when asked."""
    async with asyncio.timeout(10):
        while not all(udp_port_taken(port) for port in ports):
            if process.returncode is not None:
                return
            await asyncio.sleep(0.02)


def rtp_sdp(video_port: int, audio_port: int) -> str:
    """How ffmpeg reads one slot's forwarded RTP (the forwards rewrite payload types)."""
    return (
        "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=summitry slot\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        f"m=video {video_port} RTP/AVP {VIDEO_PT}\r\na=rtpmap:{VIDEO_PT} VP8/90000\r\n"
        f"m=audio {audio_port} RTP/AVP {AUDIO_PT}\r\na=rtpmap:{AUDIO_PT} opus/48000/2\r\n"
    )


def packager_command(ffmpeg: str, folder: Path) -> list[str]:
    """ffmpeg: VP8/Opus RTP in; 0.5 s HLS (H.264/AAC), a fragmented MP4 recording and an
    Ogg Opus audio edition out (settings measured in MEDIA-NOTES.md)."""
    hls = (
        f"[f=hls:hls_time={SEGMENT_SECONDS}:hls_list_size=8:"
        "hls_flags=independent_segments+program_date_time+delete_segments+temp_file:"
        f"hls_segment_filename={folder}/live/segment-%05d.ts:bsfs/v=dump_extra]"
        f"{folder}/live/index.m3u8"
    )
    # Each fragment reaches the disk at once: a recording stays whole even if ffmpeg dies.
    mp4 = (
        "[f=mp4:movflags=+frag_keyframe+empty_moov+default_base_moof:flush_packets=1]"
        f"{folder}/recording.mp4"
    )
    return [
        ffmpeg,
        "-nostdin",
        "-hide_banner",
        "-loglevel",
        "warning",
        "-y",
        "-protocol_whitelist",
        "file,udp,rtp",
        "-fflags",
        "+genpts",
        # Start as soon as a key frame shows the picture size, not after 5 s of probing.
        "-analyzeduration",
        "500000",
        # RTP on loopback barely reorders; waiting up to the default 0.5 s for a missing
        # packet adds that much latency and loses the tail of the public part at the cut.
        "-max_delay",
        "100000",
        "-probesize",
        "200000",
        "-listen_timeout",
        str(INPUT_TIMEOUT),
        "-i",
        str(folder / "slot.sdp"),
        "-map",
        "0:v:0",
        "-map",
        "0:a:0",
        # Frames keep the publisher's timing: a rate guessed from a short probe would
        # make ffmpeg invent thousands of duplicates.
        "-fps_mode:v",
        "passthrough",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-tune",
        "zerolatency",
        "-g",
        "15",
        "-keyint_min",
        "15",
        "-sc_threshold",
        "0",
        "-force_key_frames",
        f"expr:gte(t,n_forced*{SEGMENT_SECONDS})",
        "-b:v",
        "2500k",
        "-maxrate",
        "2500k",
        "-bufsize",
        "1250k",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        "-b:a",
        "128k",
        "-ar",
        "48000",
        "-flags",
        "+global_header",
        "-f",
        "tee",
        f"{hls}|{mp4}",
        "-map",
        "0:a:0",
        "-c:a",
        "copy",
        "-flush_packets",
        "1",
        "-page_duration",
        "200000",
        "-f",
        "ogg",
        str(folder / "audio.ogg"),
    ]


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class Packager:
    """One side's ffmpeg, supervised: an exit it was not asked for is a failure."""

    folder: Path
    process: asyncio.subprocess.Process
    watcher: asyncio.Task[None] | None = None
    finishing: bool = False

    @classmethod
    async def start(
        cls,
        ffmpeg: str,
        folder: Path,
        video_port: int,
        audio_port: int,
        on_exit: Callable[[int], Awaitable[None]],
    ) -> Packager:
        (folder / "live").mkdir(parents=True, exist_ok=True)
        (folder / "slot.sdp").write_text(rtp_sdp(video_port, audio_port))
        with (folder / "ffmpeg.log").open("ab") as log_file:
            process = await asyncio.create_subprocess_exec(
                *packager_command(ffmpeg, folder),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
            )
        (folder / "ffmpeg.pid").write_text(str(process.pid))
        packager = cls(folder, process)

        async def watch() -> None:
            code = await process.wait()
            if not packager.finishing:
                await on_exit(code)

        packager.watcher = asyncio.create_task(watch())
        await until_listening((video_port, audio_port), process)
        return packager

    async def finish(self) -> None:
        """Ends the outputs properly. One SIGINT asks ffmpeg to stop; it does so when its
        input read returns, at the latest when the silent input times out, and then ends
        the playlist and writes the files' trailers (a second SIGINT would abort those).
        SIGKILL only if it does not."""
        self.finishing = True
        process = self.process
        for sig in (signal.SIGINT, signal.SIGKILL):
            if process.returncode is not None:
                break
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(sig)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), INPUT_TIMEOUT + 1)
        (self.folder / "ffmpeg.pid").unlink(missing_ok=True)
        log.info("packager in %s finished with %s", self.folder, process.returncode)
        playlist = self.folder / "live" / "index.m3u8"
        if playlist.exists() and "#EXT-X-ENDLIST" not in playlist.read_text():
            with playlist.open("a") as handle:
                handle.write("#EXT-X-ENDLIST\n")


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


@dataclass(frozen=True)
class Recording:
    position: int
    video: Path
    audio: Path
    video_sha256: str
    audio_sha256: str


class BroadcastChain:
    def __init__(self, rooms: JanusRooms, folder: Path, ffmpeg: str) -> None:
        self.rooms = rooms
        self.folder = folder
        self.ffmpeg = ffmpeg
        self.on_failure: list[Failed] = []
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
        if self._streaming is None or self._streaming.session is not self.rooms.session:
            self._streaming = await self.rooms.session.attach(STREAMING)
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
                secrets.randbits(52) or 1,
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
                "admin_key": self.rooms.admin_key,
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
            publishers = self.rooms.live_publishers(summit_id)
            for slot in broadcast.slots:
                chosen = on_air(
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
            p.feed_id: p.publisher.participant_id for p in self.rooms.live_publishers(summit_id)
        }
        return {
            slot.side_id: by_feed.get(slot.feed_id) if slot.feed_id else None
            for slot in broadcast.slots
        }

    async def _forward(
        self, broadcast: Broadcast, slot: Slot, publisher: PublisherResource
    ) -> None:
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
        slot.forwards = await self.rooms.forward(
            broadcast.summit_id,
            publisher.feed_id,
            [
                {"mid": video_mid, "port": video, "rtcp_port": rtcp, "pt": VIDEO_PT},
                {"mid": audio_mid, "port": audio, "pt": AUDIO_PT},
                {"mid": video_mid, "port": packager_video, "pt": VIDEO_PT},
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
        await self.rooms.request_keyframe(publisher)

    async def _unforward(self, summit_id: str, slot: Slot) -> None:
        if slot.feed_id is not None:
            feed_id = slot.feed_id
            await asyncio.gather(
                *(
                    self.rooms.stop_forward(summit_id, feed_id, stream_id)
                    for stream_id in slot.forwards
                )
            )
        slot.feed_id, slot.forwards = None, []

    async def stop(self, summit_id: str) -> None:
        """The cut: every forward stops before this returns (nothing of the room reaches
        the chain after it). The outputs are finished in the background, so the
        participants hear of the cut at once."""
        # No lock: the cut never waits for a packager that is starting. Whatever goes on
        # air meanwhile finds the summit no longer live and takes itself off again.
        broadcast = self._live.pop(summit_id, None)
        if broadcast is None:
            # Not ours (a previous process went live): close the chokepoint anyway.
            await self.rooms.stop_all_forwards(summit_id)
            return
        await asyncio.gather(*(self._unforward(summit_id, slot) for slot in broadcast.slots))
        log.info("broadcast of %s cut: forwards stopped", summit_id)
        # Belt and braces: whatever Janus still forwards for this room stops too.
        leftover = await self.rooms.stop_all_forwards(summit_id)
        if leftover:
            log.error("stopped %d forwards of %s nobody had recorded", leftover, summit_id)
        task = asyncio.create_task(self._finish(broadcast))
        self._finishing.add(task)
        task.add_done_callback(self._finishing.discard)

    async def _finish(self, broadcast: Broadcast) -> list[Recording]:
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
        recordings = [await asyncio.to_thread(self._seal, broadcast, slot) for slot in packagers]
        log.info("recordings of %s sealed", broadcast.summit_id)
        self.rooms.announce(broadcast.summit_id, {"type": "recordings"})
        return recordings

    async def close(self) -> None:
        """Shutdown: live broadcasts end (forwards stopped, outputs finished)."""
        for summit_id in list(self._live):
            with contextlib.suppress(JanusError, JanusUnavailable, MediaUnavailable):
                await self.stop(summit_id)
        if self._finishing:
            await asyncio.gather(*self._finishing, return_exceptions=True)

    def end_orphans(self) -> None:
        """Stops packagers a crashed summitry left running (their pid files say which)."""
        for pid_file in self.folder.glob("*/*/ffmpeg.pid"):
            with contextlib.suppress(ValueError, OSError):
                pid = int(pid_file.read_text())
                command = Path(f"/proc/{pid}/cmdline").read_bytes()
                if str(pid_file.parent).encode() in command:
                    os.kill(pid, signal.SIGKILL)
                    log.warning("stopped the orphaned packager %s", pid)
            pid_file.unlink(missing_ok=True)

    def _seal(self, broadcast: Broadcast, slot: Slot) -> Recording:
        folder = self.output_folder(broadcast.summit_id, slot.position)
        video, audio = folder / "recording.mp4", folder / "audio.ogg"
        recording = Recording(
            slot.position,
            video,
            audio,
            sha256_of(video) if video.exists() else "",
            sha256_of(audio) if audio.exists() else "",
        )
        (folder / "manifest.json").write_text(
            json.dumps(
                {
                    "side": slot.side_id,
                    "video": {
                        "file": video.name,
                        "sha256": recording.video_sha256,
                        "bytes": video.stat().st_size if video.exists() else 0,
                    },
                    "audio": {
                        "file": audio.name,
                        "sha256": recording.audio_sha256,
                        "bytes": audio.stat().st_size if audio.exists() else 0,
                    },
                },
                indent=1,
            )
        )
        return recording

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
        self._viewers.clear()
        for summit_id in list(self._live):
            await self.fail(summit_id)

    # --- WHEP viewers

    async def watch(self, summit_id: str, offer: str) -> tuple[str, str]:
        broadcast = self._live.get(summit_id)
        if broadcast is None:
            raise IllegalTransition("the summit is not broadcasting now")
        try:
            handle = await self.rooms.session.attach(STREAMING)
        except JanusUnavailable as error:
            raise MediaUnavailable("the media server did not answer") from error
        _, answer = await answer_offer(
            handle, {"request": "watch", "id": broadcast.mountpoint}, offer
        )
        await handle.trickle_completed()
        resource_id = secrets.token_urlsafe(12)
        self._viewers[resource_id] = Viewer(summit_id, handle)
        return resource_id, answer

    def viewer_summit(self, resource_id: str) -> str:
        viewer = self._viewers.get(resource_id)
        if viewer is None:
            raise NotFound("no such WHEP resource")
        return viewer.summit_id

    async def unwatch(self, resource_id: str) -> None:
        viewer = self._viewers.pop(resource_id, None)
        if viewer is not None:
            await viewer.handle.detach()


def read_recordings(folder: Path) -> list[RecordingFile]:
    """The sealed recordings of a summit's public part, from their manifests."""
    found = []
    for manifest in sorted(folder.glob("*/manifest.json")):
        position = int(manifest.parent.name)
        entries = json.loads(manifest.read_text())
        for kind in ("video", "audio"):
            entry = entries[kind]
            if entry["bytes"]:
                found.append(
                    RecordingFile(
                        position,
                        kind,
                        str(manifest.parent / entry["file"]),
                        entry["sha256"],
                        entry["bytes"],
                    )
                )
    return found


def on_air(
    publishers: list[PublisherResource], side_id: str, chosen: str | None = None
) -> PublisherResource | None:
    """Who a side has on air: the participant its coordinator chose, while publishing;
    else its principal, else whoever ranks next in speaking for it."""
    candidates = [
        p for p in publishers if p.publisher.side_id == side_id and p.publisher.role in ON_AIR_ORDER
    ]
    for candidate in candidates:
        if candidate.publisher.participant_id == chosen:
            return candidate
    if not candidates:
        return None
    return min(candidates, key=lambda p: ON_AIR_ORDER.index(p.publisher.role))
