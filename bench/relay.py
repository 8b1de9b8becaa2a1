"""TURN's cost: join time (admitted -> first decoded frame) and glass-to-glass latency of a
room subscription relayed through the summit's coturn (relay candidates only), against the
same subscription over host candidates, interleaved and at the same time in one run.
Targets: join ratio <= 1.3; at most 5 ms of added latency (median)."""

from __future__ import annotations

import asyncio
from typing import Any

from common import (
    bench_page,
    chromium,
    in_namespace,
    publishing,
    ratio,
    report,
    summary,
    summitry,
)

TRIALS = 12
JOIN_SPACING = 1.5  # Janus asks for a key frame at most once a second (join_time.py)
SECONDS = 10

RELAYED = """async ([s, t]) => {
  const ice = await (await fetch(`/api/v1/summits/${s}/ice-servers`,
    { headers: { Authorization: `Bearer ${t}` } })).json();
  window.relayConfig = { iceServers: ice.ice_servers, iceTransportPolicy: "relay" };
  return ice.ice_servers.length;
}"""
JOIN = """async ([s, t, relayed]) => {
  const c = await Promise.race([bench.subscribe(s, t, relayed ? window.relayConfig : {}),
    new Promise((_, fail) => setTimeout(() => fail(new Error("no frame within 20 s")), 20000))]);
  const stats = await c.pc.getStats();
  let local = null;
  for (const entry of stats.values()) {
    if (entry.type === "transport" && entry.selectedCandidatePairId) {
      local = stats.get(stats.get(entry.selectedCandidatePairId).localCandidateId).candidateType;
    }
  }
  await c.close();
  return { ms: c.ms, local };
}"""
# One subscription's glass-to-glass latencies over `n` seconds, relayed or not.
LATENCY = """async ([s, t, relayed, n]) => {
  const within = (work, ms) => Promise.race([work, new Promise((_, fail) =>
    setTimeout(() => fail(new Error(`not within ${ms} ms`)), ms))]);
  const c = await within(bench.subscribe(s, t, relayed ? window.relayConfig : {}), 20000);
  await new Promise(r => setTimeout(r, 1000));
  try {
    return await within(bench.latencies(c.element, n), (n + 20) * 1000);
  } finally {
    await c.close();
  }
}"""


async def main() -> None:
    failures: list[str] = []
    joins: dict[bool, list[float]] = {False: [], True: []}
    paths: dict[bool, set[str]] = {False: set(), True: set()}
    relayed_latency: list[float] = []
    host_latency: list[float] = []
    async with summitry() as server, chromium() as browser:
        summit, us, _ = await publishing(browser, server)
        viewer = await bench_page(browser, server)
        await viewer.evaluate("() => { window.source = bench.stampedStream(); }")
        servers = await viewer.evaluate(RELAYED, [summit.id, us])
        await asyncio.sleep(1.0)
        for _ in range(TRIALS):  # interleaved, so both see the same machine load
            for relayed in (False, True):
                await asyncio.sleep(JOIN_SPACING)
                try:
                    joined: dict[str, Any] = await viewer.evaluate(JOIN, [summit.id, us, relayed])
                except Exception as error:  # a loaded machine: counted, not fatal
                    failures.append(f"join (relayed={relayed}): {error!r}"[:200])
                    continue
                joins[relayed].append(joined["ms"])
                paths[relayed].add(str(joined["local"]))
        # Host and relay in turn, twice, against the same stamped clock.
        for relayed in (False, True, False, True):
            try:
                found = await viewer.evaluate(LATENCY, [summit.id, us, relayed, SECONDS / 2])
            except Exception as error:
                failures.append(f"latency (relayed={relayed}): {error}"[:300])
                continue
            (relayed_latency if relayed else host_latency).extend(found)
    host, relay = summary(joins[False]), summary(joins[True])
    join_ratio = ratio(relay["median"], host["median"])
    floor, value = summary(host_latency), summary(relayed_latency)
    added = (
        round(value["median"] - floor["median"], 1)
        if value["median"] is not None and floor["median"] is not None
        else None
    )
    report(
        {
            "benchmark": "relay",
            "unit": "ms",
            "value": relay["median"],
            "floor": host["median"],
            "ratio": join_ratio,
            "join_relayed": relay,
            "join_host": host,
            "latency_added_ms": added,
            "latency_relayed": value,
            "latency_host": floor,
            "candidate_types": {"host": sorted(paths[False]), "relayed": sorted(paths[True])},
            "turn_servers": servers,
            "failures": failures,
            "targets": {"ratio": 1.3, "latency_added_ms": 5},
        },
        f"join through TURN {relay['median']} ms vs {host['median']} ms direct (x{join_ratio}); "
        f"latency +{added} ms",
    )


if __name__ == "__main__":
    in_namespace("summitry-bench-relay")
    asyncio.run(main())
