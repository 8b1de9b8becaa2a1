"""What every media benchmark needs: its own network namespace, summitry with its own
Janus inside it, and headless Chromium. Run from the repository root after the README's
set-up: `.venv/bin/python bench/NAME.py`."""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, cast

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402
from playwright.async_api import Browser, Page, async_playwright  # noqa: E402
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from tests.media.conftest import summit_in_lobby  # noqa: E402
from tests.servers import Seeded, Server, running_summitry  # noqa: E402

MEDIA_ADDRESS = "198.18.0.1"
PAGE_LIBRARY = Path(__file__).with_name("pagelib.js")


class Relay(asyncio.DatagramProtocol):
    """One UDP socket between the browser and one of Janus's ports (Janus's offer is
    rewritten in the page to name it): what comes from Janus goes to the browser,
    anything else to Janus, through `carry`, which a path's impairment overrides."""

    def __init__(self, janus: tuple[str, int]) -> None:
        self.janus = janus
        self.browser: tuple[str, int] | None = None
        self.transport: asyncio.DatagramTransport | None = None
        self.carried = 0
        self.dropped = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        from_janus = addr == self.janus
        if from_janus:
            to = self.browser
        else:
            self.browser, to = addr, self.janus
        if to is not None and self.transport is not None:
            self.carry(data, to, from_janus)

    def carry(self, data: bytes, to: tuple[str, int], from_janus: bool) -> None:
        self.carried += 1
        self.send_later(0.0, data, to)

    def send_later(self, delay: float, data: bytes, to: tuple[str, int]) -> None:
        if delay <= 0:
            self._send(data, to)
        else:
            asyncio.get_running_loop().call_later(delay, self._send, data, to)

    def _send(self, data: bytes, to: tuple[str, int]) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(data, to)


def in_namespace(name: str) -> None:
    """Re-runs this benchmark inside a fresh network namespace (Janus ignores loopback)."""
    if os.environ.get("SUMMITRY_MEDIA_ADDRESS"):
        return
    if os.geteuid() != 0:
        sys.exit("benchmarks that carry media need root for their network namespace")
    janus = (
        subprocess.run(
            ["bash", str(REPO / "scripts/build-janus.sh")],
            check=True,
            capture_output=True,
            text=True,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    subprocess.run(["bash", str(REPO / "scripts/netns.sh"), "up", name], check=True)
    try:
        result = subprocess.run(
            [
                "ip",
                "netns",
                "exec",
                name,
                "env",
                f"SUMMITRY_MEDIA_ADDRESS={MEDIA_ADDRESS}",
                f"SUMMITRY_JANUS_BIN={janus}",
                sys.executable,
                *sys.argv,
            ]
        )
    finally:
        subprocess.run(["bash", str(REPO / "scripts/netns.sh"), "down", name], check=False)
    sys.exit(result.returncode)


@asynccontextmanager
async def summitry() -> AsyncIterator[Server]:
    with (
        tempfile.TemporaryDirectory(prefix="summitry-bench-") as folder,
        running_summitry(Path(folder), SUMMITRY_MEDIA_ADDRESS=MEDIA_ADDRESS) as server,
    ):
        yield server


@asynccontextmanager
async def chromium(camera_fps: int | None = None) -> AsyncIterator[Browser]:
    """Headless Chromium; its fake camera runs at `camera_fps` if given (else 20 fps)."""
    args = list(CHROMIUM_ARGS)
    if camera_fps is not None:
        fake = args.index("--use-fake-device-for-media-stream")
        args[fake] = f"--use-fake-device-for-media-stream=fps={camera_fps}"
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=args)
        try:
            yield browser
        finally:
            await browser.close()


async def bench_page(browser: Browser, server: Server) -> Page:
    """A page of its own on summitry's origin with the benchmark's in-page helpers."""
    context = await browser.new_context(bypass_csp=True)
    page = await context.new_page()
    await page.goto(f"{server.url}/api/v1/health")
    await page.add_script_tag(path=str(PAGE_LIBRARY))
    return page


async def publishing(browser: Browser, server: Server) -> tuple[Seeded, str, Page]:
    """A summit whose Russian principal publishes stamped frames from a page: (the
    summit, the US principal's grant, the publisher's page)."""
    summit, ru, us = await summit_with_two_principals(server)
    publisher = await bench_page(browser, server)
    await publisher.evaluate(
        "async ([s, t]) => { window.source = bench.stampedStream(); "
        "window.published = await bench.publish(s, t, window.source); }",
        [summit.id, ru],
    )
    return summit, us, publisher


def cpu_seconds(pid: int) -> float:
    """User and system CPU the process has used so far."""
    fields = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def summary(values: Sequence[float]) -> dict[str, float | None]:
    """Median, p90, extremes and count; None figures when nothing was measured."""
    ordered = sorted(values)
    if not ordered:
        return {"median": None, "p90": None, "min": None, "max": None, "n": 0}
    return {
        "median": round(statistics.median(ordered), 1),
        "p90": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))], 1),
        "min": round(ordered[0], 1),
        "max": round(ordered[-1], 1),
        "n": len(ordered),
    }


def ratio(value: float | None, floor: float | None) -> float | None:
    """`value` over `floor`, to two places; None when either was not measured."""
    return round(value / floor, 2) if value is not None and floor else None


def report(line: dict[str, Any], headline: str) -> None:
    print(headline)
    print(json.dumps(line))


async def summit_with_two_principals(server: Server) -> tuple[Seeded, str, str]:
    """A summit in its lobby with an admitted principal on each side:
    (the summit with its coordinators' grants, Russia's principal, the US principal)."""
    async with httpx.AsyncClient(base_url=server.url, timeout=15) as http:
        room = await summit_in_lobby(http)
    return room.summit, room.ru_principal, room.us_principal
