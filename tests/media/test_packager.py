"""One side's packager with real ffmpeg: silence does not end it, an RTCP BYE from this
machine does (with whole outputs), and it reads nothing that comes from elsewhere."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

from summitry.media.packager import Packager, free_udp_ports

SUMMITRY = "127.0.0.1"  # where Janus's forwards and summitry's BYE come from
ELSEWHERE = "127.0.0.2"  # another address of this machine


async def send_media(
    ports: tuple[int, int], source: str, seconds: int, size: str, bye: bool, seq: int = 0
) -> None:
    """`seconds` of a test picture (VP8) and a tone (Opus) as RTP from `source`, paced,
    its packets numbered from `seq`, ending with an RTCP BYE if `bye` (Janus's forwards
    send none)."""
    video, audio = ports
    rtcp = ["-seq", str(seq)] + ([] if bye else ["-rtpflags", "skip_rtcp"])
    sender = await asyncio.create_subprocess_exec(
        *("ffmpeg", "-nostdin", "-loglevel", "error"),
        *("-re", "-f", "lavfi", "-i", f"testsrc=size={size}:rate=15:duration={seconds}"),
        *("-re", "-f", "lavfi", "-i", f"sine=frequency=400:duration={seconds}"),
        *("-map", "0:v", "-c:v", "libvpx", "-deadline", "realtime", "-g", "15", *rtcp),
        *("-payload_type", "96", "-f", "rtp", f"rtp://127.0.0.1:{video}?localaddr={source}"),
        *("-map", "1:a", "-c:a", "libopus", "-payload_type", "111", *rtcp),
        *("-f", "rtp", f"rtp://127.0.0.1:{audio}?localaddr={source}"),
        stdout=asyncio.subprocess.DEVNULL,  # the SDP it would print
    )
    assert await sender.wait() == 0


async def started(folder: Path) -> tuple[Packager, list[int]]:
    """A packager, and the exit codes it reported as failures."""
    failures: list[int] = []

    async def failed(code: int) -> None:
        failures.append(code)

    ffmpeg = shutil.which("ffmpeg")
    assert ffmpeg
    video, audio = free_udp_ports(2, pairs=True)
    return await Packager.start(ffmpeg, folder, video, audio, failed), failures


async def video_of(path: Path) -> tuple[int, int]:
    """(width, frames) of the recording's video."""
    probe = await asyncio.create_subprocess_exec(
        *("ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0"),
        *("-show_entries", "stream=width,nb_read_frames", "-of", "json", str(path)),
        stdout=asyncio.subprocess.PIPE,
    )
    stream = json.loads((await probe.communicate())[0])["streams"][0]
    return int(stream["width"]), int(stream["nb_read_frames"])


async def test_silence_between_feeds_keeps_it_running_and_the_bye_ends_it_whole(
    tmp_path: Path,
) -> None:
    packager, failures = await started(tmp_path)
    await send_media(packager.ports, SUMMITRY, 2, "320x240", bye=False, seq=30_000)
    # The side goes silent, as when nobody is on air for a while, and a feed comes back,
    # numbered and timed afresh. (ffmpeg with a read timeout gave up on 2 s of silence,
    # which cut the summit; and it dropped a feed numbered behind the last one.)
    await asyncio.sleep(3)
    assert packager.process.returncode is None and failures == []
    await send_media(packager.ports, SUMMITRY, 2, "320x240", bye=False, seq=1_000)
    await packager.finish()
    assert packager.process.returncode == 0 and failures == []
    assert (tmp_path / "live" / "index.m3u8").read_text().rstrip().endswith("#EXT-X-ENDLIST")
    # Both feeds are in the recording: 2 x 2 s at 15 fps (the first key frame may be late).
    width, frames = await video_of(tmp_path / "recording.mp4")
    assert width == 320 and frames >= 45, frames
    assert (tmp_path / "audio.ogg").stat().st_size > 0


async def test_media_and_byes_from_elsewhere_are_not_read(tmp_path: Path) -> None:
    packager, failures = await started(tmp_path)
    await send_media(packager.ports, ELSEWHERE, 2, "160x120", bye=True)
    await send_media(packager.ports, SUMMITRY, 2, "320x240", bye=False)
    await packager.finish()
    assert packager.process.returncode == 0 and failures == []
    # Only this machine's loopback feed is recorded, whole: the other one's BYE ended
    # nothing and its smaller picture never came in.
    width, frames = await video_of(tmp_path / "recording.mp4")
    assert width == 320 and frames >= 15, (width, frames)
