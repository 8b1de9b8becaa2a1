"""The public page /s/<slug> in Chromium, as a member of the public sees it: the start in
both sides' zones and their own before the summit, the live picture of both sides over
WHEP (and over HLS for a viewer that asks for it) as soon as the coordinators go live,
the private notice at the cut, then the recordings of the public part and the readouts."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.async_api import Browser, Page, expect

from tests.e2e.test_room import MEDIA_TIMEOUT_MS, QUICK_TIMEOUT_MS
from tests.media.conftest import invite
from tests.media.peers import Publisher, Subscriber, gather_only_on
from tests.media.test_room import wait_feeds
from tests.servers import Seeded, Server, bearer, create_summit

VIEWER_ZONE = "Asia/Tokyo"
SIDES = ["Russian Federation", "United States"]
MEDIA_TIMEOUT = MEDIA_TIMEOUT_MS / 1000
RECORDINGS_TIMEOUT_MS = 25_000


@dataclass
class Viewer:
    page: Page
    errors: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    async def stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = await self.page.evaluate("window.summitryPublic.stats()")
        return stats

    async def shot(self, shots: Path | None, name: str, full_page: bool = False) -> None:
        if shots is not None:
            await self.page.screenshot(path=str(shots / f"public-{name}.png"), full_page=full_page)


async def open_viewer(browser: Browser, url: str, refuse_whep: bool = False) -> Viewer:
    context = await browser.new_context(
        viewport={"width": 1440, "height": 900}, timezone_id=VIEWER_ZONE
    )
    page = await context.new_page()
    if refuse_whep:  # as a proxy that does not pass WebRTC signalling would
        await page.route("**/whep", lambda route: route.fulfill(status=503, body="no WHEP here"))
    viewer = Viewer(page)
    page.on("pageerror", lambda error: viewer.errors.append(str(error)))
    # A refused worker, script or media URL would show as a console error: there must be none.
    page.on(
        "console",
        lambda message: (
            message.type == "error"
            and not message.text.startswith("Failed to load resource")  # in `failed`, with its URL
            and viewer.errors.append(message.text)
        ),
    )
    page.on("request", lambda r: r.method == "DELETE" and viewer.deleted.append(r.url))
    page.on(
        "response",
        lambda r: (
            r.status >= 400 and viewer.failed.append(f"{r.request.method} {r.url} {r.status}")
        ),
    )
    await page.goto(url)
    return viewer


async def wait_playing(viewer: Viewer, path: str) -> dict[str, Any]:
    """Waits until both sides' pictures advance on `path`; returns the later stats."""
    stats: dict[str, Any] = {}
    try:
        async with asyncio.timeout(MEDIA_TIMEOUT):
            while True:
                stats = await viewer.stats()
                frames = [side["framesDecoded"] for side in stats["sides"]]
                if stats["path"] == path and len(frames) == 2 and min(frames) > 0:
                    break
                await asyncio.sleep(0.25)
        await asyncio.sleep(1.0)
    except TimeoutError:
        raise AssertionError(f"no picture over {path}: {stats}; {viewer.errors}") from None
    later = await viewer.stats()
    assert later["path"] == path
    assert [side["side"] for side in later["sides"]] == SIDES
    for before, after in zip(stats["sides"], later["sides"], strict=True):
        assert after["framesDecoded"] > before["framesDecoded"], (before, after)
        assert after["playing"] and after["muted"], after  # autoplay starts muted
    return later


async def act(http: httpx.AsyncClient, summit: Seeded, token: str, action: str) -> None:
    response = await http.post(
        f"/api/v1/summits/{summit.id}/actions/{action}", headers=bearer(token)
    )
    assert response.status_code == 200, response.text


@dataclass
class Broadcast:
    summit: Seeded
    publishers: list[Publisher] = field(default_factory=list)
    observer: Subscriber | None = None


@pytest.fixture
async def broadcast(
    http: httpx.AsyncClient, media_address: str, vendor_assets: Path
) -> AsyncIterator[Broadcast]:
    """A summit whose two principals will publish (aiortc over WHIP) once it opens."""
    gather_only_on(media_address)
    broadcast = Broadcast(await create_summit(http))
    try:
        yield broadcast
    finally:
        for publisher in broadcast.publishers:
            await publisher.close()
        if broadcast.observer is not None:
            await broadcast.observer.close()


async def bring_principals(http: httpx.AsyncClient, broadcast: Broadcast) -> None:
    summit = broadcast.summit
    await act(http, summit, summit.ru_token, "open_lobby")
    for token in (summit.ru_token, summit.us_token):
        await http.post(f"/api/v1/summits/{summit.id}/lobby", headers=bearer(token))
    tokens = [
        await invite(http, summit.id, summit.ru_token, "Vladimir Putin", "principal"),
        await invite(http, summit.id, summit.us_token, "Joe Biden", "principal"),
    ]
    for token in tokens:
        publisher = Publisher(http, summit.id, token)
        broadcast.publishers.append(publisher)
        assert (await publisher.publish()).status_code == 201
    observer = Subscriber(
        http,
        summit.id,
        await invite(http, summit.id, summit.us_token, "Press Pool", "observer"),
    )
    broadcast.observer = observer
    assert (await observer.start()).status_code == 201
    await wait_feeds(observer, 2)  # both publishers are up: go-live forwards both


