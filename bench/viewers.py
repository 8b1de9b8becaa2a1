"""How many WebRTC viewers one Janus serves per core with a steady frame rate.

Two aiortc principals broadcast; WHEP viewers join in steps. Each viewer only counts
the video frames that arrive (the marker bit of each frame's last RTP packet) instead
of decoding them, so the client side stays cheap. At each step the frame rate every
viewer gets and the CPU Janus used are measured; the last step where every viewer kept
at least 90 % of the source frame rate is what fits here, and Janus's CPU per viewer
extrapolates to viewers per core.

    .venv/bin/python bench/viewers.py [MAX_VIEWERS]     (default 60)
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter

import httpx
from aiortc import RTCPeerConnection
from aiortc.rtcrtpreceiver import RTCRtpReceiver
from common import (
    MEDIA_ADDRESS,
    cpu_seconds,
    in_namespace,
    report,
    summit_with_two_principals,
    summitry,
)
from tests.media.peers import Publisher, gather_only_on, watch_broadcast
from tests.media.test_faults import janus_pid
from tests.servers import bearer

MAX_VIEWERS = int(sys.argv[1]) if len(sys.argv) > 1 else 60
STEP_SECONDS = 8
SOURCE_FPS = 30
frames: Counter[int] = Counter()


async def counting_handle_rtp(self: RTCRtpReceiver, packet: object, arrival_time_ms: int) -> None:
    """A viewer that counts video frames (marker bits) and decodes nothing."""
    if getattr(packet, "marker", False) and getattr(packet, "payload_type", 0) != 111:
        frames[id(self)] += 1


RTCRtpReceiver._handle_rtp_packet = counting_handle_rtp  # type: ignore[method-assign]


async def add_viewer(http: httpx.AsyncClient, url: str) -> tuple[RTCPeerConnection, int]:
    viewer = RTCPeerConnection()
    (await watch_broadcast(http, url, viewer)).raise_for_status()
    return viewer, id(viewer.getTransceivers()[0].receiver)


async def main() -> None:
    gather_only_on(MEDIA_ADDRESS)
    steps = []
    async with summitry() as server:
        summit, ru, us = await summit_with_two_principals(server)
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            publishers = [Publisher(http, summit.id, token) for token in (ru, us)]
            for publisher in publishers:
                await publisher.publish()
            await asyncio.sleep(1.5)
            for token in (summit.ru_token, summit.us_token):
                await http.post(
                    f"/api/v1/summits/{summit.id}/actions/consent", headers=bearer(token)
                )
            whep = (await http.get(f"/api/v1/public/{summit.slug}")).json()["whep"]
            janus = janus_pid(server.data_dir)
            viewers: list[tuple[RTCPeerConnection, int]] = []
            size = 5
            while size <= MAX_VIEWERS:
                while len(viewers) < size:
                    viewers.append(await add_viewer(http, whep))
                await asyncio.sleep(2)  # everyone connected and receiving
                before = {receiver: frames[receiver] for _, receiver in viewers}
                cpu_before, started = cpu_seconds(janus), time.monotonic()
                await asyncio.sleep(STEP_SECONDS)
                elapsed = time.monotonic() - started
                janus_cpu = (cpu_seconds(janus) - cpu_before) / elapsed
                rates = [(frames[receiver] - before[receiver]) / elapsed for _, receiver in viewers]
                steps.append(
                    {
                        "viewers": size,
                        "janus_cpu_cores": round(janus_cpu, 3),
                        "min_fps": round(min(rates), 1),
                        "median_fps": round(sorted(rates)[len(rates) // 2], 1),
                    }
                )
                print(steps[-1], file=sys.stderr)
                if min(rates) < 0.9 * SOURCE_FPS:
                    break
                size *= 2
            for viewer, _ in viewers:
                await viewer.close()
            for publisher in publishers:
                await publisher.close()
    stable = [step for step in steps if step["min_fps"] >= 0.9 * SOURCE_FPS]
    best = stable[-1] if stable else steps[0]
    baseline = steps[0]["janus_cpu_cores"] / steps[0]["viewers"]
    per_viewer = max((best["janus_cpu_cores"] - 0) / best["viewers"], 1e-6)
    per_core = int(1 / per_viewer)
    report(
        {
            "benchmark": "viewers",
            "unit": "viewers per core",
            "value": per_core,
            "floor": best["viewers"],
            "ratio": round(per_core / best["viewers"], 2),
            "stable_viewers_measured": best["viewers"],
            "janus_cpu_per_viewer": round(per_viewer, 4),
            "janus_cpu_per_viewer_first_step": round(baseline, 4),
            "steps": steps,
            "note": "viewers are aiortc peers on the same 2 cores; the client side limits "
            "how many fit here",
        },
        f"viewers: {best['viewers']} stable viewers measured; Janus used "
        f"{best['janus_cpu_cores']} cores for them -> ~{per_core} viewers per core",
    )


if __name__ == "__main__":
    in_namespace("summitry-bench-viewers")
    asyncio.run(main())
