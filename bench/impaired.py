"""A bad long path: a room subscription whose packets, both ways, go through a user-space
UDP relay (`tc netem` is not available here) that drops 5 % of them at random and delays
each by 75 ms ± 15 ms (150 ms of round trip, 30 ms of jitter), against the same
subscription on the clean path, in one run; then a 3-second total outage and how long
the picture takes to move again. Targets: decoded fps ratio >= 0.8; audio concealed
samples <= 5 %; recovery after the outage <= 2 s. Janus's offer is rewritten in the page
so its candidates name the relay, and the browser's answer names none of its own: Janus
learns the browser's address only from checks that came through the relay."""

from __future__ import annotations

import asyncio
import random
from typing import Any

from common import (
    MEDIA_ADDRESS,
    Relay,
    bench_page,
    chromium,
    in_namespace,
    publishing,
    ratio,
    report,
    summitry,
)

LOSS = 0.05
DELAY_S = 0.075
JITTER_S = 0.015
SECONDS = 20
OUTAGE_S = 3.0


class ImpairedRelay(Relay):
    """Each packet, either way, dropped or delayed once `impaired`; all dropped `down`."""

    def __init__(self, janus: tuple[str, int], rng: random.Random) -> None:
        super().__init__(janus)
        self.rng = rng
        self.impaired = False
        self.down = False

    def carry(self, data: bytes, to: tuple[str, int], from_janus: bool) -> None:
        if self.down or (self.impaired and self.rng.random() < LOSS):
            self.dropped += 1
            return
        self.carried += 1
        delay = DELAY_S + self.rng.uniform(-JITTER_S, JITTER_S) if self.impaired else 0.0
        self.send_later(delay, data, to)


# Counters of the page's one subscription, read twice to take an interval.
COUNTERS = """async () => {
  const totals = { frames: 0, freezes: 0, concealed: 0, samples: 0 };
  for (const entry of (await window.watching.pc.getStats()).values()) {
    if (entry.type !== "inbound-rtp") continue;
    if (entry.kind === "video") {
      totals.frames += entry.framesDecoded || 0;
      totals.freezes += entry.freezeCount || 0;
    } else {
      totals.concealed += entry.concealedSamples || 0;
      totals.samples += entry.totalSamplesReceived || 0;
    }
  }
  return totals;
}"""
WATCH = """async ([s, t, relayed]) => {
  const rewrite = async (sdp) => {
    const lines = [];
    for (const line of sdp.split("\\r\\n")) {
      const found = line.match(/^(a=candidate:\\S+ \\d+ udp \\d+ [\\d.]+ )(\\d+)( typ host.*)$/i);
      lines.push(found ? found[1] + (await window.relayPort(Number(found[2]))) + found[3] : line);
    }
    return lines.join("\\r\\n");
  };
  window.watching = await Promise.race([
    bench.subscribe(s, t, {}, relayed ? rewrite : undefined),
    new Promise((_, fail) => setTimeout(() => fail(new Error("no frame within 30 s")), 30000)),
  ]);
  // Audio is decoded only where it is played out (Chromium pulls remote WebRTC audio
  // for an element, not for WebAudio alone): into an element at volume 0.
  for (const receiver of window.watching.pc.getReceivers()) {
    if (receiver.track.kind !== "audio") continue;
    const sink = new Audio();
    sink.volume = 0;
    sink.srcObject = new MediaStream([receiver.track]);
    await sink.play();
  }
  return true;
}"""


async def interval(page: Any, seconds: float) -> dict[str, float]:
    """What the subscription decoded and concealed over `seconds`."""
    before = await page.evaluate(COUNTERS)
    await asyncio.sleep(seconds)
    after = await page.evaluate(COUNTERS)
    samples = after["samples"] - before["samples"]
    return {
        "fps": round((after["frames"] - before["frames"]) / seconds, 1),
        "freezes_per_minute": round((after["freezes"] - before["freezes"]) * 60 / seconds, 1),
        "concealed_share": round((after["concealed"] - before["concealed"]) / samples, 4)
        if samples
        else None,
    }


async def recovery_after_outage(page: Any, relays: list[ImpairedRelay]) -> float | None:
    """Seconds from the end of a total outage until decoded frames move again."""
    for relay in relays:
        relay.down = True
    await asyncio.sleep(OUTAGE_S)
    frames = (await page.evaluate(COUNTERS))["frames"]
    loop = asyncio.get_running_loop()
    ended = loop.time()
    for relay in relays:
        relay.down = False
    while loop.time() - ended < 15:
        if (await page.evaluate(COUNTERS))["frames"] > frames + 2:
            return round(loop.time() - ended, 2)
        await asyncio.sleep(0.05)
    return None


async def main() -> None:
    failures: list[str] = []
    relays: list[ImpairedRelay] = []
    rng = random.Random(20261203)
    clean: dict[str, float] = {}
    impaired: dict[str, float] = {}
    recovered: float | None = None
    loop = asyncio.get_running_loop()

    async def relay_port(janus_port: int) -> int:
        transport, relay = await loop.create_datagram_endpoint(
            lambda: ImpairedRelay((MEDIA_ADDRESS, janus_port), rng),
            local_addr=(MEDIA_ADDRESS, 0),
        )
        relays.append(relay)
        return int(transport.get_extra_info("sockname")[1])

    async with summitry() as server, chromium() as browser:
        summit, us, _ = await publishing(browser, server)
        clean_page = await bench_page(browser, server)
        bad_page = await bench_page(browser, server)
        await bad_page.expose_function("relayPort", relay_port)
        await asyncio.sleep(1.0)
        try:
            await clean_page.evaluate(WATCH, [summit.id, us, False])
            await asyncio.sleep(2)
            clean = await interval(clean_page, SECONDS)
            await clean_page.evaluate("() => window.watching.close()")
            await bad_page.evaluate(WATCH, [summit.id, us, True])
            for relay in relays:
                relay.impaired = True
            await asyncio.sleep(2)
            impaired = await interval(bad_page, SECONDS)
            recovered = await recovery_after_outage(bad_page, relays)
        except Exception as error:  # a loaded machine: reported, not fatal
            failures.append(str(error)[:300])
    fps_ratio = ratio(impaired.get("fps"), clean.get("fps"))
    report(
        {
            "benchmark": "impaired",
            "unit": "fps",
            "value": impaired.get("fps"),
            "floor": clean.get("fps"),
            "ratio": fps_ratio,
            "clean": clean,
            "impaired": impaired,
            "recovery_s": recovered,
            "path": {"loss": LOSS, "rtt_ms": 2000 * DELAY_S, "jitter_ms": 2000 * JITTER_S},
            "relayed_packets": sum(r.carried for r in relays),
            "dropped_packets": sum(r.dropped for r in relays),
            "failures": failures,
            "targets": {"ratio": 0.8, "concealed_share": 0.05, "recovery_s": 2.0},
        },
        f"impaired path: {impaired.get('fps')} fps vs {clean.get('fps')} clean (x{fps_ratio}), "
        f"concealed {impaired.get('concealed_share')}, recovery {recovered} s",
    )


if __name__ == "__main__":
    in_namespace("summitry-bench-impaired")
    asyncio.run(main())
