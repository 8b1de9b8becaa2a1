"""The cut, many times over: go live, broadcast, cut, and judge what a WHEP viewer got.

Each cycle is a new summit (one never broadcasts again after its cut) with two aiortc
principals whose frames carry their phase and a sequence number; a WHEP viewer decodes
everything the public could see. The cycles run twice: on the machine as it is (the
floor), then with a CPU burner per core at normal priority beside everything. Figures:
private frames that reached the viewer (target 0), the cut latency, from the cut request
to the last media packet that reached the viewer (targets: p99 <= 100 ms idle, <= 250 ms
loaded), and go-lives that failed (each with why), which a loaded machine must not cause.

    .venv/bin/python bench/cut.py [CYCLES]     (per round; default 500)
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx
from aiortc import MediaStreamTrack, RTCPeerConnection
from aiortc.rtcrtpreceiver import RTCRtpReceiver
from common import MEDIA_ADDRESS, in_namespace, ratio, report, summary, summitry
from tests.media.conftest import invite
from tests.media.peers import Publisher, gather_only_on, watch_broadcast
from tests.media.stamps import PRIVATE, PhaseFlag, PhaseTone, StampedPicture, read_stamp
from tests.servers import bearer, create_summit

CYCLES = int(sys.argv[1]) if len(sys.argv) > 1 else 500
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


def percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * share))], 1)


@contextmanager
def burners() -> Iterator[None]:
    """A busy loop per core, at normal priority, for as long as the block runs."""
    loops = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"])
        for _ in range(os.cpu_count() or 2)
    ]
    try:
        yield
    finally:
        for loop in loops:
            loop.kill()
            loop.wait()


@dataclass
class Round:
    name: str
    leaked: int = 0
    public_frames: int = 0
    latencies: list[float] = field(default_factory=list)
    failures: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    @property
    def p99(self) -> float | None:
        return percentile(self.latencies, 0.99)

    def figures(self) -> dict[str, object]:
        return {
            "cycles": CYCLES,
            "leaked_private_frames": self.leaked,
            "failed_cycles": self.failures.total(),
            "failures": dict(self.failures),
            "public_frames_seen": self.public_frames,
            "cut_latency": summary(self.latencies),
            "p99_ms": self.p99,
            "seconds": round(self.seconds),
        }


async def one_round(http: httpx.AsyncClient, name: str) -> Round:
    done = Round(name)
    started = time.monotonic()
    for cycle in range(CYCLES):
        try:
            private, latency, public = await one_cycle(http)
        except Exception as error:  # a loaded machine: a failed go-live is a figure
            done.failures[f"{type(error).__name__}: {error}"[:160]] += 1
            print(f"{name} cycle {cycle + 1}: failed: {error!r}", file=sys.stderr)
            continue
        done.leaked += private
        done.latencies.append(latency)
        done.public_frames += public
        if (cycle + 1) % 10 == 0:
            print(
                f"{name} cycle {cycle + 1}/{CYCLES}: leaked {done.leaked}, failed "
                f"{done.failures.total()}, cut latency p99 so far {done.p99} ms",
                file=sys.stderr,
            )
    done.seconds = time.monotonic() - started
    return done


async def main() -> None:
    gather_only_on(MEDIA_ADDRESS)
    async with summitry() as server, httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        idle = await one_round(http, "idle")
        with burners():
            loaded = await one_round(http, "loaded")
    leaked = idle.leaked + loaded.leaked
    report(
        {
            "benchmark": "cut",
            "unit": "ms",
            "value": loaded.p99,
            "floor": idle.p99,
            "ratio": ratio(loaded.p99, idle.p99),
            "leaked_private_frames": leaked,
            "idle": idle.figures(),
            "loaded": loaded.figures(),
            "targets": {
                "leaked_private_frames": 0,
                "idle_p99_ms": 100,
                "loaded_p99_ms": 250,
                "failed_cycles": 0,
            },
        },
        f"cut x{CYCLES} idle and loaded: {leaked} private frames leaked; cut latency p99 "
        f"{idle.p99} ms idle, {loaded.p99} ms loaded; failed cycles "
        f"{idle.failures.total()} idle, {loaded.failures.total()} loaded",
    )


if __name__ == "__main__":
    in_namespace("summitry-bench-cut")
    asyncio.run(main())
