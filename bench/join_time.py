"""Join time: from being admitted to the first decoded remote video frame, through
summitry + Janus, against a direct browser-to-browser call in the same run.
Targets: ratio <= 1.3 and under 500 ms."""

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

TRIALS = 15
# Janus asks a publisher for a key frame at most once a second: joins closer together
# than that wait for the next one (reported separately as back_to_back).
JOIN_SPACING = 1.5


async def main() -> None:
    async with summitry() as server, chromium() as browser:
        summit, us, _ = await publishing(browser, server)
        summit_id = summit.id
        viewer = await bench_page(browser, server)
        await viewer.evaluate("() => { window.source = bench.stampedStream(); }")
        await asyncio.sleep(1.0)  # the publisher's feed is up in Janus
        direct: list[float] = []
        through: list[float] = []
        for _ in range(TRIALS):  # interleaved, so both see the same machine load
            await asyncio.sleep(JOIN_SPACING)
            direct.append(
                await viewer.evaluate(
                    "async () => { const c = await bench.directCall(window.source); "
                    "c.close(); return c.ms; }"
                )
            )
            through.append(
                await viewer.evaluate(
                    "async ([s, t]) => { const c = await bench.subscribe(s, t); "
                    "await c.close(); return c.ms; }",
                    [summit_id, us],
                )
            )
        back_to_back = [
            await viewer.evaluate(
                "async ([s, t]) => { const c = await bench.subscribe(s, t); "
                "await c.close(); return c.ms; }",
                [summit_id, us],
            )
            for _ in range(5)
        ]
    floor, value = summary(direct), summary(through)
    ratio = round(value["median"] / floor["median"], 2)
    report(
        {
            "benchmark": "join_time",
            "unit": "ms",
            "value": value["median"],
            "floor": floor["median"],
            "ratio": ratio,
            "through_summitry": value,
            "direct_call": floor,
            "back_to_back": summary(back_to_back),
            "targets": {"ratio": 1.3, "value_ms": 500},
        },
        f"join: {value['median']} ms through summitry+Janus vs {floor['median']} ms "
        f"direct (ratio {ratio})",
    )


if __name__ == "__main__":
    in_namespace("summitry-bench-join")
    asyncio.run(main())
