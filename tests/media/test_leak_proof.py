"""The promise: not one frame or sound of the private part reaches the public, the live
stream or the recording. Publishers stamp every frame with its phase and a sequence
number and play a phase tone; everything that reached each public output is decoded
and judged."""

from __future__ import annotations

import asyncio
import io
import json
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import av
import httpx
import numpy as np
from aiortc import MediaStreamTrack, RTCPeerConnection

from tests.media.conftest import Room
from tests.media.peers import Publisher, watch_broadcast
from tests.media.stamps import (
    PRIVATE,
    PUBLIC,
    PhaseFlag,
    PhaseTone,
    StampedPicture,
    mono_samples,
    read_stamp,
    tones_in,
)
from tests.servers import bearer

FPS = 30


@dataclass
class Output:
    """What one public output carried: stamps per side and tone windows."""

    name: str
    stamps: dict[int, list[tuple[int, str]]] = field(default_factory=lambda: defaultdict(list))
    tones: dict[str, int] = field(default_factory=lambda: {PUBLIC: 0, PRIVATE: 0})

    def add_tones(self, samples: np.ndarray, rate: int) -> None:
        for phase, count in tones_in(samples, rate).items():
            self.tones[phase] += count


def decoded(container: av.container.InputContainer) -> Iterator[av.frame.Frame]:
    """Every frame a player would show: a packet that does not decode is skipped."""
    for packet in container.demux():
        try:
            yield from packet.decode()
        except av.error.InvalidDataError:
            continue


def decode_file(output: Output, side: int, data: bytes) -> None:
    container = av.open(io.BytesIO(data))
    audio: list[np.ndarray] = []
    rate = 48_000
    for frame in decoded(container):
        if isinstance(frame, av.VideoFrame):
            output.stamps[side].append(read_stamp(frame.to_ndarray(format="rgb24")))
        elif isinstance(frame, av.AudioFrame):
            rate = frame.sample_rate
            audio.append(mono_samples(frame))
    if audio:
        output.add_tones(np.concatenate(audio), rate)


async def follow_phase(
    http: httpx.AsyncClient, summit_id: str, token: str, flag: PhaseFlag, seen: dict[str, float]
) -> None:
    """The publisher's side of the cut: it starts stamping `private` once told."""
    async with http.stream(
        "GET", f"/api/v1/summits/{summit_id}/events", params={"token": token}, timeout=None
    ) as events:
        async for line in events.aiter_lines():
            if line.startswith("data: "):
                event = json.loads(line[6:])
                if event["type"] == "phase" and event["phase"] == PRIVATE:
                    flag.phase = PRIVATE
                    seen.setdefault("private", time.monotonic())
                    return


async def watch_whep(
    http: httpx.AsyncClient, url: str, output: Output, stop: asyncio.Event
) -> None:
    viewer = RTCPeerConnection()
    readers: list[asyncio.Task[None]] = []
    audio: dict[int, list[np.ndarray]] = defaultdict(list)

    async def read(track: MediaStreamTrack, side: int) -> None:
        try:
            while True:
                frame = await track.recv()
                if track.kind == "video":
                    output.stamps[side].append(read_stamp(frame.to_ndarray(format="rgb24")))
                else:
                    audio[side].append(mono_samples(frame))
        except Exception:  # the track ends when the broadcast does
            return

    @viewer.on("track")
    def on_track(track: MediaStreamTrack) -> None:
        side = [t.receiver.track for t in viewer.getTransceivers() if t.kind == track.kind].index(
            track
        )
        readers.append(asyncio.create_task(read(track, side)))

    answer = await watch_broadcast(http, url, viewer)
    assert answer.status_code == 201, answer.text
    await stop.wait()
    await viewer.close()
    for reader in readers:
        reader.cancel()
    for samples in audio.values():
        output.add_tones(np.concatenate(samples), 48_000)


async def collect_hls(
    http: httpx.AsyncClient,
    playlists: list[str],
    segments: dict[int, dict[str, bytes]],
    stop: asyncio.Event,
) -> None:
    """Downloads every segment the live playlists list, as a viewer would."""
    while True:
        finished = stop.is_set()
        for side, url in enumerate(playlists):
            listing = await http.get(url)
            if listing.status_code != 200:
                continue
            for line in listing.text.splitlines():
                if line.endswith(".ts") and line not in segments[side]:
                    got = await http.get(url.rsplit("/", 1)[0] + "/" + line)
                    if got.status_code == 200:
                        segments[side][line] = got.content
        if finished:
            return
        await asyncio.sleep(0.25)


