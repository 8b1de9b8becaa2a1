"""The room page reached from another address, as a second machine on the LAN reaches the
demo: over HTTPS with a certificate from the CA made here, which this Chromium trusts in
its own certificate store (no blanket --ignore-certificate-errors), it gets the camera and
microphone; over plain HTTP it says plainly why it cannot, and where to go instead."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from summitry.security.local_ca import LocalTls, local_tls
from tests.conftest import free_port
from tests.e2e.conftest import CHROMIUM_ARGS, home_trusting
from tests.servers import Server, create_summit, launch, stop, trusting


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory, media_address: str) -> LocalTls:
    return local_tls(tmp_path_factory.mktemp("tls"), [media_address])


def serving(
    tmp_path_factory: pytest.TempPathFactory, host: str, tls: LocalTls | None
) -> Iterator[Server]:
    args = ("--tls-cert", str(tls.cert), "--tls-key", str(tls.key)) if tls else ()
    server = launch(
        tmp_path_factory.mktemp("data"),
        free_port(),
        {"SUMMITRY_MEDIA": "off"},
        args,
        ca=tls.ca if tls else None,
        host=host,
    )
    try:
        yield server
    finally:
        stop(server)


@pytest.fixture(scope="module")
def https_server(
    tmp_path_factory: pytest.TempPathFactory, media_address: str, tls: LocalTls
) -> Iterator[Server]:
    yield from serving(tmp_path_factory, media_address, tls)


@pytest.fixture(scope="module")
def http_server(tmp_path_factory: pytest.TempPathFactory, media_address: str) -> Iterator[Server]:
    yield from serving(tmp_path_factory, media_address, None)


@pytest.fixture(scope="module")
def trusting_home(tmp_path_factory: pytest.TempPathFactory, tls: LocalTls) -> Path:
    return home_trusting(tmp_path_factory.mktemp("home"), tls.ca)


@pytest.fixture(scope="module")
async def trusting_browser(chromium_path: str, trusting_home: Path) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium_path, args=CHROMIUM_ARGS, env={"HOME": str(trusting_home)}
        )
        try:
            yield browser
        finally:
            await browser.close()


async def room_of(browser: Browser, server: Server, ca: Path | None) -> Page:
    async with httpx.AsyncClient(base_url=server.url, verify=trusting(ca)) as http:
        summit = await create_summit(http)
    page = await (await browser.new_context()).new_page()
    await page.goto(f"{server.url}/room/{summit.id}#{summit.ru_token}")
    await expect(page.locator("#lobby-title")).not_to_be_empty()
    return page


async def test_over_https_from_another_address_the_camera_and_microphone_work(
    trusting_browser: Browser, https_server: Server, tls: LocalTls
) -> None:
    page = await room_of(trusting_browser, https_server, tls.ca)
    try:
        assert await page.evaluate("window.isSecureContext")
        await expect(page.locator("#lobby-error")).to_be_empty()
        tracks = await page.evaluate(
            "new Promise((resolve) => { const check = () => {"
            " const stream = document.querySelector('#preview').srcObject;"
            " const live = stream ? stream.getTracks().filter((t) => t.readyState === 'live')"
            ".map((t) => t.kind).sort() : [];"
            " if (live.length === 2) resolve(live); else setTimeout(check, 100); }; check(); })"
        )
        assert tracks == ["audio", "video"]
    finally:
        await page.context.close()


async def test_over_plain_http_from_another_address_the_page_says_where_to_go(
    browser: Browser, http_server: Server, shots: Path | None
) -> None:
    page = await room_of(browser, http_server, None)
    try:
        assert not await page.evaluate("window.isSecureContext")
        error = page.locator("#lobby-error")
        await expect(error).to_contain_text("came over plain HTTP, which is not secure")
        host = http_server.url.removeprefix("http://")
        await expect(error).to_contain_text(f"https://{host}/room/")
        await expect(error).not_to_contain_text("Cannot read properties")
        if shots is not None:
            await page.screenshot(path=str(shots / "room-plain-http.png"))
    finally:
        await page.context.close()
