"""The private phase in Chromium through the real Janus: the talks go on end-to-end
encrypted from the cut, a subscriber attached to Janus directly (as a curious server
could) gets nothing it can decode, a reload keeps the browser's key, and a removed
participant decodes nothing sent after the rekey. A server that lies is
test_hostile_server.py's."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import Browser, Page, expect

from summitry.media.janus import Handle, Janus, Session
from summitry.media.resources import VIDEOROOM
from tests.e2e.test_room import (
    MEDIA_TIMEOUT_MS,
    QUICK_TIMEOUT_MS,
    RU_COORDINATOR,
    RU_PRINCIPAL,
    US_COORDINATOR,
    Call,
    both_consent,
    invite,
    let_in,
    media_goes_on,
    open_room,
    phase_everywhere,
    wait_for_media,
)
from tests.servers import OPERATOR_TOKEN, Server, bearer, create_summit

# A meter for the fake microphone's 400 Hz beep. Over every 43 ms window in which
# something is heard it adds up the power spectrum, and compares the power at 400 Hz with
# the power per bin around it: a tone stands out by orders of magnitude, decoded noise
# does not. Remote audio only flows into WebAudio while a media element plays it.
TONE_METER = """
(track) => {
  const context = new AudioContext();
  const analyser = context.createAnalyser();
  analyser.fftSize = 2048;
  context.createMediaStreamSource(new MediaStream([track])).connect(analyser);
  const element = new Audio();
  element.muted = true;
  element.srcObject = new MediaStream([track]);
  element.play().catch(() => {});
  const bins = new Float32Array(analyser.frequencyBinCount);
  const spectrum = new Float64Array(analyser.frequencyBinCount);
  const hz = context.sampleRate / analyser.fftSize;
  const meter = { tone: 0, windows: 0, audible: 0 };
  const at = (f) => Math.round(f / hz);
  setInterval(() => {
    analyser.getFloatFrequencyData(bins);
    let total = 0;
    for (let i = 1; i < bins.length; i += 1) total += 10 ** (bins[i] / 10);
    meter.windows += 1;
    if (total < 1e-7) return;
    meter.audible += 1;
    for (let i = 1; i < bins.length; i += 1) spectrum[i] += 10 ** (bins[i] / 10);
    let peak = 0, around = 0, count = 0;
    for (let i = at(400) - 1; i <= at(400) + 1; i += 1) peak += spectrum[i];
    for (let i = at(250); i <= at(550); i += 1) {
      if (Math.abs(i - at(400)) > 4) { around += spectrum[i]; count += 1; }
    }
    meter.tone = peak / 3 / (around / count || 1e-12);
  }, 10);
  return meter;
}
"""

# A meter for the fake camera's picture, a flat green field (0, 128, 0) under a clock
# and a moving shape. For every frame presented it draws a thumbnail and counts the
# pixels of that green: most of a real picture, next to none of decoded garbage.
PICTURE_METER = """
(video) => {
  const canvas = new OffscreenCanvas(64, 36);
  const context = canvas.getContext("2d", { willReadFrequently: true });
  const meter = { frames: 0, greenest: 0 };
  const look = () => {
    context.drawImage(video, 0, 0, canvas.width, canvas.height);
    const { data } = context.getImageData(0, 0, canvas.width, canvas.height);
    let green = 0;
    for (let i = 0; i < data.length; i += 4) {
      if (data[i] < 60 && data[i + 1] > 90 && data[i + 1] < 170 && data[i + 2] < 60) green += 1;
    }
    meter.frames += 1;
    meter.greenest = Math.max(meter.greenest, green / (data.length / 4));
    video.requestVideoFrameCallback(look);
  };
  video.requestVideoFrameCallback(look);
  return meter;
}
"""

# A subscription that Janus offers directly, answered in this page; with `keys`, its
# receivers decrypt with a copy of the page's current key ring.
CURIOUS_SUBSCRIBER = (
    """
