"""Four people in Chromium: two coordinators run the summit from their consoles, two
principals wait in the lobby until admitted; then everyone must see and hear the three
others, and follow the phase as the coordinators take the summit live and cut it."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, Page, Route, expect

from tests.media.test_faults import janus_pid
from tests.servers import Seeded, Server, create_summit, launch

# Bounds on conditions, never sleeps: a passing test waits only as long as its condition
# takes. They are wide so that a loaded machine (CI shares its two cores) is slow, not red;
# every `expect` without a timeout of its own waits QUICK_TIMEOUT_MS (conftest.py).
MEDIA_TIMEOUT_MS = 30_000
QUICK_TIMEOUT_MS = 15_000
# Small video in tests: four encoders and twelve decoders share two cores.
LOW_QUALITY = "localStorage.setItem('summitry.devices', JSON.stringify({quality: 'low'}))"

RU_COORDINATOR = "Yuri Ushakov"
US_COORDINATOR = "Jake Sullivan"
RU_PRINCIPAL = "Vladimir Putin"
US_PRINCIPAL = "Joe Biden"


@dataclass
class Person:
    name: str
    page: Page
    errors: list[str] = field(default_factory=list)
    log: list[str] = field(default_factory=list)


@dataclass
class Call:
    summit: Seeded
    people: dict[str, Person]
    shots: Path | None

    def __getitem__(self, name: str) -> Page:
        return self.people[name].page

    @property
    def pages(self) -> list[Page]:
        return [person.page for person in self.people.values()]

    async def close(self) -> None:
        for person in self.people.values():
            await person.page.context.close()

    async def shot(self, name: str, file: str, selector: str | None = None) -> None:
        if self.shots is None:
            return
        path = str(self.shots / f"{file}.png")
        if selector is None:
            await self[name].screenshot(path=path)
        else:
            await self[name].locator(selector).screenshot(path=path)


async def open_room(
    browser: Browser,
    link: str,
    name: str,
    prepare: Callable[[BrowserContext], Awaitable[None]] | None = None,
) -> Person:
    """A browser of its own on the link; `prepare` changes it before the page loads."""
    context = await browser.new_context(
        viewport={"width": 1440, "height": 900}, permissions=["camera", "microphone"]
    )
    await context.add_init_script(LOW_QUALITY)
    if prepare is not None:
        await prepare(context)
    page = await context.new_page()
    person = Person(name, page)
    page.on("pageerror", lambda error: person.errors.append(str(error)))
    page.on("console", lambda message: person.log.append(f"{message.type}: {message.text}"))
    await page.goto(link)
    await expect(page.locator("#lobby-title")).not_to_be_empty()
    return person


async def invite(page: Page, name: str, role: str) -> str:
    """The coordinator fills in the console's invitation form; returns the shown link."""
    console = page.locator("#console")
    await console.locator("#invite-name").fill(name)
    await console.locator("#invite-role").select_option(role)
    await console.locator("#invite-submit").click()
    result = console.locator("#invite-result")
    await expect(result).to_contain_text(name)
    link = await result.locator("#invite-link").input_value()
    assert "/room/" in link
    assert "#" in link
    return link


async def let_in(page: Page, coordinator: Page, name: str) -> None:
    """`name` asks to join from `page`, and their coordinator admits them into the call."""
    await page.locator("#join").click()
    await coordinator.locator(f'#waiting-list li[data-name="{name}"] button.admit').click()
    await expect(page.locator("body")).to_have_attribute("data-screen", "call")


async def both_consent(ru: Page, us: Page) -> None:
    """Russia's coordinator consents to go live, then, once their console shows it (a
    console acts on the version it last saw), the US coordinator."""
    await ru.locator('#console button[data-action="consent"]').click()
    await expect(us.locator("#console-other .other-consent")).to_have_attribute(
        "data-consented", "true"
    )
    await us.locator('#console button[data-action="consent"]').click()


async def phase_everywhere(
    call: Call, phase: str, label: str, timeout: float = QUICK_TIMEOUT_MS
) -> None:
    for page in call.pages:
        banner = page.locator("#phase-banner")
        await expect(banner).to_have_attribute("data-phase", phase, timeout=timeout)
        await expect(banner).to_contain_text(label)


async def stats(page: Page) -> dict[str, dict[str, Any]]:
    tiles: list[dict[str, Any]] = await page.evaluate("window.summitry.stats()")
    return {tile["name"]: tile for tile in tiles}


