"""Glass-to-glass latency through Janus (frames stamped with the time they were drawn,
read back where they are rendered) against a direct browser-to-browser call between the
same two pages, carrying the same frames at the same time. Target: at most 10 ms more
than the direct call (median)."""

from __future__ import annotations

import asyncio

from common import (
    bench_page,
    chromium,
    in_namespace,
    publishing,
    report,
    summary,
    summitry,
)

SECONDS = 10


async def main() -> None:
    async with summitry() as server, chromium() as browser:
        summit, us, publisher = await publishing(browser, server)
        summit_id = summit.id
        viewer = await bench_page(browser, server)
        offer = await publisher.evaluate("() => bench.directOffer(window.source)")
        answer = await viewer.evaluate("(offer) => bench.directAnswer(offer)", offer)
        await publisher.evaluate(
            "(sdp) => window.directCaller.setRemoteDescription({type: 'answer', sdp})", answer
        )
        await asyncio.sleep(1.0)
        # Both paths carry the same frames to the same page at the same time.
        through, direct = await viewer.evaluate(
            "async ([s, t, n]) => { const c = await bench.subscribe(s, t); "
            "await new Promise(r => setTimeout(r, 1000)); "
            "const found = await Promise.all([bench.latencies(c.element, n), "
            "bench.latencies(window.directElement, n)]); await c.close(); return found; }",
            [summit_id, us, SECONDS],
        )
    floor, value = summary(direct), summary(through)
    added = round(value["median"] - floor["median"], 1)
    report(
        {
            "benchmark": "latency",
            "unit": "ms",
            "value": value["median"],
            "floor": floor["median"],
            "ratio": round(value["median"] / floor["median"], 2),
            "added_ms": added,
            "through_janus": value,
            "direct_call": floor,
            "targets": {"added_ms": 10},
        },
        f"glass-to-glass: {value['median']} ms through Janus vs {floor['median']} ms direct "
        f"(+{added} ms)",
    )


if __name__ == "__main__":
    in_namespace("summitry-bench-latency")
    asyncio.run(main())