async ([offer, withKeys]) => {
  const toneMeter = """
    + TONE_METER
    + """;
  const pictureMeter = """
    + PICTURE_METER
    + """;
  const pc = new RTCPeerConnection();
  const curious = { pc, receivers: {}, tone: null, picture: null, worker: null };
  window.curious = curious;
  if (withKeys) {
    curious.worker = new Worker("/static/e2ee-worker.js");
    curious.worker.postMessage({ type: "summit", id: window.summitry.state.summitId, me: null });
    for (const [epoch, key] of window.summitry.e2ee().ring) {
      curious.worker.postMessage({ type: "key", epoch, key });
    }
    curious.worker.postMessage({ type: "mode", private: true, sendEpoch: null });
  }
  pc.addEventListener("track", (event) => {
    const kind = event.track.kind;
    if (curious.worker) {
      event.receiver.transform = new RTCRtpScriptTransform(
        curious.worker, { side: "receive", kind, id: `curious-${kind}` });
    }
    curious.receivers[kind] = event.receiver;
    if (kind === "audio") curious.tone = toneMeter(event.track);
    else {
      const video = document.createElement("video");
      video.muted = true;
      video.srcObject = new MediaStream([event.track]);
      video.play().catch(() => {});
      curious.picture = pictureMeter(video);
    }
  });
  await pc.setRemoteDescription({ type: "offer", sdp: offer });
  await pc.setLocalDescription(await pc.createAnswer());
  return pc.localDescription.sdp;
}
"""
)

CURIOUS_STATS = """
async () => {
  const result = { tone: window.curious.tone, picture: window.curious.picture };
  for (const [kind, receiver] of Object.entries(window.curious.receivers)) {
    for (const entry of (await receiver.getStats()).values()) {
      if (entry.type === "inbound-rtp") result[kind] = entry;
    }
  }
  return JSON.parse(JSON.stringify(result));
}
"""


class CuriousSubscriber:
    """What a curious media server could do: subscribe to feeds in Janus directly,
    with the room's id and pin from summitry's own state."""

    def __init__(self, server: Server, summit_id: str) -> None:
        janus_dir = server.data_dir / "janus"
        endpoint = json.loads((janus_dir / "janus.state.json").read_text())["endpoint"]
        self.room = json.loads((janus_dir / "media.state.json").read_text())["rooms"][summit_id]
        self.janus = Janus(endpoint["url"], endpoint["api_secret"])
        self.session: Session | None = None
        self.handle: Handle | None = None

    async def watch(self, page: Page, feed_ids: list[int], with_keys: bool) -> None:
        self.session = await Session.open(self.janus, None)
        self.handle = await self.session.attach(VIDEOROOM)
        _, jsep = await self.handle.message(
            {
                "request": "join",
                "ptype": "subscriber",
                "room": self.room["room_id"],
                "pin": self.room["pin"],
                "streams": [{"feed": feed_id} for feed_id in feed_ids],
            }
        )
        assert jsep is not None and jsep["type"] == "offer"
        answer = await page.evaluate(CURIOUS_SUBSCRIBER, [jsep["sdp"], with_keys])
        await self.handle.message({"request": "start"}, {"type": "answer", "sdp": answer})
        await self.handle.trickle_completed()

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()
        await self.janus.close()


async def curious_stats(page: Page) -> dict[str, Any]:
    result: dict[str, Any] = await page.evaluate(CURIOUS_STATS)
    return result


async def curious_counters(page: Page) -> dict[str, dict[str, Any]]:
    """What the curious subscriber's own decrypting worker did, per kind."""
    found: list[dict[str, Any]] = await page.evaluate(
        "new Promise((resolve) => { const worker = window.curious.worker;"
        " worker.addEventListener('message', (e) => resolve(e.data.counters), { once: true });"
        " worker.postMessage({ type: 'stats', ask: 1 }); })"
    )
    return {c["kind"]: c for c in found}


async def counters(page: Page) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = await page.evaluate("window.summitry.e2ee().counters()")
    return result


async def security_code(page: Page) -> str:
    code = page.locator("#e2ee-code")
    await expect(code).not_to_have_attribute("data-code", "")
    return str(await code.get_attribute("data-code"))


async def feeds_of(http: httpx.AsyncClient, summit_id: str, token: str) -> dict[str, int]:
    response = await http.get(f"/api/v1/summits/{summit_id}/feeds", headers=bearer(token))
    assert response.status_code == 200, response.text
    return {feed["name"]: feed["feed_id"] for feed in response.json()}


