"""The packager of one side's broadcast: ffmpeg reading the side's forwarded RTP and
writing low-latency HLS, the recording of the public part and its audio-only edition;
the local UDP ports it reads; and the recordings' manifest, sealed with their SHA-256
once ffmpeg has finished."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import signal
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from summitry.control.media import RecordingFile

log = logging.getLogger(__name__)

VIDEO_PT, AUDIO_PT = 96, 111
SEGMENT_SECONDS = 0.5
# How long ffmpeg has to bind its inputs (a loaded machine starts it slowly; forwarding
# before then only loses the first key frame, which is asked for again), and to end its
# outputs after the RTCP BYE, before the signals.
START_SECONDS = 10
FINISH_SECONDS = 5
# An empty receiver report and a BYE: ffmpeg's RTP input ends once every stream of its
# SDP has had one (a lone BYE is not read as RTCP).
RTCP_BYE = bytes.fromhex("80c900010000000081cb000100000000")


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


def unread_bytes(ports: tuple[int, ...]) -> int:
    """What waits unread in the receive queues of this machine's UDP sockets bound to
    `ports` (/proc/net/udp: local address and port, then tx_queue:rx_queue, in hex)."""
    wanted = {f"{port:04X}" for port in ports}
    unread = 0
    with open("/proc/net/udp") as table:
        for line in table.readlines()[1:]:
            fields = line.split()
            if fields[1].rsplit(":", 1)[1] in wanted:
                unread += int(fields[4].split(":")[1], 16)
    return unread


async def until_listening(ports: tuple[int, ...], process: asyncio.subprocess.Process) -> None:
    """Waits until ffmpeg has bound its input ports: a key frame sent before that is lost,
    and a browser sends the next one only when asked. A start slower than START_SECONDS
    is logged and goes on: the broadcast does not fail for it."""
    try:
        async with asyncio.timeout(START_SECONDS):
            while not all(udp_port_taken(port) for port in ports):
                if process.returncode is not None:
                    return
                await asyncio.sleep(0.02)
    except TimeoutError:
        log.warning(
            "ffmpeg (pid %s) has not bound %s after %s s", process.pid, ports, START_SECONDS
        )


def rtp_sdp(video_port: int, audio_port: int) -> str:
    """How ffmpeg reads one slot's forwarded RTP (the forwards rewrite payload types).
    ffmpeg binds every address: the source filter keeps out whatever does not come from
    this machine's loopback (Janus's forwards, and summitry's BYE)."""
    only_loopback = "a=source-filter: incl IN IP4 * 127.0.0.1\r\n"
    return (
        "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=summitry slot\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        f"m=video {video_port} RTP/AVP {VIDEO_PT}\r\na=rtpmap:{VIDEO_PT} VP8/90000\r\n"
        + only_loopback
        + f"m=audio {audio_port} RTP/AVP {AUDIO_PT}\r\na=rtpmap:{AUDIO_PT} opus/48000/2\r\n"
        + only_loopback
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
        "-probesize",
        "200000",
        # No read timeout: a side with nobody on air for a while, or a forward slow to
        # start, is silence, not the end; the RTCP BYE of finish() is.
        # Arrival times, not RTP timestamps: each feed put on air (another speaker, a
        # publisher back after a reconnect) starts its own timestamps at random, and a
        # jump backwards makes the muxers drop every frame after it.
        "-use_wallclock_as_timestamps",
        "1",
        # Nor are its sequence numbers ahead of the last feed's: without a reorder queue
        # ffmpeg drops no packet as "received too late", and waits for no missing one
        # (which added latency and lost the public part's tail at the cut). Loopback
        # does not reorder.
        "-reorder_queue_size",
        "0",
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
    ports: tuple[int, int]  # RTP in: video, audio (each port's next one is its RTCP)
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
        packager = cls(folder, process, (video_port, audio_port))

        async def watch() -> None:
            code = await process.wait()
            if not packager.finishing:
                await on_exit(code)

        packager.watcher = asyncio.create_task(watch())
        await until_listening(packager.ports, process)
        return packager

    async def finish(self) -> None:
        """Ends the outputs properly, once the forwards have stopped: an RTCP BYE on each
        input makes ffmpeg end the playlist and write the files' trailers. SIGINT, then
        SIGKILL, only if it does not within FINISH_SECONDS."""
        self.finishing = True
        process = self.process
        # ffmpeg reads RTCP before RTP: a BYE sent while a loaded ffmpeg still has media
        # queued would end the outputs without the public part's last seconds.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(FINISH_SECONDS):
                while unread_bytes(self.ports):
                    if process.returncode is not None:
                        break
                    await asyncio.sleep(0.02)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as bye:
            for port in self.ports:
                bye.sendto(RTCP_BYE, ("127.0.0.1", port + 1))
        for sig in (None, signal.SIGINT, signal.SIGKILL):
            if process.returncode is not None:
                break
            if sig is not None:
                log.warning("packager in %s still running: %s", self.folder, sig.name)
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(sig)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), FINISH_SECONDS)
        (self.folder / "ffmpeg.pid").unlink(missing_ok=True)
        log.info("packager in %s finished with %s", self.folder, process.returncode)
        playlist = self.folder / "live" / "index.m3u8"
        if playlist.exists() and "#EXT-X-ENDLIST" not in playlist.read_text():
            with playlist.open("a") as handle:
                handle.write("#EXT-X-ENDLIST\n")


@dataclass(frozen=True)
class Recording:
    position: int
    video: Path
    audio: Path
    video_sha256: str
    audio_sha256: str


def seal(folder: Path, side_id: str, position: int) -> Recording:
    """Checksums a finished packager's recordings into its `manifest.json`."""
    video, audio = folder / "recording.mp4", folder / "audio.ogg"
    recording = Recording(
        position,
        video,
        audio,
        sha256_of(video) if video.exists() else "",
        sha256_of(audio) if audio.exists() else "",
    )
    (folder / "manifest.json").write_text(
        json.dumps(
            {
                "side": side_id,
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


def end_orphans(folder: Path) -> None:
    """Stops packagers a crashed summitry left running below `folder` (their pid files
    say which)."""
    for pid_file in folder.glob("*/*/ffmpeg.pid"):
        with contextlib.suppress(ValueError, OSError):
            pid = int(pid_file.read_text())
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
            if str(pid_file.parent).encode() in command:
                os.kill(pid, signal.SIGKILL)
                log.warning("stopped the orphaned packager %s", pid)
        pid_file.unlink(missing_ok=True)
