"""Simulcast: a camera goes out in three layers (full, half and a quarter of its size),
each receiver gets the layer it asks for, and its page asks for a lower one when its
path loses packets; the broadcast carries the highest layer whatever the receivers do.
Two coordinators: Russia's camera is HD (the fake device opens at 1280x720 for the
first page that asks), the US side's page watches it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from urllib.parse import urljoin

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect

from tests.e2e.test_public_page import open_viewer, wait_playing
from tests.e2e.test_room import (
    MEDIA_TIMEOUT_MS,
    RU_COORDINATOR,
    US_COORDINATOR,
    Call,
    both_consent,
    open_room,
    phase_everywhere,
    stats,
)
from tests.servers import Server, create_summit

HD = "localStorage.setItem('summitry.devices', JSON.stringify({quality: 'hd'}))"


async def hd_camera(context: BrowserContext) -> None:
    await context.add_init_script(HD)


@pytest.fixture(scope="module")
async def call(
    browser: Browser, http: httpx.AsyncClient, e2e_server: Server, shots: Path | None
) -> AsyncIterator[Call]:
    summit = await create_summit(http)
    room = f"{e2e_server.url}/room/{summit.id}#"
    ru = await open_room(browser, room + summit.ru_token, RU_COORDINATOR, hd_camera)
    us = await open_room(browser, room + summit.us_token, US_COORDINATOR)
    call = Call(summit, {RU_COORDINATOR: ru, US_COORDINATOR: us}, shots)
    try:
        await ru.page.locator('#console button[data-action="open_lobby"]').click()
        for page in call.pages:
            await expect(page.locator("#phase-banner")).to_have_attribute("data-phase", "lobby")
            await page.locator("#join").click()
            await expect(page.locator("body")).to_have_attribute("data-screen", "call")
        yield call
    finally:
        await call.close()


async def width_of(page: Page, name: str, wanted: Callable[[int], bool]) -> int:
    """The width `page` decodes `name`'s video at, once it is `wanted`."""
    width = 0
    try:
        async with asyncio.timeout(MEDIA_TIMEOUT_MS / 1000):
            while not wanted(width := (await stats(page)).get(name, {}).get("frameWidth", 0)):
                await asyncio.sleep(0.25)
    except TimeoutError:
        raise AssertionError(f"{name}'s video stayed {width} wide") from None
    return width


async def test_a_receiver_gets_the_layer_it_asks_for(call: Call) -> None:
    """The lowest layer is a quarter of the 1280 camera; the highest at least twice that
    (the full picture, or half of it while the sender's bandwidth estimate still holds
    the top layer back)."""
    watcher = call[US_COORDINATOR]
    sender = await call[RU_COORDINATOR].evaluate("window.summitry.state.me.participant.id")
    await width_of(watcher, RU_COORDINATOR, lambda width: width > 0)
    choose = "([p, layer]) => window.summitry.receiveLayer(p, layer)"
    await watcher.evaluate(choose, [sender, "low"])
    low = await width_of(watcher, RU_COORDINATOR, lambda width: 0 < width <= 320)
    await watcher.evaluate(choose, [sender, "high"])
    await width_of(watcher, RU_COORDINATOR, lambda width: width >= 2 * low)


# The page's rule, driven by figures: loss and time in ms.
LAYER_RULE = """async (steps) => {
  const { LayerChooser } = await import("/static/layers.js");
  const chooser = new LayerChooser(0);
  return steps.map(([loss, at]) => chooser.next(loss, at));
}"""


async def test_a_lossy_path_steps_down_and_climbs_back_slower_each_time(call: Call) -> None:
    steps = [
        (0.0, 2_000),  # calm: stays at the top
        (0.08, 4_000),  # a lossy interval: one down
        (0.06, 6_000),  # still lossy: the lowest
        (0.0, 8_000),
        (0.0, 14_000),  # calm 8 s: up one
        (0.05, 16_000),  # lossy right after: down again, and the next climb waits 16 s
        (0.0, 26_000),
        (0.0, 32_000),  # calm 16 s: up
        (0.02, 34_000),  # some loss, under the step-down: the calm spell starts again
        (0.0, 44_000),
        (0.0, 50_000),  # calm 16 s since: to the top
    ]
    chosen = await call[US_COORDINATOR].evaluate(LAYER_RULE, [list(step) for step in steps])
    assert chosen == [2, 1, 0, 0, 1, 0, 0, 1, 1, 1, 2], chosen


async def test_the_broadcast_carries_the_highest_layer(
    call: Call, browser: Browser, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    ru, us = call[RU_COORDINATOR], call[US_COORDINATOR]
    # The US page watches Russia's lowest layer: the broadcast does not follow it.
    sender = await ru.evaluate("window.summitry.state.me.participant.id")
    await us.evaluate("([p]) => window.summitry.receiveLayer(p, 'low')", [sender])
    await width_of(us, RU_COORDINATOR, lambda width: 0 < width <= 320)
    await both_consent(ru, us)
    await phase_everywhere(call, "public", "LIVE")
    public = (await http.get(f"/api/v1/public/{call.summit.slug}")).json()
    playlist = next(s["hls"] for s in public["streams"] if s["side"] == "Russian Federation")
    # On air is the largest layer the camera sends (a loaded sender holds its top layers
    # back at times, and Janus falls back to the next one until it gets a key frame).
    width, sending = 0, {0}
    try:
        async with asyncio.timeout(MEDIA_TIMEOUT_MS / 1000):
            while width not in sending:
                sending = {await largest_layer_sent(ru)}
                width = await segment_width(http, playlist, tmp_path)
                sending.add(await largest_layer_sent(ru))
    except TimeoutError:
        raise AssertionError(f"on air {width} wide while the camera sends {sending}") from None
    # WHEP viewers get the picture too (the public page's player).
    viewer = await open_viewer(browser, urljoin(str(http.base_url), f"/s/{call.summit.slug}"))
    try:
        await wait_playing(viewer, "whep")
    finally:
        await viewer.page.context.close()


SENT = "window.summitry.sent()"


async def largest_layer_sent(page: Page) -> int:
    """The width of the largest layer `page` sends frames of (over half a second)."""
    before = {layer["rid"]: layer["framesSent"] for layer in await page.evaluate(SENT)}
    await asyncio.sleep(0.5)
    return max(
        (
            layer["frameWidth"]
            for layer in await page.evaluate(SENT)
            if layer["framesSent"] > before.get(layer["rid"], 0)
        ),
        default=0,
    )


async def segment_width(http: httpx.AsyncClient, playlist: str, folder: Path) -> int:
    """The picture width of the newest segment the playlist lists."""
    async with asyncio.timeout(MEDIA_TIMEOUT_MS / 1000):
        while True:
            listed = await http.get(playlist)
            names = [line for line in listed.text.splitlines() if line.endswith(".ts")]
            if listed.status_code == 200 and names:
                break
            await asyncio.sleep(0.5)
    segment = folder / "segment.ts"
    segment.write_bytes((await http.get(urljoin(str(listed.url), names[-1]))).content)
    probe = await asyncio.create_subprocess_exec(
        *("ffprobe", "-v", "error", "-select_streams", "v:0"),
        *("-show_entries", "stream=width", "-of", "csv=p=0", str(segment)),
        stdout=asyncio.subprocess.PIPE,
    )
    return int((await probe.communicate())[0].decode().split()[0])