async def wait_for_media(page: Page, others: list[str]) -> dict[str, dict[str, Any]]:
    """Waits until this page decodes video and hears audio from each of `others`."""
    seen: dict[str, dict[str, Any]] = {}
    try:
        async with asyncio.timeout(MEDIA_TIMEOUT_MS / 1000):
            while True:
                seen = await stats(page)
                if sorted(seen) == sorted(others) and all(
                    tile["framesDecoded"] > 0 and tile["audioEnergy"] > 0 for tile in seen.values()
                ):
                    return seen
                await asyncio.sleep(0.25)
    except TimeoutError:
        state = await page.evaluate("JSON.stringify(window.summitry.state)")
        frames = await page.evaluate("window.summitry.e2ee()?.counters()")
        raise AssertionError(
            f"no media from {others}: {seen}; state {state}; frames {frames}"
        ) from None


async def media_goes_on(page: Page, others: list[str]) -> dict[str, dict[str, Any]]:
    """Waits until this page decodes video from and hears each of `others`, then until
    each has brought more of both since: a stall that ends within the media timeout is
    no failure (a loaded machine can hold frames back for a while), one that does not is."""
    first = await wait_for_media(page, others)
    later = first
    try:
        async with asyncio.timeout(MEDIA_TIMEOUT_MS / 1000):
            while True:
                await asyncio.sleep(0.25)
                later = await stats(page)
                if all(
                    other in later
                    and later[other]["framesDecoded"] > first[other]["framesDecoded"]
                    and later[other]["audioEnergy"] > first[other]["audioEnergy"]
                    for other in others
                ):
                    return later
    except TimeoutError:
        raise AssertionError(f"media from {others} stopped: {first} then {later}") from None


@pytest.fixture(scope="module")
async def call(
    browser: Browser, http: httpx.AsyncClient, e2e_server: Server, shots: Path | None
) -> AsyncIterator[Call]:
    """A summit in its lobby with four people in the call, all brought there by clicks."""
    summit = await create_summit(http)
    room = f"{e2e_server.url}/room/{summit.id}#"
    ru = await open_room(browser, room + summit.ru_token, RU_COORDINATOR)
    us = await open_room(browser, room + summit.us_token, US_COORDINATOR)
    call = Call(summit, {RU_COORDINATOR: ru, US_COORDINATOR: us}, shots)
    try:
        for coordinator in (ru.page, us.page):
            await expect(coordinator.locator("#console")).to_be_visible()
            await expect(coordinator.locator("#phase-banner")).to_have_attribute(
                "data-phase", "scheduled"
            )
            assert "#" not in coordinator.url  # the grant left the address bar
        await call.shot(RU_COORDINATOR, "01-lobby-coordinator-scheduled")

        await ru.page.locator('#console button[data-action="open_lobby"]').click()
        for coordinator in (ru.page, us.page):
            await expect(coordinator.locator("#phase-banner")).to_have_attribute(
                "data-phase", "lobby"
            )
            await coordinator.locator("#join").click()
            await expect(coordinator.locator("body")).to_have_attribute("data-screen", "call")

        links = {
            RU_PRINCIPAL: await invite(ru.page, RU_PRINCIPAL, "principal"),
            US_PRINCIPAL: await invite(us.page, US_PRINCIPAL, "principal"),
        }
        for name, link in links.items():
            principal = await open_room(browser, link, name)
            call.people[name] = principal
            await call.shot(name, f"02-lobby-{name.split()[-1].lower()}")
            await principal.page.locator("#join").click()
            waiting = principal.page.locator("#lobby-state")
            await expect(waiting).to_have_attribute("data-state", "waiting")
            await expect(waiting).to_contain_text("Waiting for your coordinator to admit you")
        await call.shot(RU_PRINCIPAL, "03-waiting")
        await call.shot(US_COORDINATOR, "04-console-invitation", "#console-invite")
        await call.shot(RU_COORDINATOR, "04-console-waiting")

        for coordinator, principal in ((ru, RU_PRINCIPAL), (us, US_PRINCIPAL)):
            row = coordinator.page.locator(f'#waiting-list li[data-name="{principal}"]')
            await row.locator("button.admit").click()
            await expect(call[principal].locator("body")).to_have_attribute(
                "data-screen", "call", timeout=QUICK_TIMEOUT_MS
            )
        yield call
    finally:
        await call.close()


