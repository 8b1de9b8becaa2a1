"""The talks across a small internet built of network namespaces (tests/e2e/topology.py):
summitry, Janus and coturn on a public segment, behind HTTPS on 443 and TURN over TLS on
443; the Russian coordinator and the American one each at home behind a NAT; the Russian
principal in a ministry whose firewall lets out nothing but TCP to port 443. Each joins
over HTTPS with a Chromium of its own that trusts the server's CA; everyone sees and
hears everyone, the ministry's connections are relayed over TLS and the homes' are not;
a foreign WHIP client in the ministry publishes through the ICE servers it is given."""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from summitry.security.local_ca import LocalTls, local_tls
from tests.e2e.conftest import CHROMIUM_ARGS, REPO_ROOT, home_trusting
from tests.e2e.test_private import live_call
from tests.e2e.test_room import (
    MEDIA_TIMEOUT_MS,
    RU_COORDINATOR,
    RU_PRINCIPAL,
    US_COORDINATOR,
    Call,
    invite,
    stats,
    wait_for_media,
)
from tests.e2e.topology import MEDIA_ADDRESS, WEB_ADDRESS, Site, Topology, topology
from tests.servers import OPERATOR_TOKEN, Server, bearer, launch, stop, trusting

HOME_A = Site("home-a", 11)
HOME_B = Site("home-b", 12)
MINISTRY = Site("ministry", 13, only_tcp_443=True)
WHERE = {RU_COORDINATOR: HOME_A, US_COORDINATOR: HOME_B, RU_PRINCIPAL: MINISTRY}
FOREIGN = "Dmitry Peskov"


@dataclass
class Internet:
    net: Topology
    tls: LocalTls
    server: Server


@pytest.fixture(scope="module")
def internet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Internet]:
    net = topology([HOME_A, HOME_B, MINISTRY])
    try:
        net.build()
        tls = local_tls(tmp_path_factory.mktemp("tls"), [WEB_ADDRESS, MEDIA_ADDRESS])
        server = launch(
            tmp_path_factory.mktemp("internet-server"),
            443,
            {
                "SUMMITRY_MEDIA_ADDRESS": MEDIA_ADDRESS,
                "SUMMITRY_TURN_PORT": "3478",
                "SUMMITRY_TURN_TLS_PORT": "443",
            },
            ("--tls-cert", str(tls.cert), "--tls-key", str(tls.key)),
            ca=tls.ca,
            host=WEB_ADDRESS,
            namespace=net.namespace("srv"),
        )
        try:
            yield Internet(net, tls, server)
        finally:
            stop(server)
    finally:
        net.tear_down()


