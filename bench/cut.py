"""The cut, many times over: go live, broadcast, cut, and judge what a WHEP viewer got.

Each cycle is a new summit (one never broadcasts again after its cut) with two aiortc
principals whose frames carry their phase and a sequence number; a WHEP viewer decodes
everything the public could see. Figures: private frames that reached the viewer
(target 0) and the cut latency, from the cut request to the last media packet that
reached the viewer (target p99 <= 100 ms).

    .venv/bin/python bench/cut.py [CYCLES]     (default 1000)
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter

import httpx
from aiortc import MediaStreamTrack, RTCPeerConnection
from aiortc.rtcrtpreceiver import RTCRtpReceiver
from common import MEDIA_ADDRESS, in_namespace, report, summary, summitry
from tests.media.conftest import invite
from tests.media.peers import Publisher, gather_only_on, watch_broadcast
from tests.media.stamps import PRIVATE, PhaseFlag, PhaseTone, StampedPicture, read_stamp
from tests.servers import bearer, create_summit

CYCLES = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
PUBLIC_SECONDS = 0.6
AFTER_CUT_SECONDS = 0.4

last_packet = {"at": 0.0}
original_handle_rtp = RTCRtpReceiver._handle_rtp_packet


async def timed_handle_rtp(self: RTCRtpReceiver, packet: object, arrival_time_ms: int) -> None:
    """Notes when media last reached the viewer (its receivers are the only ones here)."""
    last_packet["at"] = time.monotonic()
    await original_handle_rtp(self, packet, arrival_time_ms)


RTCRtpReceiver._handle_rtp_packet = timed_handle_rtp  # type: ignore[method-assign]


async def one_cycle(http: httpx.AsyncClient) -> tuple[int, float, int]:
    """(private frames seen, cut latency in ms, public frames seen) of one summit."""
    summit = await create_summit(http)
    await http.post(
        f"/api/v1/summits/{summit.id}/actions/open_lobby", headers=bearer(summit.ru_token)
    )
    flags = [PhaseFlag(), PhaseFlag()]
    tokens = [
        await invite(http, summit.id, summit.ru_token, "Vladimir Putin", "principal"),
        await invite(http, summit.id, summit.us_token, "Joe Biden", "principal"),
    ]
    publishers = [
        Publisher(http, summit.id, token, (StampedPicture(f), PhaseTone(f)))
        for token, f in zip(tokens, flags, strict=True)
    ]
    viewer = RTCPeerConnection()
    seen: Counter[str] = Counter()
    readers: list[asyncio.Task[None]] = []

    async def read(track: MediaStreamTrack) -> None:
        try:
            while True:
                frame = await track.recv()
                if track.kind == "video":
                    seen[read_stamp(frame.to_ndarray(format="rgb24"))[1]] += 1
        except Exception:  # the track ends with the broadcast
            return

    viewer.on("track", lambda track: readers.append(asyncio.create_task(read(track))))
    try:
        for publisher in publishers:
            assert (await publisher.publish()).status_code == 201
        async with asyncio.timeout(10):
            while (
                len(
                    (
                        await http.get(
                            f"/api/v1/summits/{summit.id}/feeds", headers=bearer(tokens[0])
                        )
                    ).json()
                )
                < 2
            ):
                await asyncio.sleep(0.05)
        for token in (summit.ru_token, summit.us_token):
            await http.post(f"/api/v1/summits/{summit.id}/actions/consent", headers=bearer(token))
        answer = await watch_broadcast(http, f"/api/v1/public/{summit.slug}/whep", viewer)
        assert answer.status_code == 201, answer.text
        async with asyncio.timeout(10):
            while seen["public"] < 10:
                await asyncio.sleep(0.02)
        await asyncio.sleep(PUBLIC_SECONDS)
        requested = time.monotonic()
        cut = await http.post(
            f"/api/v1/summits/{summit.id}/actions/cut", headers=bearer(summit.us_token)
        )
        assert cut.json()["phase"] == PRIVATE
        for flag in flags:  # the publishers learn of the cut from the answer's phase
            flag.phase = PRIVATE
        await asyncio.sleep(AFTER_CUT_SECONDS)
        latency = max(0.0, last_packet["at"] - requested) * 1000
        return seen[PRIVATE], latency, seen["public"]
    finally:
        await viewer.close()
        for reader in readers:
            reader.cancel()
        for publisher in publishers:
            await publisher.close()
        await http.post(f"/api/v1/summits/{summit.id}/actions/end", headers=bearer(summit.ru_token))


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * share))], 1)


async def main() -> None:
    gather_only_on(MEDIA_ADDRESS)
    leaked, latencies, public_frames = 0, [], 0
    started = time.monotonic()
    async with summitry() as server, httpx.AsyncClient(base_url=server.url, timeout=20) as http:
        for cycle in range(CYCLES):
            private, latency, public = await one_cycle(http)
            leaked += private
            latencies.append(latency)
            public_frames += public
            if latency > 100:
                print(f"cycle {cycle + 1}: cut latency {latency:.0f} ms", file=sys.stderr)
            if (cycle + 1) % 10 == 0:
                print(
                    f"cycle {cycle + 1}/{CYCLES}: leaked {leaked}, cut latency p99 so far "
                    f"{percentile(latencies, 0.99)} ms",
                    file=sys.stderr,
                )
    p99 = percentile(latencies, 0.99)
    report(
        {
            "benchmark": "cut",
            "unit": "ms",
            "cycles": CYCLES,
            "value": p99,
            "floor": 100.0,
            "ratio": round(p99 / 100.0, 2),
            "leaked_private_frames": leaked,
            "public_frames_seen": public_frames,
            "cut_latency": summary(latencies),
            "p99_ms": p99,
            "seconds": round(time.monotonic() - started),
            "targets": {"leaked_private_frames": 0, "p99_ms": 100},
        },
        f"cut x{CYCLES}: {leaked} private frames leaked; cut latency p99 {p99} ms",
    )


if __name__ == "__main__":
    in_namespace("summitry-bench-cut")
    asyncio.run(main())
