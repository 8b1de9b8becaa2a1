"""Chromium in front of a real summitry with its own Janus, inside the network namespace
that the test command made (Janus answers ICE only on its own address there)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, async_playwright, expect

from tests.e2e.test_private import live_call
from tests.e2e.test_room import QUICK_TIMEOUT_MS, US_COORDINATOR, Call, phase_everywhere
from tests.servers import Server, running_summitry

CHROMIUM = "/usr/bin/chromium"
REPO_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    # Host candidates, not mDNS names: Janus must reach the browser directly.
    "--disable-features=WebRtcHideLocalIpsWithMdns",
    "--autoplay-policy=no-user-gesture-required",
]


def home_trusting(home: Path, ca: Path) -> Path:
    """A home whose certificate store (NSS, as Chromium on Linux reads it) trusts `ca`."""
    store = home / ".pki" / "nssdb"
    store.mkdir(parents=True)
    database = f"sql:{store}"
    for command in (
        ["certutil", "-N", "--empty-password", "-d", database],
        ["certutil", "-A", "-d", database, "-t", "C,,", "-n", "summitry", "-i", str(ca)],
    ):
        subprocess.run(command, check=True, capture_output=True)
    return home


@pytest.fixture(scope="session")
def e2e_server(tmp_path_factory: pytest.TempPathFactory, media_address: str) -> Iterator[Server]:
    with running_summitry(
        tmp_path_factory.mktemp("e2e-server"), SUMMITRY_MEDIA_ADDRESS=media_address
    ) as server:
        yield server


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    return CHROMIUM


@pytest.fixture(scope="session")
async def browser(chromium_path: str) -> AsyncIterator[Browser]:
    expect.set_options(timeout=QUICK_TIMEOUT_MS)
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=chromium_path, args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture(scope="session")
async def http(e2e_server: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=e2e_server.url, timeout=15) as client:
        yield client


@pytest.fixture(scope="session")
def shots() -> Path | None:
    """Where to keep screenshots of what each person saw (SUMMITRY_E2E_SHOTS), if anywhere."""
    directory = os.environ.get("SUMMITRY_E2E_SHOTS")
    if not directory:
        return None
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def vendor_assets() -> Path:
    """hls.js from npm in static/vendor/ (scripts/assets.sh: quick when it is up to date)."""
    done = subprocess.run(
        ["bash", str(REPO_ROOT / "scripts" / "assets.sh")], capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.fail(f"scripts/assets.sh failed:\n{done.stderr}")
    vendor = REPO_ROOT / "src" / "summitry" / "web" / "static" / "vendor"
    assert (vendor / "hls.min.js").is_file(), done.stderr
    return vendor


@pytest.fixture(scope="module")
async def call(
    browser: Browser, http: httpx.AsyncClient, e2e_server: Server, shots: Path | None
) -> AsyncIterator[Call]:
    """Both coordinators and the Russian principal in a live summit, one per module that
    asks for it (test_room.py has a call of its own)."""
    call = await live_call(browser, http, e2e_server, shots)
    try:
        yield call
    finally:
        await call.close()


@pytest.fixture
async def private_call(call: Call) -> Call:
    """The call in the private phase with every screen encrypted, whichever tests ran
    before (the first one makes the cut itself)."""
    coordinator = call[US_COORDINATOR]
    if await coordinator.locator("#phase-banner").get_attribute("data-phase") != "private":
        await coordinator.locator('#console button[data-action="cut"]').click()
        await phase_everywhere(call, "private", "PRIVATE")
    for page in call.pages:
        await expect(page.locator("#e2ee")).to_have_attribute(
            "data-status", "on", timeout=QUICK_TIMEOUT_MS
        )
    return call