async def test_the_public_page_follows_the_summit(
    browser: Browser,
    http: httpx.AsyncClient,
    e2e_server: Server,
    broadcast: Broadcast,
    shots: Path | None,
) -> None:
    summit = broadcast.summit
    url = f"{e2e_server.url}/s/{summit.slug}"
    viewer = await open_viewer(browser, url)
    hls_viewer: Viewer | None = None
    try:
        # Before the start: the countdown and the start in both sides' zones and the viewer's.
        page = viewer.page
        state = page.locator("#state")
        await expect(state).to_have_attribute("data-phase", "scheduled")
        await expect(state).to_have_attribute("data-view", "upcoming")
        await expect(page.locator("#title")).to_have_text("Russia – United States video summit")
        await expect(page.locator("#agenda")).to_have_text("Strategic stability")
        await expect(page.locator("#phase-banner")).to_contain_text("UPCOMING")
        await expect(page.locator("#countdown .count-cell")).to_have_count(4)  # days to seconds
        await expect(page.locator('#countdown [data-unit="days"]')).to_contain_text("days")
        starts_at = datetime.fromisoformat(
            (await http.get(f"/api/v1/public/{summit.slug}")).json()["starts_at"]
        )
        times = page.locator("#times")
        zones = {SIDES[0]: "Europe/Moscow", SIDES[1]: "America/New_York", "Your time": VIEWER_ZONE}
        for term, zone in zones.items():
            row = times.locator("dt", has_text=term)
            await expect(row).to_have_count(1)
            wall = starts_at.astimezone(ZoneInfo(zone))
            when = row.locator("xpath=following-sibling::dd[1]")
            await expect(when).to_contain_text(wall.strftime("%H:%M"))
            await expect(when).to_contain_text(zone.replace("_", " "))
        assert (await viewer.stats())["path"] is None
        await viewer.shot(shots, "01-upcoming")

        # The lobby opens: the page follows by itself and still waits.
        await bring_principals(http, broadcast)
        await expect(state).to_have_attribute("data-phase", "lobby")
        await expect(state).to_have_attribute("data-view", "upcoming")

        # Both coordinators consent: the page goes live by itself, over WHEP.
        for token in (summit.ru_token, summit.us_token):
            await act(http, summit, token, "consent")
        await expect(state).to_have_attribute("data-phase", "public", timeout=QUICK_TIMEOUT_MS)
        await expect(page.locator("#phase-banner")).to_contain_text("LIVE")
        live = await wait_playing(viewer, "whep")
        location = live["whep"]["location"]
        assert f"/api/v1/public/{summit.slug}/whep/" in location
        assert live["whep"]["connectionState"] == "connected"
        feeds = page.locator("#feeds .feed")
        assert await feeds.evaluate_all("fs => fs.map(f => f.dataset.name)") == SIDES
        for name in SIDES:
            await expect(feeds.filter(has_text=name)).to_have_class("tile feed playing")
        await expect(page.locator("#unmute")).to_be_visible()
        await viewer.shot(shots, "02-live-whep")

        # The sound on: one click, for both sides.
        await page.locator("#unmute").click()
        await expect(page.locator("#unmute")).to_be_hidden()
        await expect(page.locator("#player")).to_have_attribute("data-muted", "false")
        assert not any(side["muted"] for side in (await viewer.stats())["sides"])

        # A viewer who asks for HLS gets hls.js with both sides' playlists.
        hls_viewer = await open_viewer(browser, f"{url}?player=hls")
        await expect(hls_viewer.page.locator("#player")).to_have_attribute("data-path", "hls")
        hls = await wait_playing(hls_viewer, "hls")
        assert hls["whep"] is None
        await hls_viewer.shot(shots, "03-live-hls")

        # A viewer whose WHEP request is refused falls back to HLS by itself.
        fallback = await open_viewer(browser, url, refuse_whep=True)
        await wait_playing(fallback, "hls")
        assert any(item.startswith("POST") for item in fallback.failed), fallback.failed
        await fallback.page.context.close()

        # The cut: both pages say the talks continue in private; the WHEP session is deleted.
        await act(http, summit, summit.us_token, "cut")
        for page_ in (viewer.page, hls_viewer.page):
            await expect(page_.locator("#state")).to_have_attribute(
                "data-phase", "private", timeout=QUICK_TIMEOUT_MS
            )
            await expect(page_.locator("#closed")).to_contain_text("The talks continue in private")
            await expect(page_.locator("#player")).to_be_hidden()
            await expect(page_.locator("#feeds video")).to_have_count(0)
        after_cut = await viewer.stats()
        assert after_cut["path"] is None and after_cut["whep"] is None
        async with asyncio.timeout(QUICK_TIMEOUT_MS / 1000):  # request events come a bit later
            while location not in viewer.deleted:
                await asyncio.sleep(0.05)
        await expect(page.locator("#phase-banner")).to_contain_text("PRIVATE")
        await viewer.shot(shots, "04-private")

        # The recordings of the public part appear once sealed (no event: the page looks).
        recordings = page.locator("#recordings .recording")
        await expect(recordings).to_have_count(2, timeout=RECORDINGS_TIMEOUT_MS)
        await viewer.shot(shots, "05-private-recordings", full_page=True)

        # The end, and the readouts: one statement, one side without.
        await act(http, summit, summit.ru_token, "end")
        await expect(state).to_have_attribute("data-phase", "ended", timeout=QUICK_TIMEOUT_MS)
        await expect(page.locator("#closed")).to_contain_text("The summit has ended")
        statement = "Both sides reaffirmed their commitment to strategic stability."
        for token, body in (
            (summit.ru_token, {"statement": statement}),
            (summit.us_token, {"no_statement": True}),
        ):
            response = await http.put(
                f"/api/v1/summits/{summit.id}/readout", json=body, headers=bearer(token)
            )
            assert response.status_code in (200, 201), response.text
        readouts = page.locator("#readouts .readout")
        ru_readout = readouts.filter(has_text=SIDES[0])
        us_readout = readouts.filter(has_text=SIDES[1])
        await expect(ru_readout).to_have_attribute(
            "data-status", "statement", timeout=QUICK_TIMEOUT_MS * 2
        )
        await expect(ru_readout.locator(".statement")).to_have_text(statement)
        await expect(us_readout).to_have_attribute("data-status", "none")
        await expect(us_readout).to_contain_text("No statement")

        # Each side's recording: watchable inline, downloads that match their checksums.
        await expect(recordings).to_have_count(2)
        for index, name in enumerate(SIDES):
            card = recordings.nth(index)
            await expect(card).to_have_attribute("data-name", name)
            await page.wait_for_function(
                "i => { const v = document.querySelectorAll('video.recording-video')[i];"
                " return v && v.readyState >= 1 && v.duration > 0; }",
                arg=index,
                timeout=QUICK_TIMEOUT_MS,
            )
            for kind, extension in (("video", "mp4"), ("audio", "ogg")):
                file = card.locator(f'.file[data-kind="{kind}"]')
                href = await file.locator("a.download").get_attribute("href")
                assert href is not None and href.endswith(f"/{index}.{extension}"), href
                shown = await file.locator(".sha").inner_text()
                download = await http.get(href)
                assert download.status_code == 200
                assert hashlib.sha256(download.content).hexdigest() == shown
                assert len(download.content) > 1000
        await page.evaluate("window.scrollTo(0, 0)")
        await viewer.shot(shots, "06-ended", full_page=True)
        assert viewer.errors == [] and hls_viewer.errors == []
        # The only refusal: the WHEP session the server had already closed at the cut.
        assert set(viewer.failed) <= {f"DELETE {location} 404"}, viewer.failed
        assert hls_viewer.failed == []
    finally:
        for opened in (viewer, hls_viewer):
            if opened is not None:
                await opened.page.context.close()


