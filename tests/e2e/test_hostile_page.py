"""What a page on any other site can make a visitor's browser do to summitry: simple
requests only (no custom header, no preflight), such as images aimed at the API. Forty
of them asking for event streams with made-up tickets must not lock anyone out of the
summit who shares the visitor's address."""

from __future__ import annotations

import asyncio

import httpx
from playwright.async_api import Browser

from tests.servers import Server, bearer, create_summit

IMAGES = 40


async def test_images_on_another_site_lock_nobody_out(
    browser: Browser, http: httpx.AsyncClient, e2e_server: Server
) -> None:
    summit = await create_summit(http)
    context = await browser.new_context()
    page = await context.new_page()
    done: asyncio.Queue[str] = asyncio.Queue()
    page.on("requestfinished", lambda request: done.put_nowait(request.url))
    page.on("requestfailed", lambda request: done.put_nowait(request.url))
    events = f"{e2e_server.url}/api/v1/summits/{summit.id}/events?ticket="
    images = "".join(f'<img src="{events}made-up-{n}">' for n in range(IMAGES))
    try:
        await page.set_content(f"<!doctype html><title>elsewhere</title>{images}")
        sent = set()
        async with asyncio.timeout(30):
            while len(sent) < IMAGES:
                if (url := await done.get()).startswith(events):
                    sent.add(url)
    finally:
        await context.close()
    # The coordinator, on the same address as that browser, still gets in...
    me = await http.get("/api/v1/me", headers=bearer(summit.ru_token))
    assert me.status_code == 200, me.text
    # ...and the images spent none of the address's allowance for guessed grants.
    token = summit.ru_token
    forged_token = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    forged = await http.get("/api/v1/me", headers=bearer(forged_token))
    assert forged.status_code == 401, forged.text
