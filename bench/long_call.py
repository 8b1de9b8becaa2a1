"""A long private talk: both coordinators and a principal in Chromium through Janus, end
to end encrypted, for MINUTES (argument, default 10). Every 30 s it samples summitry's and
Janus's resident memory, each page's JavaScript heap and the frames each page decodes
per second. The floor is the sample one minute in (everything warm), the value the last.
Targets: summitry + Janus memory ratio <= 1.15, every page still decoding >= 90 % of the
frames it decoded at the floor."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from common import chromium, in_namespace, report, summitry
from tests.e2e.test_private import live_call
from tests.e2e.test_room import US_COORDINATOR, phase_everywhere, stats
from tests.media.test_faults import janus_pid

SAMPLE_SECONDS = 30
WARM_SECONDS = 60


def resident_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


async def sample(pages: dict[str, Any], pids: dict[str, int]) -> dict[str, Any]:
    figures: dict[str, Any] = {"at": time.monotonic()}
    for name, pid in pids.items():
        figures[name] = resident_mb(pid)
    figures["frames"] = {}
    figures["heap_mb"] = {}
    for name, page in pages.items():
        tiles = await stats(page)
        figures["frames"][name] = sum(tile["framesDecoded"] for tile in tiles.values())
        heap = await page.evaluate("performance.memory.usedJSHeapSize")
        figures["heap_mb"][name] = heap / 2**20
    return figures


def rates(earlier: dict[str, Any], later: dict[str, Any]) -> dict[str, float]:
    elapsed = later["at"] - earlier["at"]
    return {
        name: (later["frames"][name] - earlier["frames"][name]) / elapsed
        for name in later["frames"]
    }


async def main(minutes: float) -> None:
    async with (
        summitry() as server,
        chromium() as browser,
        httpx.AsyncClient(base_url=server.url, timeout=15) as http,
    ):
        call = await live_call(browser, http, server, None)
        try:
            await call[US_COORDINATOR].locator('#console button[data-action="cut"]').click()
            await phase_everywhere(call, "private", "PRIVATE")
            pages = {name: call[name] for name in call.people}
            pids = {"summitry": server.process.pid, "janus": janus_pid(server.data_dir)}
            samples = [await sample(pages, pids)]
            deadline = time.monotonic() + minutes * 60
            while time.monotonic() < deadline:
                await asyncio.sleep(SAMPLE_SECONDS)
                samples.append(await sample(pages, pids))
                fps = rates(samples[-2], samples[-1])
                print(
                    f"{(samples[-1]['at'] - samples[0]['at']) / 60:.1f} min: "
                    f"summitry {samples[-1]['summitry']:.1f} MB, "
                    f"janus {samples[-1]['janus']:.1f} MB, decoded fps "
                    + ", ".join(f"{rate:.1f}" for rate in fps.values()),
                    file=sys.stderr,
                )
            statuses = [
                await page.locator("#e2ee").get_attribute("data-status") for page in pages.values()
            ]
        finally:
            await call.close()
    warm = next(s for s in samples if s["at"] - samples[0]["at"] >= WARM_SECONDS)
    warm_index = samples.index(warm)
    first_rates = rates(samples[warm_index - 1], warm)
    last_rates = rates(samples[-2], samples[-1])
    floor = warm["summitry"] + warm["janus"]
    value = samples[-1]["summitry"] + samples[-1]["janus"]
    hours = (samples[-1]["at"] - warm["at"]) / 3600
    report(
        {
            "benchmark": "long_call",
            "unit": "MB (summitry + Janus resident)",
            "value": round(value, 1),
            "floor": round(floor, 1),
            "ratio": round(value / floor, 3),
            "minutes": round((samples[-1]["at"] - samples[0]["at"]) / 60, 1),
            "growth_mb_per_hour": {
                name: round((samples[-1][name] - warm[name]) / hours, 1)
                for name in ("summitry", "janus")
            },
            "page_heap_mb": {
                name: [round(warm["heap_mb"][name], 1), round(samples[-1]["heap_mb"][name], 1)]
                for name in pages
            },
            "decoded_fps": {
                name: [round(first_rates[name], 1), round(last_rates[name], 1)] for name in pages
            },
            "fps_ratio_min": round(min(last_rates[n] / first_rates[n] for n in pages), 3),
            "e2ee": statuses,
            "targets": {"ratio": 1.15, "fps_ratio_min": 0.9},
        },
        f"{(samples[-1]['at'] - samples[0]['at']) / 60:.1f} min private call: summitry + Janus "
        f"{value:.1f} MB vs {floor:.1f} MB warm (x{value / floor:.3f})",
    )


if __name__ == "__main__":
    in_namespace("summitry-bench-long")
    asyncio.run(main(float(sys.argv[1]) if len(sys.argv) > 1 else 10))