async def test_everyone_sees_and_hears_the_others_and_follows_the_phase(call: Call) -> None:
    names = list(call.people)
    for name, page in zip(names, call.pages, strict=True):
        others = [other for other in names if other != name]
        later = await media_goes_on(page, others)
        for other in others:
            assert later[other]["audioRms"] > 0, (name, other)  # heard in the page itself
            assert later[other]["playing"], (name, other)
        tiles = page.locator("#stage .tile:not(.local)")
        assert sorted(await tiles.evaluate_all("ts => ts.map(t => t.dataset.name)")) == sorted(
            others
        )
        await expect(page.locator(f'#stage .tile.local[data-name="{name}"]')).to_have_count(1)
        # Every page's roster agrees: nobody is left as they were before an event that
        # came in while the page was reading the roster.
        await page.wait_for_function(
            "[...window.summitry.state.people.values()].every(p => p.presence === 'admitted')",
            timeout=QUICK_TIMEOUT_MS,
        )
    await phase_everywhere(call, "lobby", "LOBBY")
    await call.shot(RU_PRINCIPAL, "05-call-lobby-principal")
    await call.shot(US_COORDINATOR, "06-call-console")

    ru, us = call[RU_COORDINATOR], call[US_COORDINATOR]
    await ru.locator('#console button[data-action="consent"]').click()
    await expect(us.locator("#console-other .other-consent")).to_have_attribute(
        "data-consented", "true"
    )
    await phase_everywhere(call, "lobby", "LOBBY")  # one side's consent is not enough
    await us.locator('#console button[data-action="consent"]').click()
    await phase_everywhere(call, "public", "LIVE")
    for page in call.pages:
        await expect(page.locator("#phase-banner")).to_contain_text("broadcasting to the public")
    await call.shot(US_PRINCIPAL, "07-call-live")

    await us.locator('#console button[data-action="cut"]').click()
    await phase_everywhere(call, "private", "PRIVATE")
    for page in call.pages:
        await expect(page.locator("#phase-banner")).to_contain_text("not broadcast")
    await expect(ru.locator('#console button[data-action="consent"]')).to_be_disabled()
    await call.shot(RU_COORDINATOR, "08-call-private-console")
    for person in call.people.values():
        assert person.errors == [], person.name


async def test_microphone_and_camera_off_show_on_every_screen(call: Call) -> None:
    putin = call[RU_PRINCIPAL]
    await putin.locator("#toggle-mic").click()
    await putin.locator("#toggle-cam").click()
    await expect(putin.locator("#toggle-mic")).to_have_attribute("aria-pressed", "false")
    for name in (RU_COORDINATOR, US_COORDINATOR, US_PRINCIPAL):
        tile = call[name].locator(f'#stage .tile[data-name="{RU_PRINCIPAL}"]')
        await expect(tile).to_have_attribute("data-audio", "false")
        await expect(tile).to_have_attribute("data-video", "false")
        await expect(tile.locator(".avatar")).to_be_visible()
        await expect(tile.locator(".avatar")).to_have_text("VP")
        await expect(tile.locator(".mic-badge")).to_be_visible()
        await expect(tile.locator("video")).to_be_hidden()
    await call.shot(US_PRINCIPAL, "09-call-camera-off")
    await putin.locator("#toggle-mic").click()
    await putin.locator("#toggle-cam").click()
    tile = call[US_PRINCIPAL].locator(f'#stage .tile[data-name="{RU_PRINCIPAL}"]')
    await expect(tile).to_have_attribute("data-video", "true")
    await expect(tile.locator("video")).to_be_visible()


async def test_a_denied_delegate_is_told_so(
    call: Call, browser: Browser, shots: Path | None
) -> None:
    ru = call[RU_COORDINATOR]
    link = await invite(ru, "Sergey Lavrov", "delegate")
    lavrov = await open_room(browser, link, "Sergey Lavrov")
    try:
        await lavrov.page.locator("#join").click()
        await expect(lavrov.page.locator("#lobby-state")).to_have_attribute("data-state", "waiting")
        await ru.locator('#waiting-list li[data-name="Sergey Lavrov"] button.deny').click()
        denied = lavrov.page.locator("#lobby-state")
        await expect(denied).to_have_attribute("data-state", "denied")
        await expect(denied).to_contain_text("did not admit you")
        await expect(lavrov.page.locator("#join")).to_be_hidden()
        if shots is not None:
            await lavrov.page.screenshot(path=str(shots / "10-denied.png"))
        await expect(ru.locator('#own-roster li[data-name="Sergey Lavrov"]')).to_have_attribute(
            "data-presence", "denied"
        )
        assert lavrov.errors == []
    finally:
        await lavrov.page.context.close()