@pytest.fixture(scope="module")
async def browsers(
    internet: Internet, chromium_path: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[dict[str, Browser]]:
    """A Chromium in each site, trusting the server's CA in its own certificate store."""
    folder = tmp_path_factory.mktemp("browsers")
    home = home_trusting(tmp_path_factory.mktemp("home"), internet.tls.ca)
    async with async_playwright() as playwright:
        launched: dict[str, Browser] = {}
        try:
            for name, site in WHERE.items():
                launched[name] = await playwright.chromium.launch(
                    executable_path=str(internet.net.chromium(site, folder, chromium_path)),
                    args=CHROMIUM_ARGS,
                    env={"HOME": str(home)},
                )
            yield launched
        finally:
            for browser in launched.values():
                await browser.close()


@pytest.fixture(scope="module")
async def call(
    internet: Internet, browsers: dict[str, Browser], shots: Path | None
) -> AsyncIterator[Call]:
    server = internet.server
    async with httpx.AsyncClient(
        base_url=server.url, verify=trusting(internet.tls.ca), timeout=15
    ) as http:
        call = await live_call(browsers[RU_COORDINATOR], http, server, shots, browsers)
    try:
        yield call
    finally:
        await call.close()


async def paths(page: Page) -> dict[str, Any]:
    found: dict[str, Any] = await page.evaluate("window.summitry.paths()")
    return found


async def settled_paths(page: Page, relayed: bool) -> dict[str, Any]:
    """The page's two connections once both use a pair of the kind expected (ICE may
    try a relay first and move to a direct pair once one answers)."""
    seen: dict[str, Any] = {}
    try:
        # A publisher in Python encoding in software, through TLS: given twice the time.
        async with asyncio.timeout(2 * MEDIA_TIMEOUT_MS / 1000):
            while True:
                seen = await paths(page)
                if len(seen) == 2 and all(
                    path and (path["local"] == "relay") == relayed for path in seen.values()
                ):
                    return seen
                await asyncio.sleep(0.25)
    except TimeoutError:
        raise AssertionError(f"paths never settled (relayed={relayed}): {seen}") from None


async def test_everyone_sees_and_hears_everyone_through_nats_and_a_firewall(call: Call) -> None:
    names = list(call.people)
    for name in names:
        await wait_for_media(call[name], [other for other in names if other != name])

    ministry = await settled_paths(call[RU_PRINCIPAL], relayed=True)
    for path in ministry.values():
        assert path["relayProtocol"] == "tls" and path["protocol"] == "udp", ministry
        assert path["remoteAddress"].startswith(f"{MEDIA_ADDRESS}:"), ministry
    for name in (RU_COORDINATOR, US_COORDINATOR):
        home = await settled_paths(call[name], relayed=False)
        for path in home.values():
            assert path["remote"] == "host" and path["protocol"] == "udp", (name, home)
            assert path["remoteAddress"].startswith(f"{MEDIA_ADDRESS}:"), (name, home)
    for name in names:
        await network_bars_shown(call[name], len(names))
    await call.shot(RU_PRINCIPAL, "internet-ministry")


async def network_bars_shown(page: Page, tiles: int) -> None:
    """Every tile, the page's own too, shows how its media arrives: bars lit (media is
    flowing on every path) and the figures behind them."""
    bars = page.locator(".tile .net-bars")
    await expect(bars).to_have_count(tiles)
    for index in range(tiles):
        bar = bars.nth(index)
        await expect(bar).to_have_attribute("data-level", re.compile("^(good|fair|poor)$"))
        await expect(bar).to_have_attribute("title", re.compile(r"loss \d+\.\d % · round trip"))


async def test_a_foreign_whip_client_in_the_ministry_publishes_through_turn(
    call: Call, internet: Internet
) -> None:
    ru = call[RU_COORDINATOR]
    link = await invite(ru, FOREIGN, "delegate")
    token = link.split("#", 1)[1]
    # He knocks with the tool's own HTTP, and his coordinator lets him in from the console.
    async with httpx.AsyncClient(
        base_url=internet.server.url, verify=trusting(internet.tls.ca)
    ) as http:
        knocked = await http.post(f"/api/v1/summits/{call.summit.id}/lobby", headers=bearer(token))
        assert knocked.json()["presence"] == "waiting", knocked.text
    await ru.locator(f'#waiting-list li[data-name="{FOREIGN}"] button.admit').click()
    whip = f"{internet.server.url}/api/v1/summits/{call.summit.id}/whip"
    tool = await asyncio.create_subprocess_exec(
        *internet.net.exec_in(MINISTRY.name),
        *(sys.executable, "-m", "tests.e2e.foreign_whip", whip, token, str(internet.tls.ca)),
        cwd=REPO_ROOT,
        env={"SSL_CERT_FILE": str(internet.tls.ca), "PATH": "/usr/bin:/bin"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    seen: dict[str, Any] = {}
    try:
        # A publisher in Python encoding in software, through TLS: given twice the time.
        async with asyncio.timeout(2 * MEDIA_TIMEOUT_MS / 1000):
            while True:
                tile = (seen := await stats(ru)).get(FOREIGN, {})
                if tile.get("framesDecoded") and tile.get("audioEnergy"):
                    break
                if tool.returncode is not None:
                    break
                await asyncio.sleep(0.25)
    except TimeoutError:
        seen["timed out"] = True
    finally:
        if tool.returncode is None:
            tool.kill()
        said = (await tool.communicate())[0].decode(errors="replace")
    assert "timed out" not in seen and tool.returncode == -9, (seen, said)
    assert "ice servers: ['turn:" in said and "turns:" in said, said
    assert "whip: 201" in said and "connection: connected" in said, said


async def summitry_check(internet: Internet, site: Site | None, *args: str) -> tuple[int, str]:
    """`summitry check` run from `site` (from the operator's own network if None)."""
    inside = internet.net.exec_in(site.name) if site else ()
    tool = await asyncio.create_subprocess_exec(
        *inside,
        *(sys.executable, "-m", "summitry.cli", "check", internet.server.url, *args),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    said = (await asyncio.wait_for(tool.communicate(), 120))[0].decode()
    assert tool.returncode is not None
    return tool.returncode, said


def lines_of(report: str) -> dict[str, str]:
    """Each finding's subject -> its line."""
    found = {}
    for line in report.splitlines():
        if line.startswith(("ok  ", "FAIL")):
            found[line[6:].split()[0]] = line
    return found


async def test_summitry_check_reports_what_each_network_lets_through(internet: Internet) -> None:
    trusted = ("--operator-token", OPERATOR_TOKEN, "--ca", str(internet.tls.ca))
    status, said = await summitry_check(internet, None, *trusted)
    assert status == 0, said
    found = lines_of(said)
    for subject in ("certificate", "server", "HSTS", "clock", "ICE"):
        assert found[subject].startswith("ok"), said
    assert f"UDP to Janus at {MEDIA_ADDRESS}:" in found["ICE"], said
    turn = {subject: line for subject, line in found.items() if subject.startswith("turn")}
    assert len(turn) == 3 and all("relayed round trip" in line for line in turn.values()), said
    assert all(f"via {MEDIA_ADDRESS}" in line for line in turn.values()), said

    # From a home behind its NAT, Janus is reached directly too.
    status, said = await summitry_check(internet, HOME_A, *trusted)
    assert status == 0 and lines_of(said)["ICE"].startswith("ok"), said

    # From the ministry only TLS on 443 gets out: the check says so, and fails.
    status, said = await summitry_check(internet, MINISTRY, *trusted)
    assert status == 1, said
    failed = {s for s, line in lines_of(said).items() if line.startswith("FAIL")}
    relays = {f"turn:{MEDIA_ADDRESS}:3478?transport={t}" for t in ("udp", "tcp")}
    assert failed == {"ICE", *relays}, said
    assert "browsers here need TURN" in lines_of(said)["ICE"], said
    assert lines_of(said)[f"turns:{MEDIA_ADDRESS}:443?transport=tcp"].startswith("ok"), said

    # Without the CA, or with a wrong token: named, and a failure.
    status, said = await summitry_check(internet, None, "--operator-token", "wrong")
    assert status == 1, said
    assert "not trusted" in lines_of(said)["certificate"], said
    assert "unreachable" in lines_of(said)["server"], said
    status, said = await summitry_check(
        internet, None, "--operator-token", "wrong", "--ca", str(internet.tls.ca)
    )
    assert status == 1 and "403" in lines_of(said)["TURN"], said
    assert "403" in lines_of(said)["ICE"], said
