"""What the summits' clock costs an idle server: its CPU while it hosts many summits
that are not over, against the same server hosting a few, in the same run. The clock
looks at every such summit once a second (lobby opening, planned cut, end, keys due), so
a server that keeps months of scheduled summits must not pay per summit.
Target: ratio <= 2 (the cost does not grow with the summits) and under 2 % of a core."""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

import httpx
from common import cpu_seconds, report
from tests.servers import create_summit, running_summitry

FEW, MANY = 5, 500
SECONDS = 20


async def idle_cores(pid: int) -> float:
    """The server's CPU while nobody calls it, in cores."""
    await asyncio.sleep(2)  # what creating the summits set off is over
    used, started = cpu_seconds(pid), time.monotonic()
    await asyncio.sleep(SECONDS)
    return (cpu_seconds(pid) - used) / (time.monotonic() - started)


async def main() -> None:
    with (
        tempfile.TemporaryDirectory(prefix="summitry-bench-") as folder,
        running_summitry(Path(folder), SUMMITRY_MEDIA="off") as server,
    ):
        async with httpx.AsyncClient(base_url=server.url, timeout=15) as http:
            for _ in range(FEW):
                await create_summit(http)
            few = await idle_cores(server.process.pid)
            for done in range(FEW, MANY):
                await create_summit(http)
                if done % 100 == 0:
                    print(f"{done} summits", file=sys.stderr)
            many = await idle_cores(server.process.pid)
    ratio = round(many / few, 2) if few > 0 else float("inf")
    report(
        {
            "benchmark": "idle_clock",
            "unit": "cores",
            "value": round(many, 4),
            "floor": round(few, 4),
            "ratio": ratio,
            "summits": {"floor": FEW, "value": MANY},
            "seconds": SECONDS,
            "targets": {"ratio": 2, "value": 0.02},
        },
        f"idle server: {many:.4f} cores with {MANY} summits vs {few:.4f} with {FEW} (x{ratio})",
    )


if __name__ == "__main__":
    asyncio.run(main())
