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
from typing import Any, Protocol

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


class StampingPublisher(Protocol):
    """A principal whose frames and sound say which phase they were made in."""

    async def publish(self) -> None: ...

    def learn_private(self) -> None:
        """Told of the cut (a page learns it from its own event stream)."""

    async def made(self) -> tuple[int, int]:
        """(the last sequence number stamped public, how many frames stamped private)."""
        ...

    async def close(self) -> None: ...


class AiortcPrincipal:
    def __init__(self, http: httpx.AsyncClient, summit_id: str, token: str) -> None:
        self.flag = PhaseFlag()
        self.publisher = Publisher(
            http, summit_id, token, (StampedPicture(self.flag), PhaseTone(self.flag))
        )

    async def publish(self) -> None:
        assert (await self.publisher.publish()).status_code == 201

    def learn_private(self) -> None:
        self.flag.phase = PRIVATE

    async def made(self) -> tuple[int, int]:
        return (
            last_public(self.flag.made),
            sum(1 for _, phase in self.flag.made if phase == PRIVATE),
        )

    async def close(self) -> None:
        await self.publisher.close()


async def follow_phase(
    http: httpx.AsyncClient, summit_id: str, token: str, publishers: list[StampingPublisher]
) -> float:
    """The publishers' side of the cut: they stamp `private` once told. Returns when."""
    async with http.stream(
        "GET", f"/api/v1/summits/{summit_id}/events", headers=bearer(token), timeout=None
    ) as events:
        async for line in events.aiter_lines():
            if line.startswith("data: "):
                event = json.loads(line[6:])
                if event["type"] == "phase" and event["phase"] == PRIVATE:
                    for publisher in publishers:
                        publisher.learn_private()
                    return time.monotonic()
    raise AssertionError("the event stream ended before the cut")


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
    await prove_no_leak(
        http,
        room,
        [
            AiortcPrincipal(http, room.summit.id, token)
            for token in (room.ru_principal, room.us_principal)
        ],
    )


async def prove_no_leak(
    http: httpx.AsyncClient, room: Room, publishers: list[StampingPublisher]
) -> dict[str, Any]:
    """Broadcasts the stamping principals, cuts, goes on in private, then decodes what
    reached every public output and judges it. Returns the figures."""
    sid, slug = room.summit.id, room.summit.slug
    follower = asyncio.create_task(follow_phase(http, sid, room.summit.us_token, publishers))
    whep, hls, recording = Output("WHEP"), Output("HLS"), Output("recording")
    stop_watching = asyncio.Event()
    segments: dict[int, dict[str, bytes]] = defaultdict(dict)
    try:
        for publisher in publishers:
            await publisher.publish()
        await asyncio.sleep(1.5)  # both feeds up
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
        cut_latency = await asyncio.wait_for(follower, 10) - cut_requested
        await asyncio.sleep(3)  # the private part, stamped private, tone at 1 kHz
        stop_watching.set()
        await asyncio.wait_for(asyncio.gather(viewer, collector), 20)
        made = [await publisher.made() for publisher in publishers]

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
        follower.cancel()
        for publisher in publishers:
            await publisher.close()

    report: dict[str, Any] = {"cut_latency_ms": round(cut_latency * 1000)}
    for output in (whep, hls, recording):
        for side, (made_public, _) in enumerate(made):
            stamps = output.stamps[side]
            private = [s for s in stamps if s[1] == PRIVATE]
            assert stamps, f"{output.name} carried nothing of side {side}"
            assert private == [], f"{output.name} leaked {len(private)} private frames"
            gap = (made_public - last_public(stamps)) / FPS
            report[f"{output.name}_{side}"] = {"frames": len(stamps), "gap_s": round(gap, 3)}
            # The public part is complete up to the cut, less at most the cut latency
            # and what is in flight.
            assert gap <= cut_latency + 0.3, report
        assert output.tones[PRIVATE] == 0, f"{output.name} carried the private tone"
        assert output.tones[PUBLIC] > 0, f"{output.name} carried no public sound"
    for _, private_made in made:
        assert private_made > 60  # there was a private part, and it was stamped
    print(json.dumps(report))
    return report