def last_public(stamps: list[tuple[int, str]]) -> int:
    return max(sequence for sequence, phase in stamps if phase == PUBLIC)


async def test_nothing_private_reaches_any_public_output(
    http: httpx.AsyncClient, room: Room
) -> None:
    sid, slug = room.summit.id, room.summit.slug
    flags = [PhaseFlag(), PhaseFlag()]
    seen: dict[str, float] = {}
    publishers = [
        Publisher(http, sid, token, (StampedPicture(flag), PhaseTone(flag)))
        for token, flag in zip((room.ru_principal, room.us_principal), flags, strict=True)
    ]
    followers = [
        asyncio.create_task(follow_phase(http, sid, token, flag, seen))
        for token, flag in zip((room.ru_principal, room.us_principal), flags, strict=True)
    ]
    whep, hls, recording = Output("WHEP"), Output("HLS"), Output("recording")
    stop_watching = asyncio.Event()
    segments: dict[int, dict[str, bytes]] = defaultdict(dict)
    try:
        for publisher in publishers:
            assert (await publisher.publish()).status_code == 201
        await asyncio.sleep(1.0)  # both feeds up
        for token in (room.summit.ru_token, room.summit.us_token):
            await http.post(f"/api/v1/summits/{sid}/actions/consent", headers=bearer(token))
        public = (await http.get(f"/api/v1/public/{slug}")).json()
        assert public["live"]
        viewer = asyncio.create_task(watch_whep(http, public["whep"], whep, stop_watching))
        collector = asyncio.create_task(
            collect_hls(
                http, [stream["hls"] for stream in public["streams"]], segments, stop_watching
            )
        )
        await asyncio.sleep(5)  # the public part

        cut_requested = time.monotonic()
        cut = await http.post(
            f"/api/v1/summits/{sid}/actions/cut", headers=bearer(room.summit.ru_token)
        )
        assert cut.json()["phase"] == PRIVATE
        await asyncio.wait_for(asyncio.gather(*followers), 10)
        cut_latency = seen["private"] - cut_requested
        await asyncio.sleep(3)  # the private part, stamped private, tone at 1 kHz
        stop_watching.set()
        await asyncio.wait_for(asyncio.gather(viewer, collector), 20)

        async with asyncio.timeout(20):
            while len((await http.get(f"/api/v1/public/{slug}")).json()["recordings"]) < 4:
                await asyncio.sleep(0.2)
        for item in (await http.get(f"/api/v1/public/{slug}")).json()["recordings"]:
            side = 0 if item["side"] == "Russian Federation" else 1
            decode_file(recording, side, (await http.get(item["url"])).content)
        for side, files in segments.items():
            for name in sorted(files):
                decode_file(hls, side, files[name])
    finally:
        stop_watching.set()
        for follower in followers:
            follower.cancel()
        for publisher in publishers:
            await publisher.close()

    report: dict[str, Any] = {"cut_latency_ms": round(cut_latency * 1000)}
    for output in (whep, hls, recording):
        for side, flag in enumerate(flags):
            stamps = output.stamps[side]
            private = [s for s in stamps if s[1] == PRIVATE]
            assert stamps, f"{output.name} carried nothing of side {side}"
            assert private == [], f"{output.name} leaked {len(private)} private frames"
            made_public = last_public(flag.made)
            gap = (made_public - last_public(stamps)) / FPS
            report[f"{output.name}_{side}"] = {"frames": len(stamps), "gap_s": round(gap, 3)}
            # The public part is complete up to the cut, less at most the cut latency
            # and what is in flight (the packager waits up to 0.1 s for late packets).
            assert gap <= cut_latency + 0.3, report
        assert output.tones[PRIVATE] == 0, f"{output.name} carried the private tone"
        assert output.tones[PUBLIC] > 0, f"{output.name} carried no public sound"
    for flag in flags:
        assert sum(1 for _, phase in flag.made if phase == PRIVATE) > 60  # there was a private part
    print(json.dumps(report))