async def test_a_cancelled_summit_and_an_unknown_address(
    browser: Browser,
    http: httpx.AsyncClient,
    e2e_server: Server,
    vendor_assets: Path,
    shots: Path | None,
) -> None:
    summit = await create_summit(http)
    viewer = await open_viewer(browser, f"{e2e_server.url}/s/{summit.slug}")
    try:
        page = viewer.page
        await page.set_viewport_size({"width": 420, "height": 900})  # a phone
        await expect(page.locator("#state")).to_have_attribute("data-view", "upcoming")
        await viewer.shot(shots, "07-upcoming-phone", full_page=True)
        await act(http, summit, summit.us_token, "cancel")
        await expect(page.locator("#state")).to_have_attribute("data-phase", "cancelled")
        await expect(page.locator("#closed")).to_contain_text("This summit was cancelled")
        await expect(page.locator("#countdown")).to_be_hidden()
        await viewer.shot(shots, "08-cancelled-phone", full_page=True)

        await page.goto(f"{e2e_server.url}/s/no-such-summit")
        await expect(page.locator("#state")).to_have_attribute("data-view", "fatal")
        await expect(page.locator("#screen-fatal")).to_contain_text(
            "There is no summit at this address"
        )
        await viewer.shot(shots, "09-not-found-phone")
        assert viewer.errors == []
        missing = f"GET {e2e_server.url}/api/v1/public/no-such-summit"
        assert viewer.failed, "the page did not ask for the summit"
        assert all(f.startswith(missing) and f.endswith(" 404") for f in viewer.failed)
    finally:
        await viewer.page.context.close()
