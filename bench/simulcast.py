"""A receiver behind a narrow downlink: the room subscription's packets from Janus pass
a user-space bottleneck of 400 kb/s with 200 ms of queue (a congested hotel or
mobile link; beyond the queue, packets drop as at a real router), while the sender
publishes a 1280x720 camera in the room page's three simulcast layers. Three runs on
one publisher: the clean path (the floor), the bottleneck while staying on the top
layer (what a single-layer camera would give), and the bottleneck with the page's
own layer choice (static/layers.js) asking Janus for what the path carries. Target:
the page's choice keeps >= 0.8 of the clean path's decoded frame rate."""

from __future__ import annotations

import asyncio
from typing import Any

from common import (
    MEDIA_ADDRESS,
    Relay,
    bench_page,
    chromium,
    in_namespace,
    ratio,
    report,
    summit_with_two_principals,
    summitry,
)
from impaired import WATCH, interval

CAP_BITS_PER_S = 400_000
QUEUE_S = 0.2
DELAY_S = 0.02
SECONDS = 20
SETTLE_S = 24  # time for the page to step down and try a climb back


class Bottleneck(Relay):
    """Janus's packets to the browser leave at CAP_BITS_PER_S once `narrow`, after
    waiting in a queue of at most QUEUE_S; what finds the queue full is dropped."""

    def __init__(self, janus: tuple[str, int]) -> None:
        super().__init__(janus)
        self.narrow = False
        self.free_at = 0.0

    def carry(self, data: bytes, to: tuple[str, int], from_janus: bool) -> None:
        if not (self.narrow and from_janus):
            super().carry(data, to, from_janus)
            return
        now = asyncio.get_running_loop().time()
        start = max(now, self.free_at)
        if start - now > QUEUE_S:
            self.dropped += 1
            return
        self.free_at = start + len(data) * 8 / CAP_BITS_PER_S
        self.carried += 1
        self.send_later(self.free_at - now + DELAY_S, data, to)


PUBLISH = """async ([s, t]) => {
  const { SIMULCAST } = await import("/static/media.js");
  window.source = bench.stampedStream(30, 1280, 720);
  window.published = await bench.publish(s, t, window.source, SIMULCAST);
}"""

# The room page's rule every 2 s, as room.js runs it for each tile.
CHOOSE = """async () => {
  const { FeedLayers } = await import("/static/layers.js");
  const feed = window.watching.feeds[0].feed_id;
  const receiver = window.watching.pc.getReceivers().find((r) => r.track.kind === "video");
  const layers = new FeedLayers();
  window.chosen = [];
  window.choosing = setInterval(async () => {
    const layer = layers.take(await receiver.getStats());
    if (!layer) return;
    window.chosen.push([Math.round(performance.now() / 1000), layer]);
    await window.watching.chooseLayers([[feed, layer]]);
  }, 2000);
}"""


async def main() -> None:
    failures: list[str] = []
    relays: list[Bottleneck] = []
    runs: dict[str, dict[str, Any]] = {}
    chosen: list[Any] = []
    loop = asyncio.get_running_loop()

    async def relay_port(janus_port: int) -> int:
        transport, relay = await loop.create_datagram_endpoint(
            lambda: Bottleneck((MEDIA_ADDRESS, janus_port)), local_addr=(MEDIA_ADDRESS, 0)
        )
        relays.append(relay)
        return int(transport.get_extra_info("sockname")[1])

    async def watch(page: Any, summit: str, token: str, relayed: bool) -> None:
        await page.evaluate(WATCH, [summit, token, relayed])
        for relay in relays:
            relay.narrow = relayed

    async with summitry() as server, chromium() as browser:
        summit, ru, us = await summit_with_two_principals(server)
        publisher = await bench_page(browser, server)
        page = await bench_page(browser, server)
        await page.expose_function("relayPort", relay_port)
        try:
            await publisher.evaluate(PUBLISH, [summit.id, ru])
            await asyncio.sleep(5)  # the sender's estimate climbs to all three layers
            for name, relayed, choosing in (
                ("clean", False, False),
                ("top_layer_only", True, False),
                ("page_chooses", True, True),
            ):
                relays.clear()
                await watch(page, summit.id, us, relayed)
                if choosing:
                    await page.evaluate(CHOOSE)
                await asyncio.sleep(SETTLE_S if choosing else 4)
                runs[name] = await interval(page, SECONDS)
                runs[name]["dropped_packets"] = sum(r.dropped for r in relays)
                if choosing:
                    chosen = await page.evaluate("window.chosen")
                    await page.evaluate("clearInterval(window.choosing)")
                await page.evaluate("() => window.watching.close()")
        except Exception as error:  # a loaded machine: reported, not fatal
            failures.append(str(error)[:300])
    clean = runs.get("clean", {}).get("fps")
    chose = runs.get("page_chooses", {}).get("fps")
    stuck = runs.get("top_layer_only", {}).get("fps")
    chose_ratio = ratio(chose, clean)
    report(
        {
            "benchmark": "simulcast",
            "unit": "fps",
            "value": chose,
            "floor": clean,
            "ratio": chose_ratio,
            "top_layer_only_ratio": ratio(stuck, clean),
            "runs": runs,
            "layers_chosen": chosen,
            "path": {"downlink_kbps": CAP_BITS_PER_S / 1000, "queue_ms": QUEUE_S * 1000},
            "failures": failures,
            "targets": {"ratio": 0.8},
        },
        f"400 kb/s downlink: {chose} fps with the page's layer choice, {stuck} on the top "
        f"layer, {clean} clean (x{chose_ratio})",
    )


if __name__ == "__main__":
    in_namespace("summitry-bench-simulcast")
    asyncio.run(main())