async def key_exchange(http: httpx.AsyncClient, summit_id: str, token: str) -> dict[str, Any]:
    response = await http.get(f"/api/v1/summits/{summit_id}/e2ee", headers=bearer(token))
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def live_call(
    browser: Browser,
    http: httpx.AsyncClient,
    server: Server,
    shots: Path | None,
    elsewhere: Mapping[str, Browser] | None = None,
) -> Call:
    """Both coordinators and the Russian principal, brought by clicks into a summit that
    goes live; each in `browser`, or in the one `elsewhere` names for them."""
    where = elsewhere or {}
    summit = await create_summit(http)
    room = f"{server.url}/room/{summit.id}#"
    ru = await open_room(where.get(RU_COORDINATOR, browser), room + summit.ru_token, RU_COORDINATOR)
    us = await open_room(where.get(US_COORDINATOR, browser), room + summit.us_token, US_COORDINATOR)
    call = Call(summit, {RU_COORDINATOR: ru, US_COORDINATOR: us}, shots)
    try:
        await ru.page.locator('#console button[data-action="open_lobby"]').click()
        for coordinator in (ru.page, us.page):
            await expect(coordinator.locator("#phase-banner")).to_have_attribute(
                "data-phase", "lobby"
            )
            await coordinator.locator("#join").click()
        link = await invite(ru.page, RU_PRINCIPAL, "principal")
        call.people[RU_PRINCIPAL] = await open_room(
            where.get(RU_PRINCIPAL, browser), link, RU_PRINCIPAL
        )
        await call[RU_PRINCIPAL].locator("#join").click()
        await ru.page.locator(f'#waiting-list li[data-name="{RU_PRINCIPAL}"] button.admit').click()
        for page in call.pages:
            await expect(page.locator("body")).to_have_attribute("data-screen", "call")
        await both_consent(ru.page, us.page)
        await phase_everywhere(call, "public", "LIVE")
    except BaseException:
        await call.close()
        raise
    return call


async def test_the_cut_seals_every_sender_and_the_private_talks_go_on(
    call: Call, http: httpx.AsyncClient
) -> None:
    names = list(call.people)
    for page in call.pages:
        await expect(page.locator("#e2ee")).to_have_attribute("data-status", "public")
        await expect(page.locator("#e2ee")).to_contain_text("Not end-to-end encrypted")
    for name in names:
        await wait_for_media(call[name], [n for n in names if n != name])
    public_counters = {name: await counters(call[name]) for name in names}
    for name, transforms in public_counters.items():
        sent = [c for c in transforms if c["side"] == "send"]
        assert len(sent) == 2, (name, transforms)  # audio and video, from the first frame
        assert all(c["clear"] > 0 and c["encrypted"] == 0 for c in sent), (name, sent)
    await call.shot(RU_PRINCIPAL, "20-live-not-encrypted", "header")

    await call[US_COORDINATOR].locator('#console button[data-action="cut"]').click()
    await phase_everywhere(call, "private", "PRIVATE")
    for page in call.pages:
        await expect(page.locator("#e2ee")).to_have_attribute("data-status", "on")
        await expect(page.locator("#e2ee-text")).to_have_text("End-to-end encrypted")
    codes = {name: await security_code(call[name]) for name in names}
    assert len(set(codes.values())) == 1, codes
    assert len(next(iter(codes.values())).split()) == 6

    # Everyone still sees and hears everyone, through frames sealed by the others.
    for name in names:
        others = [n for n in names if n != name]
        await media_goes_on(call[name], others)

    summit = (
        await http.get(f"/api/v1/summits/{call.summit.id}", headers=bearer(call.summit.ru_token))
    ).json()
    cut_at = datetime.fromisoformat(summit["private_since"]).timestamp() * 1000
    before = {name: await counters(call[name]) for name in names}
    await asyncio.sleep(1)
    for name in names:
        after = {c["id"]: c for c in await counters(call[name])}
        for earlier in before[name]:
            now = after[earlier["id"]]
            if earlier["side"] == "send":
                # No frame leaves in the clear any more, and the first sealed one came
                # right after the cut.
                assert now["clear"] == earlier["clear"], (name, now)
                assert now["encrypted"] > earlier["encrypted"], (name, now)
                assert now["firstEncryptedAt"] >= cut_at - 50, (name, now, cut_at)
                assert now["firstEncryptedAt"] - cut_at < 2000, (name, now, cut_at)
            elif now["forged"] != 0:
                raise AssertionError(f"{name}: frames of a key it holds do not open: {now}")
            elif now["kind"] == "video" and earlier["decrypted"] > 0:
                assert now["decrypted"] > earlier["decrypted"], (name, now)
                assert now["undecryptable"] == earlier["undecryptable"], (name, now)
    await call.shot(RU_PRINCIPAL, "21-private-encrypted")
    for person in call.people.values():
        assert person.errors == [], person.name