async def test_a_lapsed_event_stream_ticket_is_replaced(call: Call, browser: Browser) -> None:
    """EventSource reconnects on its own with the URL it has; once its ticket lapsed the
    server refuses it, and the page must open a new stream with a new ticket."""
    streams: list[str] = []

    async def lapse_the_first(route: Route) -> None:
        streams.append(route.request.url)
        if len(streams) == 1:
            message = "this event-stream ticket has expired; ask for a new one"
            await route.fulfill(status=401, json={"error": "not_authenticated", "message": message})
        else:
            await route.continue_()

    ru = call[RU_COORDINATOR]
    name = "Maria Zakharova"
    link = await invite(ru, name, "delegate")
    zakharova = await open_room(
        browser, link, name, lambda context: context.route("**/events?ticket=*", lapse_the_first)
    )
    page = zakharova.page
    try:
        await page.locator("#join").click()
        await expect(page.locator("#lobby-state")).to_have_attribute("data-state", "waiting")
        # The coordinator's decision reaches her through the new stream.
        await ru.locator(f'#waiting-list li[data-name="{name}"] button.deny').click()
        await expect(page.locator("#lobby-state")).to_have_attribute("data-state", "denied")
        await expect(page.locator("#connection")).to_have_attribute("data-state", "online")
        assert len(streams) == 2 and streams[0] != streams[1], streams
        assert zakharova.errors == []
    finally:
        await page.context.close()


async def test_a_principal_who_leaves_disappears_from_every_screen(call: Call) -> None:
    biden = call[US_PRINCIPAL]
    await biden.locator("#leave").click()
    await expect(biden.locator("#lobby-state")).to_have_attribute("data-state", "left")
    for name in (RU_COORDINATOR, US_COORDINATOR, RU_PRINCIPAL):
        page = call[name]
        await expect(page.locator(f'#stage .tile[data-name="{US_PRINCIPAL}"]')).to_have_count(
            0, timeout=QUICK_TIMEOUT_MS
        )
        await expect(page.locator("#stage .tile")).to_have_count(3)
    await expect(
        call[US_COORDINATOR].locator(f'#own-roster li[data-name="{US_PRINCIPAL}"]')
    ).to_have_attribute("data-presence", "left")
    for person in call.people.values():
        assert person.errors == [], person.name


async def media_flows(call: Call, present: list[str]) -> None:
    """Every page decodes video from, and hears, each of the others, and goes on."""
    for name in present:
        others = [other for other in present if other != name]
        await media_goes_on(call[name], others)


async def test_the_others_keep_their_media_after_a_leave(call: Call) -> None:
    await media_flows(call, [RU_COORDINATOR, US_COORDINATOR, RU_PRINCIPAL])


async def restarted(page: Page) -> int:
    return int(await page.evaluate("window.summitry.state.media.restarts"))


async def test_pages_get_media_back_after_janus_dies(call: Call, e2e_server: Server) -> None:
    present = [RU_COORDINATOR, US_COORDINATOR, RU_PRINCIPAL]
    restarts = {name: await restarted(call[name]) for name in present}
    killed = time.monotonic()
    os.kill(janus_pid(e2e_server.data_dir), signal.SIGKILL)
    for name in present:  # each page is told and starts its media again
        page = call[name]
        async with asyncio.timeout(MEDIA_TIMEOUT_MS / 1000):
            while await restarted(page) == restarts[name]:
                await asyncio.sleep(0.2)
    await media_flows(call, present)
    assert time.monotonic() - killed < 15
    for person in call.people.values():
        assert person.errors == [], person.name


async def test_pages_resync_after_summitry_restarts(
    call: Call, e2e_server: Server, media_address: str
) -> None:
    present = [RU_COORDINATOR, US_COORDINATOR, RU_PRINCIPAL]
    e2e_server.process.kill()  # a crash; Janus and the calls carry on
    e2e_server.process.wait(10)
    await media_flows(call, present)
    restarted = launch(
        e2e_server.data_dir, e2e_server.port, {"SUMMITRY_MEDIA_ADDRESS": media_address}
    )
    e2e_server.process = restarted.process  # the fixture stops this one at the end
    # The pages follow the new server: a change made now reaches every screen.
    putin = call[RU_PRINCIPAL]
    await putin.locator("#toggle-mic").click()
    for name in (RU_COORDINATOR, US_COORDINATOR):
        tile = call[name].locator(f'#stage .tile[data-name="{RU_PRINCIPAL}"]')
        await expect(tile).to_have_attribute("data-audio", "false", timeout=MEDIA_TIMEOUT_MS)
    await putin.locator("#toggle-mic").click()
    await media_flows(call, present)
    for page in call.pages:
        await expect(page.locator("#phase-banner")).to_have_attribute("data-phase", "private")
