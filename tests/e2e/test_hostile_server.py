"""The private phase against a server that lies, in Chromium through the real Janus. A
proxy in front of summitry (Playwright routes on the browsers' requests) plays the
hostile server: it substitutes public keys, forges a key for one browser, adds a member
nobody invited, and announces the public part after the private one. Each attack shows
on the screens, and no browser sends a clear frame."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import os
import re
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from playwright.async_api import Browser, BrowserContext, Page, Route, expect
from playwright.async_api import Error as PlaywrightError

from tests.e2e.test_private import counters, key_exchange, security_code
from tests.e2e.test_room import (
    MEDIA_TIMEOUT_MS,
    QUICK_TIMEOUT_MS,
    RU_COORDINATOR,
    RU_PRINCIPAL,
    US_COORDINATOR,
    Call,
    Person,
    invite,
    let_in,
    open_room,
    stats,
    wait_for_media,
)
from tests.servers import OPERATOR_TOKEN, bearer

RING = "[...window.summitry.e2ee().ring.keys()]"  # the epochs whose key a page holds


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Attacker:
    """A key pair the server made for itself, and what it can forge with it: wraps made
    exactly as a browser makes them (static/e2ee.js), for a transcript of its choice."""

    def __init__(self) -> None:
        self.private = ec.generate_private_key(ec.SECP256R1())
        self.public_key = b64url(
            self.private.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        )

    @staticmethod
    def transcript(summit_id: str, epoch: int, maker_id: str, members: list[dict[str, str]]) -> str:
        ordered = sorted(members, key=lambda m: m["participant_id"])
        maker = next(m for m in ordered if m["participant_id"] == maker_id)
        return json.dumps(
            [
                "summitry key transcript v1",
                summit_id,
                epoch,
                maker_id,
                maker["public_key"],
                [[m["participant_id"], m["name"], m["public_key"]] for m in ordered],
            ],
            separators=(",", ":"),
            ensure_ascii=False,
        )

    def wrap(
        self,
        summit_id: str,
        epoch: int,
        maker_id: str,
        members: list[dict[str, str]],
        recipient: dict[str, str],
    ) -> str:
        """A fresh media key of the attacker's, wrapped for `recipient` as if `maker_id`
        (whose public key `members` gives as the attacker's) had made it."""
        point = ec.EllipticCurvePublicKey.from_encoded_point(
            ec.SECP256R1(), b64decode(recipient["public_key"])
        )
        shared = self.private.exchange(ec.ECDH(), point)
        bound = hashlib.sha256(
            self.transcript(summit_id, epoch, maker_id, members).encode()
        ).hexdigest()
        info = (
            f"summitry media key v2 {epoch} {maker_id} {recipient['participant_id']} {bound}"
        ).encode()
        key = HKDF(hashes.SHA256(), 32, salt=summit_id.encode(), info=info).derive(shared)
        iv = os.urandom(12)
        return b64url(iv + AESGCM(key).encrypt(iv, os.urandom(32), info))


async def rewritten(
    target: Page | BrowserContext,
    pattern: str | re.Pattern[str],
    change: Callable[[dict[str, Any]], dict[str, Any]],
) -> None:
    """A route that hands `change(body)` to the page in place of the server's answer
    (an error answer goes to the page as it is: it has no body to change)."""

    async def handle(route: Route) -> None:
        response = await route.fetch()
        if not response.ok:
            await route.fulfill(response=response)
            return
        await route.fulfill(response=response, json=change(await response.json()))

    await target.route(pattern, handle)


async def participant_id(page: Page) -> str:
    me: dict[str, Any] = await page.evaluate("window.summitry.state.me")
    return str(me["participant"]["id"])


async def admitted_newcomer(
    call: Call,
    browser: Browser,
    name: str,
    role: str,
    prepare: Callable[[BrowserContext], Awaitable[None]] | None = None,
) -> Person:
    """A newcomer invited by the Russian coordinator, admitted into the private call."""
    link = await invite(call[RU_COORDINATOR], name, role)
    person = await open_room(browser, link, name, prepare)
    await let_in(person.page, call[RU_COORDINATOR], name)
    return person


async def leave(page: Page) -> None:
    """A newcomer leaves the call, so the next key is made without them."""
    await page.locator("#leave").click()
    await expect(page.locator("#lobby-state")).to_have_attribute("data-state", "left")


async def depart(page: Page) -> None:
    """A newcomer's browser goes away after its test, having left the call if it was still
    in it, so that a failed test does not leave the others' key exchange changed."""
    if await page.locator("#leave").is_visible():
        with contextlib.suppress(PlaywrightError, AssertionError):
            await leave(page)
    # Routes still answering when the browser closes would fail the next test.
    await page.unroute_all(behavior="ignoreErrors")
    await page.context.unroute_all(behavior="ignoreErrors")
    await page.context.close()


async def honest_codes(call: Call, members: int) -> dict[str, str]:
    """The codes of the honest screens once they agree on a key made for `members`."""
    async with asyncio.timeout(QUICK_TIMEOUT_MS / 1000):
        while True:
            codes = {name: await security_code(call[name]) for name in call.people}
            made_for = await call[RU_COORDINATOR].evaluate(
                "window.summitry.e2ee().transcript?.members.length"
            )
            if made_for == members and len(set(codes.values())) == 1:
                return codes
            await asyncio.sleep(0.2)


async def test_a_substituted_public_key_leaves_the_browser_without_the_key(
    private_call: Call, browser: Browser, http: httpx.AsyncClient
) -> None:
    """A delegate's browser is told everyone else's public keys as an attacker's (a man
    in the middle would), in the members and in the transcript of every key offered."""
    fakes: dict[str, str] = {}

    def swapped(body: dict[str, Any], me: str) -> dict[str, Any]:
        listed = [m for k in body["keys_for_you"] for m in k["transcript"]] + body["members"]
        for member in listed:
            if member["participant_id"] != me:
                fakes.setdefault(member["public_key"], Attacker().public_key)
                member["public_key"] = fakes[member["public_key"]]
        return body

    name = "Antony Blinken"
    link = await invite(private_call[US_COORDINATOR], name, "delegate")
    blinken = await open_room(browser, link, name)
    me = await participant_id(blinken.page)
    await rewritten(blinken.page, "**/e2ee", lambda body: swapped(body, me))
    page = blinken.page
    try:
        await let_in(page, private_call[US_COORDINATOR], name)
        await expect(page.locator("#e2ee")).to_have_attribute(
            "data-status", "waiting", timeout=QUICK_TIMEOUT_MS
        )
        await expect(page.locator("#e2ee-detail")).to_contain_text("could not be opened")
        await expect(page.locator("#e2ee-code")).to_have_attribute("data-code", "")
        # Each broken wrap is reported and a new key made, a few times, then no more.
        me = await participant_id(page)
        await expect(page.locator("#e2ee-detail")).to_contain_text("Compare the security codes")
        # The others made the key for his real public key, and agree on it.
        await honest_codes(private_call, members=4)
        # Without the key he is kept off the private feeds: nothing reaches his page.
        await page.wait_for_timeout(2000)
        assert all(tile["framesDecoded"] == 0 for tile in (await stats(page)).values())
        sent = [c for c in await counters(page) if c["side"] == "send"]
        assert sent and all(c["clear"] == 0 for c in sent), sent
        assert await failed_wraps(http, private_call.summit.id, me) == 3  # MAX_REPAIRS
        if private_call.shots is not None:
            await page.screenshot(path=str(private_call.shots / "22-key-swapped.png"))
    finally:
        await depart(page)


async def test_a_forged_one_time_view_shows_a_different_security_code(
    private_call: Call, browser: Browser, http: httpx.AsyncClient
) -> None:
    """The server answers a newcomer's browser once with a key it made itself, under the
    real maker's name but its own public key, and honestly ever after: the browser holds
    the server's key, and its code differs from every other screen's."""
    attacker = Attacker()
    summit = private_call.summit
    forged: list[int] = []
    makers: list[str] = []  # whom the server named as the forged key's maker

    def forge_once(body: dict[str, Any]) -> dict[str, Any]:
        if forged or not body["keys_for_you"]:
            return body
        offered = body["keys_for_you"][-1]
        maker = offered["sender_id"]
        for member in [*offered["transcript"], *body["members"]]:
            if member["participant_id"] == maker:
                member["public_key"] = attacker.public_key
        mine = next(m for m in offered["transcript"] if m["participant_id"] == me)
        offered["wrapped"] = attacker.wrap(
            summit.id, offered["epoch"], maker, offered["transcript"], mine
        )
        body["keys_for_you"] = [offered]
        forged.append(offered["epoch"])
        makers.append(
            next(m["name"] for m in offered["transcript"] if m["participant_id"] == maker)
        )
        return body

    name = "Wendy Sherman"
    link = await invite(private_call[US_COORDINATOR], name, "delegate")
    sherman = await open_room(browser, link, name)
    page = sherman.page
    me = await participant_id(page)
    await rewritten(page, "**/e2ee", forge_once)
    try:
        await let_in(page, private_call[US_COORDINATOR], name)
        # Her browser took the forged key and the server counts her as holding it.
        await expect(page.locator("#e2ee")).to_have_attribute(
            "data-status", "on", timeout=QUICK_TIMEOUT_MS
        )
        assert forged, "the newcomer was never offered a key"
        codes = await honest_codes(private_call, members=4)
        assert (await key_exchange(http, summit.id, summit.ru_token))["in_force"] == forged[0]
        hers = await security_code(page)
        assert hers not in codes.values(), (hers, codes)
        # Neither her frames nor theirs open on the other side: an alarm on every screen.
        for screen in [page, *private_call.pages]:
            await expect(screen.locator("#e2ee")).to_have_attribute(
                "data-alarms", re.compile(r"\bframes-do-not-open\b")
            )
            await expect(screen.locator("#e2ee-detail")).to_contain_text(
                "What others send does not open with your key"
            )
        # And the maker's real key, which the server shows her ever after, is not the one
        # her browser saw first.
        await expect(page.locator("#e2ee")).to_have_attribute(
            "data-alarms", re.compile(r"\bkey-changed\b")
        )
        await expect(page.locator("#e2ee-detail")).to_contain_text(
            f"{makers[0]}'s key is not the one this browser saw before"
        )
        # What the others send is sealed with the real key: it stays closed to her.
        await page.wait_for_timeout(2000)
        assert all(tile["framesDecoded"] == 0 for tile in (await stats(page)).values())
        sent = [c for c in await counters(page) if c["side"] == "send"]
        assert sent and all(c["clear"] == 0 for c in sent), sent
        if private_call.shots is not None:
            await page.screenshot(path=str(private_call.shots / "private-forged-view.png"))
        await leave(page)
        # A new key, made without her, opens on every screen again: the alarm ends.
        for screen in private_call.pages:
            await expect(screen.locator("#e2ee")).to_have_attribute("data-alarms", "")
    finally:
        await depart(page)


async def failed_wraps(http: httpx.AsyncClient, summit_id: str, participant: str) -> int:
    trail = (
        await http.get(f"/api/v1/summits/{summit_id}/audit", headers=bearer(OPERATOR_TOKEN))
    ).json()["trail"]
    return sum(
        r["action"] == "e2ee_wrap_failed" and r["details"]["participant"] == participant
        for r in trail
    )


async def test_a_wrap_broken_or_replayed_is_taken_back_and_the_key_made_again(
    private_call: Call, browser: Browser, http: httpx.AsyncClient
) -> None:
    """The server garbles the first key it hands a newcomer, then hands her an old wrap as
    a new key's: each time her browser says so, a new key is made, and she holds it."""
    broken: list[int] = []

    def garble_once(body: dict[str, Any]) -> dict[str, Any]:
        if not broken and body["keys_for_you"]:
            offered = body["keys_for_you"][-1]
            raw = bytearray(b64decode(offered["wrapped"]))
            raw[-1] ^= 0x01
            offered["wrapped"] = b64url(bytes(raw))
            broken.append(offered["epoch"])
        return body

    name = "Rose Gottemoeller"
    summit = private_call.summit
    before = (await key_exchange(http, summit.id, summit.ru_token))["in_force"]
    newcomer = await admitted_newcomer(
        private_call,
        browser,
        name,
        "delegate",
        lambda context: rewritten(context, "**/e2ee", garble_once),
    )
    page = newcomer.page
    try:
        await expect(page.locator("#e2ee")).to_have_attribute("data-status", "on")
        me = await participant_id(page)
        assert broken and await failed_wraps(http, summit.id, me) == 1
        keys = await key_exchange(http, summit.id, summit.ru_token)
        assert keys["in_force"] > broken[0], (keys, broken)
        # She never held a key made before she came: what was said before stays closed.
        ring = await page.evaluate(RING)
        assert ring and min(ring) > before, (ring, before)

        # A later key comes to her with her wrap of an earlier one in its place: it is
        # bound to its epoch, so it does not open, and is replaced in turn.
        held = keys["in_force"]
        old_wrap = next(
            k["wrapped"]
            for k in (await page.evaluate("window.summitry.e2ee().view"))["keys_for_you"]
            if k["epoch"] == held
        )
        replayed: list[int] = []

        def replay_old(body: dict[str, Any]) -> dict[str, Any]:
            for offered in body["keys_for_you"]:
                if offered["epoch"] == held + 1:
                    offered["wrapped"] = old_wrap
                    replayed.append(offered["epoch"])
            return body

        await rewritten(page, "**/e2ee", replay_old)
        lavrov = await admitted_newcomer(private_call, browser, "Sergey Lavrov", "observer")
        try:
            await expect(lavrov.page.locator("#e2ee")).to_have_attribute("data-status", "on")
            async with asyncio.timeout(QUICK_TIMEOUT_MS / 1000):
                while await failed_wraps(http, summit.id, me) < 2:
                    await asyncio.sleep(0.1)
            assert replayed, "no later key came"
            async with asyncio.timeout(QUICK_TIMEOUT_MS / 1000):  # the key made after
                while max(ring := await page.evaluate(RING)) <= held + 1:
                    await asyncio.sleep(0.1)
            assert held + 1 not in ring, ring
            await expect(page.locator("#e2ee")).to_have_attribute("data-status", "on")
        finally:
            await depart(lavrov.page)
    finally:
        await depart(page)


PHANTOM = {"participant_id": "feedfacefeedface", "name": "Phantom Listener"}


async def test_a_phantom_member_is_named_on_every_screen(
    private_call: Call, browser: Browser
) -> None:
    """The server lists, to every browser alike, a member nobody invited, so the key is
    made for it too: the codes match, but every screen counts and names it."""
    phantom = {**PHANTOM, "public_key": Attacker().public_key}

    def listed(body: dict[str, Any]) -> dict[str, Any]:
        body["members"].append({**phantom, "side_id": "", "role": "observer", "holds": []})
        for offered in body["keys_for_you"]:
            offered["transcript"].append(phantom)
        return body

    async def without_phantom(route: Route) -> None:
        body: dict[str, Any] = route.request.post_data_json
        body["wraps"].pop(phantom["participant_id"], None)  # the server keeps that one
        await route.continue_(post_data=json.dumps(body))

    async def proxied(target: Page | BrowserContext) -> None:
        await rewritten(target, "**/e2ee", listed)
        await target.route("**/e2ee/epochs", without_phantom)

    for page in private_call.pages:
        await proxied(page)
    newcomer = await admitted_newcomer(
        private_call, browser, "Maria Zakharova", "observer", proxied
    )
    screens = [*private_call.pages, newcomer.page]
    try:
        for page in screens:
            holders = page.locator("#e2ee-holders")
            await expect(holders).to_contain_text("5 people hold the key", timeout=MEDIA_TIMEOUT_MS)
            await expect(holders).to_contain_text(f"not in this room: {PHANTOM['name']}")
            await expect(page.locator("#e2ee")).to_have_attribute("data-alarm", "")
            await expect(page.locator("#e2ee-detail")).to_contain_text(
                f"The key was also made for {PHANTOM['name']}"
            )
        codes = {await security_code(page) for page in screens}
        assert len(codes) == 1, codes  # consistent lies agree: the count and names do not
        await private_call.shot(RU_PRINCIPAL, "private-phantom-member")
    finally:
        await depart(newcomer.page)
        for page in private_call.pages:
            await page.unroute_all(behavior="ignoreErrors")


async def test_frames_shown_under_another_participants_name_never_play(
    private_call: Call,
) -> None:
    """The server tells one browser that the Russian principal's feed is the Russian
    coordinator's and the other way round: each tile would show the other man. Neither
    tile plays, and the screen says why."""

    def swapped(body: dict[str, Any]) -> dict[str, Any]:
        feeds = {feed["name"]: feed for feed in body["feeds"]}
        principal, coordinator = feeds.get(RU_PRINCIPAL), feeds.get(RU_COORDINATOR)
        if principal and coordinator:
            for key in ("participant_id", "name", "role"):
                principal[key], coordinator[key] = coordinator[key], principal[key]
        return body

    us = private_call[US_COORDINATOR]
    await rewritten(us, re.compile(r"/subscriptions(/[^/]+/sync)?$"), swapped)
    try:
        await us.reload()  # still admitted: straight back into the call, subscribed anew
        await expect(us.locator("#e2ee")).to_have_attribute(
            "data-alarms", "frames-misattributed", timeout=MEDIA_TIMEOUT_MS
        )
        await expect(us.locator("#e2ee-detail")).to_contain_text("under another participant")
        tiles = await stats(us)
        assert sorted(tiles) == sorted([RU_COORDINATOR, RU_PRINCIPAL]), tiles
        assert all(tile["framesDecoded"] == 0 for tile in tiles.values()), tiles
        received = [c for c in await counters(us) if c["side"] == "receive"]
        assert sum(c["misattributed"] for c in received) > 0, received
        assert sum(c["decrypted"] for c in received) == 0, received
        await private_call.shot(US_COORDINATOR, "private-misattributed")
    finally:
        await us.unroute_all(behavior="ignoreErrors")
    await us.reload()
    await wait_for_media(us, [RU_COORDINATOR, RU_PRINCIPAL])
    await expect(us.locator("#e2ee")).to_have_attribute("data-alarms", "")


async def test_a_server_that_announces_the_public_part_after_the_private_one_is_an_alarm(
    private_call: Call,
) -> None:
    """The server tells a reloaded browser that the talks are public again: the browser
    remembers it saw the private part, says so on its screen, and sends no clear frame."""
    summit = private_call.summit
    putin = private_call[RU_PRINCIPAL]
    summit_view = re.compile(rf"/api/v1/summits/{summit.id}(\?.*)?$")
    events = f"**/api/v1/summits/{summit.id}/events?*"
    await rewritten(putin, summit_view, lambda body: {**body, "phase": "public"})
    await putin.route(events, lambda route: route.abort())  # nothing honest gets through
    try:
        await putin.reload()  # still admitted: straight back into the call
        await expect(putin.locator("#phase-banner")).to_have_attribute("data-phase", "public")
        await expect(putin.locator("body")).to_have_attribute("data-screen", "call")
        alarm = putin.locator("#e2ee")
        await expect(alarm).to_have_attribute("data-alarms", "public-after-private")
        await expect(alarm).to_contain_text("The server announced the public part after")
        async with asyncio.timeout(MEDIA_TIMEOUT_MS / 1000):
            while True:  # the camera and microphone run; every frame is sealed or held back
                sent = [c for c in await counters(putin) if c["side"] == "send"]
                if len(sent) == 2 and all(c["encrypted"] + c["dropped"] > 30 for c in sent):
                    break
                await asyncio.sleep(0.2)
        assert all(c["clear"] == 0 for c in sent), sent
        await private_call.shot(RU_PRINCIPAL, "private-public-after-private")
    finally:
        await putin.unroute_all(behavior="ignoreErrors")
        await putin.reload()
        await expect(putin.locator("body")).to_have_attribute("data-screen", "call")


async def test_a_new_browser_for_a_participant_waits_for_a_coordinators_acceptance(
    private_call: Call, browser: Browser
) -> None:
    """A delegate's link is opened in another browser (her own new laptop, or someone
    who copied the link): its key is new. Every screen that saw her old key says so, the
    new browser gets no key, and it does once her coordinator accepts the change. (Last
    in this module: the screens keep the warning.)"""
    name = "Victoria Nuland"
    jake = private_call[US_COORDINATOR]
    link = await invite(jake, name, "delegate")
    first = await open_room(browser, link, name)
    await let_in(first.page, jake, name)
    await expect(first.page.locator("#e2ee")).to_have_attribute("data-status", "on")
    await honest_codes(private_call, members=4)  # everyone saw her first key
    await leave(first.page)
    await first.page.context.close()

    second = await open_room(browser, link, name)
    page = second.page
    try:
        await let_in(page, jake, name)
        await expect(page.locator("#e2ee")).to_have_attribute("data-status", "waiting")
        await expect(page.locator("#e2ee-detail")).to_contain_text("Your browser has a new key")
        for screen in private_call.pages:
            await expect(screen.locator("#e2ee")).to_have_attribute("data-alarms", "key-changed")
            await expect(screen.locator("#e2ee-detail")).to_contain_text(
                f"{name}'s browser has a new key"
            )
            await expect(screen.locator("#e2ee-detail")).to_contain_text("gets no key until")
        assert all(tile["framesDecoded"] == 0 for tile in (await stats(page)).values())
        change = jake.locator(f'#console-keys li[data-name="{name}"]')
        await expect(change).to_contain_text("new key")
        await private_call.shot(US_COORDINATOR, "private-key-change-console")
        await private_call.shot(US_COORDINATOR, "private-key-change-panel", "#console-keys")
        if private_call.shots is not None:
            await page.screenshot(path=str(private_call.shots / "private-key-change-new.png"))
        await change.locator("button.accept-key").click()
        await expect(page.locator("#e2ee")).to_have_attribute(
            "data-status", "on", timeout=QUICK_TIMEOUT_MS
        )
        await expect(jake.locator("#console-keys")).to_be_hidden()
        for screen in private_call.pages:
            await expect(screen.locator("#e2ee-detail")).to_contain_text(
                "the server says a coordinator accepted it"
            )
        await wait_for_media(page, list(private_call.people))
    finally:
        await depart(page)