async def test_a_subscriber_attached_to_janus_directly_decodes_nothing(
    private_call: Call, browser: Browser, e2e_server: Server, http: httpx.AsyncClient
) -> None:
    feeds = await feeds_of(http, private_call.summit.id, private_call.summit.ru_token)
    context = await browser.new_context()
    page = await context.new_page()
    await page.goto(f"{e2e_server.url}/api/v1/health")  # a page of that origin, no room code
    curious = CuriousSubscriber(e2e_server, private_call.summit.id)
    participant = private_call[US_COORDINATOR]
    try:
        # The control: the same meters on a participant's page hear the principal's beep
        # and see his camera's picture.
        await participant.evaluate(
            "([toneMeter, pictureMeter]) => { const video = [...document.querySelectorAll("
            "'#stage .tile')].find((t) => t.dataset.name === 'Vladimir Putin')"
            ".querySelector('video'); window.heard = eval(toneMeter)("
            "video.srcObject.getAudioTracks()[0]); window.seen = eval(pictureMeter)(video); }",
            [TONE_METER, PICTURE_METER],
        )
        await curious.watch(page, [feeds[RU_PRINCIPAL]], with_keys=False)
        async with asyncio.timeout(MEDIA_TIMEOUT_MS / 1000):
            while (await curious_stats(page)).get("video", {}).get("framesReceived", 0) < 90:
                await asyncio.sleep(0.5)
        await page.wait_for_timeout(3000)
        seen = await curious_stats(page)
        heard, shown = await participant.evaluate("[window.heard, window.seen]")
    finally:
        await curious.close()
        await context.close()
    video, audio = seen["video"], seen["audio"]
    assert video["framesReceived"] >= 90, seen
    # Some sealed frames pass the decoder as garbage (it parses whatever bits follow the
    # clear header); not one of them shows the camera's picture, which fills 95 % of
    # every frame the participant sees.
    assert video.get("framesDecoded", 0) <= 0.25 * video["framesReceived"], seen
    assert shown["frames"] > 30 and shown["greenest"] > 0.8, shown
    assert seen["picture"]["greenest"] < 0.2, seen["picture"]
    assert audio["packetsReceived"] > 100, seen
    # The meter finds the beep (~25 times the power around it) where it is decrypted,
    # and only noise (~1.3) in what Janus relays.
    assert heard["tone"] > 10, heard
    assert seen["tone"]["audible"] > 0 and seen["tone"]["tone"] < 3, seen["tone"]


async def test_a_browser_without_script_transforms_seals_with_encoded_streams(
    private_call: Call, browser: Browser, http: httpx.AsyncClient
) -> None:
    """The fallback for browsers that only have `createEncodedStreams`: the same worker
    behind the streams of every sender and receiver."""
    name = "Sergey Lavrov"
    link = await invite(private_call[RU_COORDINATOR], name, "delegate")
    lavrov = await open_room(
        browser,
        link,
        name,
        lambda context: context.add_init_script("delete window.RTCRtpScriptTransform;"),
    )
    page = lavrov.page
    try:
        assert await page.evaluate("typeof RTCRtpScriptTransform") == "undefined"
        await let_in(page, private_call[RU_COORDINATOR], name)
        await expect(page.locator("#e2ee")).to_have_attribute(
            "data-status", "on", timeout=QUICK_TIMEOUT_MS
        )
        others = list(private_call.people)
        await wait_for_media(page, others)
        everyone = [*others, name]
        await wait_for_media(
            private_call[US_COORDINATOR], [n for n in everyone if n != US_COORDINATOR]
        )
        transforms = await counters(page)
        sent = [c for c in transforms if c["side"] == "send"]
        received = [c for c in transforms if c["side"] == "receive"]
        assert len(sent) == 2 and all(c["encrypted"] > 0 and c["clear"] == 0 for c in sent), sent
        assert all(c["decrypted"] > 0 for c in received if c["kind"] == "video"), received
        assert lavrov.errors == [], lavrov.errors
        summit = private_call.summit
        held = (await key_exchange(http, summit.id, summit.ru_token))["in_force"]
        await page.locator("#leave").click()
        await expect(page.locator("#lobby-state")).to_have_attribute("data-state", "left")
        async with asyncio.timeout(QUICK_TIMEOUT_MS / 1000):  # he held the key: a new one
            while (await key_exchange(http, summit.id, summit.ru_token))["in_force"] == held:
                await asyncio.sleep(0.1)
    finally:
        await page.context.close()


