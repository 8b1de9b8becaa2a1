"""aiortc peers for the media tests: a WHIP publisher of synthetic video and a tone,
and a room subscriber that counts the frames it decodes."""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import math
from collections import Counter
from typing import Any

import aioice.ice
import httpx
import numpy as np
from aiortc import (
    MediaStreamTrack,
    RTCPeerConnection,
    RTCSessionDescription,
    VideoStreamTrack,
)
from av import AudioFrame, VideoFrame

SAMPLE_RATE = 48_000
SAMPLES = 960  # 20 ms


def gather_only_on(address: str) -> None:
    """Janus answers ICE only on its own address, so the peers gather there too."""
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: [address]


class MovingPicture(VideoStreamTrack):
    """320x240 frames whose brightness changes with every frame."""

    async def recv(self) -> VideoFrame:
        pts, time_base = await self.next_timestamp()
        shade = (pts // 3000) % 200 + 30
        frame = VideoFrame.from_ndarray(np.full((240, 320, 3), shade, np.uint8), format="rgb24")
        frame.pts, frame.time_base = pts, time_base
        return frame


class Tone(MediaStreamTrack):
    kind = "audio"

    def __init__(self, hertz: float = 440.0) -> None:
        super().__init__()
        self.hertz = hertz
        self.sent = 0
        self._start: float | None = None

    def frequency(self) -> float:
        return self.hertz

    async def recv(self) -> AudioFrame:
        loop = asyncio.get_running_loop()
        if self._start is None:
            self._start = loop.time()
        wait = self._start + self.sent / SAMPLE_RATE - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        t = (np.arange(SAMPLES) + self.sent) / SAMPLE_RATE
        samples = (np.sin(2 * math.pi * self.frequency() * t) * 8000).astype(np.int16)
        frame = AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = self.sent
        frame.time_base = fractions.Fraction(1, SAMPLE_RATE)
        self.sent += SAMPLES
        return frame


def auth(token: str, content_type: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {token}"}
    if content_type:
        headers["Content-Type"] = content_type
    return headers


async def sample_offer() -> str:
    """A real offer from a peer that then goes away: for requests meant to be refused."""
    pc = RTCPeerConnection()
    pc.addTrack(MovingPicture())
    pc.addTrack(Tone())
    await pc.setLocalDescription(await pc.createOffer())
    offer = str(pc.localDescription.sdp)
    await pc.close()
    return offer


class Publisher:
    def __init__(
        self,
        http: httpx.AsyncClient,
        summit_id: str,
        token: str,
        tracks: tuple[MediaStreamTrack, MediaStreamTrack] | None = None,
    ) -> None:
        self.http, self.summit_id, self.token = http, summit_id, token
        self.pc: RTCPeerConnection | None = None
        self.location: str | None = None
        self.tracks = tracks

    async def offer(self) -> str:
        self.pc = RTCPeerConnection()
        for track in self.tracks or (MovingPicture(), Tone()):
            self.pc.addTrack(track)
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return str(self.pc.localDescription.sdp)

    async def publish(self) -> httpx.Response:
        offer = await self.offer()
        response = await self.http.post(
            f"/api/v1/summits/{self.summit_id}/whip",
            content=offer,
            headers=auth(self.token, "application/sdp"),
        )
        if response.status_code == 201:
            assert self.pc is not None
            self.location = response.headers["location"]
            await self.pc.setRemoteDescription(RTCSessionDescription(response.text, "answer"))
        return response

    async def close(self, delete: bool = True) -> None:
        if delete and self.location:
            await self.http.delete(self.location, headers=auth(self.token))
        if self.pc is not None:
            await self.pc.close()


def frames_of(pc: RTCPeerConnection) -> Counter[str]:
    """Counts the frames `pc` decodes, per kind, from the tracks it will receive."""
    frames: Counter[str] = Counter()

    async def read(track: MediaStreamTrack) -> None:
        with contextlib.suppress(Exception):
            while True:
                await track.recv()
                frames[track.kind] += 1

    readers: list[asyncio.Task[None]] = []

    @pc.on("track")
    def on_track(track: MediaStreamTrack) -> None:
        readers.append(asyncio.create_task(read(track)))

    return frames


async def watch_broadcast(
    http: httpx.AsyncClient, url: str, viewer: RTCPeerConnection
) -> httpx.Response:
    """A public WHEP viewer: a video and an audio stream for each of the two sides."""
    for _ in range(2):
        viewer.addTransceiver("video", direction="recvonly")
        viewer.addTransceiver("audio", direction="recvonly")
    await viewer.setLocalDescription(await viewer.createOffer())
    response = await http.post(
        url, content=viewer.localDescription.sdp, headers={"Content-Type": "application/sdp"}
    )
    if response.status_code == 201:
        await viewer.setRemoteDescription(RTCSessionDescription(response.text, "answer"))
    return response


class Subscriber:
    """The participant's view of the room: counts decoded frames per publisher track."""

    def __init__(self, http: httpx.AsyncClient, summit_id: str, token: str) -> None:
        self.http, self.summit_id, self.token = http, summit_id, token
        self.frames: Counter[str] = Counter()
        self.resource: str | None = None
        self.feeds: list[dict[str, Any]] = []
        self.pc = self._new_pc()
        self._readers: list[asyncio.Task[None]] = []

    def _new_pc(self) -> RTCPeerConnection:
        pc = RTCPeerConnection()

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            self._readers.append(asyncio.create_task(self._read(track)))

        return pc

    async def _read(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(Exception):
            while True:
                await track.recv()
                self.frames[track.kind] += 1

    @property
    def base(self) -> str:
        return f"/api/v1/summits/{self.summit_id}/subscriptions"

    async def start(self) -> httpx.Response:
        response = await self.http.post(self.base, headers=auth(self.token))
        if response.status_code == 201:
            await self._take(response.json())
        return response

    async def sync(self) -> dict[str, Any]:
        response = await self.http.post(
            f"{self.base}/{self.resource}/sync", headers=auth(self.token)
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        await self._take(body)
        return body

    async def _take(self, body: dict[str, Any]) -> None:
        self.resource = body["id"]
        self.feeds = body["feeds"]
        if body["offer"] is None:
            return
        await self.pc.setRemoteDescription(RTCSessionDescription(body["offer"], "offer"))
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        response = await self.http.post(
            f"{self.base}/{self.resource}/answer",
            json={"sdp": self.pc.localDescription.sdp},
            headers=auth(self.token),
        )
        assert response.status_code == 204, response.text

    async def restart(self) -> httpx.Response:
        """After a media reset: a fresh PeerConnection and subscription."""
        await self.pc.close()
        self.pc = self._new_pc()
        return await self.start()

    async def wait_frames(self, kind: str, count: int, timeout: float) -> int:
        target = self.frames[kind] + count
        async with asyncio.timeout(timeout):
            while self.frames[kind] < target:
                await asyncio.sleep(0.05)
        return self.frames[kind]

    async def close(self) -> None:
        for reader in self._readers:
            reader.cancel()
        await self.pc.close()
