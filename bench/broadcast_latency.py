"""Glass-to-glass latency of the public broadcast: a WHEP viewer and an HLS viewer,
against a participant of the call watching the same publisher at the same time.
Targets: WHEP at most 50 ms more than the participant; HLS at most 2.5 s."""

from __future__ import annotations

import asyncio

import httpx
from common import (
    REPO,
    bench_page,
    chromium,
    in_namespace,
    publishing,
    report,
    summary,
    summitry,
)
from tests.servers import bearer

SECONDS = 15
HLS_WARM_UP = 8  # hls.js reaches its steady latency within a few seconds of starting
HLS_JS = REPO / "src/summitry/web/static/vendor/hls.min.js"


async def main() -> None:
    if not HLS_JS.exists():
        raise SystemExit("hls.js is missing: run the README's set-up (scripts/assets.sh)")
    async with summitry() as server, chromium() as browser:
        summit, us, _ = await publishing(browser, server)
        summit_id = summit.id
        participant, whep_viewer, hls_viewer = [await bench_page(browser, server) for _ in range(3)]
        await hls_viewer.add_script_tag(path=str(HLS_JS))
        await asyncio.sleep(1.0)
        async with httpx.AsyncClient(base_url=server.url, timeout=15) as http:
            for token in (summit.ru_token, summit.us_token):
                await http.post(
                    f"/api/v1/summits/{summit_id}/actions/consent", headers=bearer(token)
                )
            public = (await http.get(f"/api/v1/public/{summit.slug}")).json()
            assert public["live"], public
        await participant.evaluate(
            "async ([s, t]) => { window.call = await bench.subscribe(s, t); }", [summit_id, us]
        )
        await whep_viewer.evaluate(
            "async (url) => { window.viewer = await bench.whep(url); }", public["whep"]
        )
        await hls_viewer.evaluate(
            "(url) => { window.viewer = bench.hls(url); }", public["streams"][0]["hls"]
        )
        await asyncio.sleep(HLS_WARM_UP)
        measured = await asyncio.gather(
            participant.evaluate("(n) => bench.latencies(window.call.element, n)", SECONDS),
            whep_viewer.evaluate("(n) => bench.latencies(window.viewer, n)", SECONDS),
            hls_viewer.evaluate("(n) => bench.latencies(window.viewer, n)", SECONDS),
        )
    floor, whep, hls = (summary(values) for values in measured)
    added = round(whep["median"] - floor["median"], 1)
    report(
        {
            "benchmark": "broadcast_latency",
            "unit": "ms",
            "value": whep["median"],
            "floor": floor["median"],
            "ratio": round(whep["median"] / floor["median"], 2),
            "whep_added_ms": added,
            "whep": whep,
            "participant": floor,
            "hls": hls,
            "hls_ms": hls["median"],
            "targets": {"whep_added_ms": 50, "hls_ms": 2500},
        },
        f"broadcast: WHEP {whep['median']} ms (+{added} ms over a participant at "
        f"{floor['median']} ms), HLS {hls['median']} ms",
    )


if __name__ == "__main__":
    in_namespace("summitry-bench-broadcast")
    asyncio.run(main())