async def settled(http: httpx.AsyncClient, summit_id: str, token: str) -> dict[str, Any]:
    """The key exchange once every member holds the key in force and none is coming."""
    async with asyncio.timeout(QUICK_TIMEOUT_MS / 1000):
        while True:
            keys = await key_exchange(http, summit_id, token)
            epoch = keys["in_force"]
            if keys["pending"] is None and all(epoch in m["holds"] for m in keys["members"]):
                return keys
            await asyncio.sleep(0.1)


async def test_a_reload_keeps_the_browsers_key_and_the_security_code(
    private_call: Call, http: httpx.AsyncClient
) -> None:
    summit = private_call.summit
    before = await settled(http, summit.id, summit.ru_token)
    codes = {name: await security_code(private_call[name]) for name in private_call.people}
    assert len(set(codes.values())) == 1, codes
    us = private_call[US_COORDINATOR]
    await us.reload()
    await expect(us.locator("body")).to_have_attribute("data-screen", "call")
    await expect(us.locator("#e2ee")).to_have_attribute(
        "data-status", "on", timeout=QUICK_TIMEOUT_MS
    )
    after = await settled(http, summit.id, summit.ru_token)
    keys_of = {m["participant_id"]: m["public_key"] for m in before["members"]}
    assert {m["participant_id"]: m["public_key"] for m in after["members"]} == keys_of
    assert after["in_force"] == before["in_force"]  # the same browser: no new key needed
    assert await security_code(us) == codes[US_COORDINATOR]
    await wait_for_media(us, [RU_COORDINATOR, RU_PRINCIPAL])


async def test_a_removed_participant_decodes_nothing_sent_after_the_rekey(
    private_call: Call, e2e_server: Server, http: httpx.AsyncClient
) -> None:
    summit = private_call.summit
    putin = private_call[RU_PRINCIPAL]
    feeds = await feeds_of(http, summit.id, summit.ru_token)
    epoch = (await settled(http, summit.id, summit.ru_token))["in_force"]
    # He keeps a direct line into Janus, and a copy of his keys, as a leaker would.
    curious = CuriousSubscriber(e2e_server, summit.id)
    try:
        await curious.watch(putin, [feeds[US_COORDINATOR]], with_keys=True)
        async with asyncio.timeout(MEDIA_TIMEOUT_MS / 1000):
            while (await curious_stats(putin)).get("video", {}).get("framesDecoded", 0) < 30:
                await asyncio.sleep(0.3)  # his copy of the key opens the frames

        ru = private_call[RU_COORDINATOR]
        remove = ru.locator(f'#own-roster li[data-name="{RU_PRINCIPAL}"] button.remove')
        await remove.click()
        await expect(remove).to_have_text("Confirm")
        await remove.click()
        async with asyncio.timeout(QUICK_TIMEOUT_MS / 1000):
            while (await key_exchange(http, summit.id, summit.ru_token))["in_force"] == epoch:
                await asyncio.sleep(0.05)
        await asyncio.sleep(1)  # frames sealed with the old key drain
        first = await curious_stats(putin), await curious_counters(putin)
        await asyncio.sleep(3)
        later = await curious_stats(putin), await curious_counters(putin)
    finally:
        await curious.close()
    # Packets keep coming, sealed with a key his copy does not hold: nothing decodes.
    assert later[0]["video"]["packetsReceived"] > first[0]["video"]["packetsReceived"] + 30
    assert later[0]["video"]["framesDecoded"] == first[0]["video"]["framesDecoded"], later
    assert later[1]["video"]["decrypted"] == first[1]["video"]["decrypted"], later
    assert later[1]["video"]["undecryptable"] > first[1]["video"]["undecryptable"] + 30, later
    assert later[1]["video"]["epoch"] == epoch, later
    trail = (
        await http.get(f"/api/v1/summits/{summit.id}/audit", headers=bearer(OPERATOR_TOKEN))
    ).json()["trail"]
    made = [r for r in trail if r["action"] == "e2ee_key_made"][-1]
    assert made["details"]["epoch"] > epoch
    removed_id = next(
        r["details"]["participant"] for r in trail if r["action"] == "participant_removed"
    )
    assert removed_id not in made["details"]["recipients"]
    # The two who stay still see each other, under the new key.
    await wait_for_media(private_call[US_COORDINATOR], [RU_COORDINATOR])
