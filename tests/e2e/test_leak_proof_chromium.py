"""The leak proof with Chromium principals: each page draws its frames on a canvas,
stamped with the phase it believes in and a sequence number, and plays the phase tone;
it learns of the cut from the summit's event stream like the room page does."""

from __future__ import annotations

import httpx
from playwright.async_api import Browser, Page

from tests.media.conftest import summit_in_lobby
from tests.media.test_leak_proof import prove_no_leak
from tests.servers import Server

# The same picture and sound as tests/media/stamps.py draws for aiortc principals.
STAMPING_PRINCIPAL = """
async ([summit, token]) => {
  const canvas = document.createElement("canvas");
  canvas.width = 320;
  canvas.height = 240;
  const g = canvas.getContext("2d");
  const log = { phase: "public", sequence: 0, lastPublic: 0, private: 0 };
  window.stampLog = log;
  const audio = new AudioContext();
  const tone = audio.createOscillator();
  const loudness = audio.createGain();
  loudness.gain.value = 0.3;
  tone.frequency.value = 440;
  const out = audio.createMediaStreamDestination();
  tone.connect(loudness).connect(out);
  tone.start();
  const { ticket } = await (await fetch(`/api/v1/summits/${summit}/events/tickets`, {
    method: "POST", headers: { Authorization: `Bearer ${token}` } })).json();
  const events = new EventSource(`/api/v1/summits/${summit}/events?ticket=${ticket}`);
  events.addEventListener("phase", (e) => {
    if (JSON.parse(e.data).phase === "private") {
      log.phase = "private";
      tone.frequency.value = 1000;
    }
  });
  setInterval(() => {
    log.sequence = (log.sequence + 1) % 65536;
    if (log.phase === "public") log.lastPublic = log.sequence; else log.private += 1;
    g.fillStyle = log.phase === "public" ? "rgb(30,170,60)" : "rgb(200,30,30)";
    g.fillRect(0, 0, 320, 240);
    for (let bit = 0; bit < 16; bit += 1) {
      g.fillStyle = (log.sequence >> bit) & 1 ? "#fff" : "#000";
      g.fillRect(bit * 20, 0, 20, 20);
    }
  }, 1000 / 30);
  const stream = canvas.captureStream(30);
  stream.addTrack(out.stream.getAudioTracks()[0]);
  const pc = new RTCPeerConnection();
  for (const track of stream.getTracks()) pc.addTransceiver(track, { direction: "sendonly" });
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((resolve) => {
    if (pc.iceGatheringState === "complete") return resolve();
    pc.addEventListener("icegatheringstatechange", () => {
      if (pc.iceGatheringState === "complete") resolve();
    });
  });
  const response = await fetch(`/api/v1/summits/${summit}/whip`, {
    method: "POST", body: pc.localDescription.sdp,
    headers: { "Content-Type": "application/sdp", Authorization: `Bearer ${token}` },
  });
  if (response.status !== 201) throw new Error(`WHIP ${response.status}`);
  await pc.setRemoteDescription({ type: "answer", sdp: await response.text() });
}
"""


class ChromiumPrincipal:
    def __init__(self, browser: Browser, server: Server, summit_id: str, token: str) -> None:
        self.browser, self.server = browser, server
        self.summit_id, self.token = summit_id, token
        self.page: Page | None = None

    async def publish(self) -> None:
        context = await self.browser.new_context(bypass_csp=True)
        self.page = await context.new_page()
        await self.page.goto(f"{self.server.url}/api/v1/health")
        await self.page.evaluate(STAMPING_PRINCIPAL, [self.summit_id, self.token])

    def learn_private(self) -> None:
        """The page follows the summit's events itself."""

    async def made(self) -> tuple[int, int]:
        assert self.page is not None
        log = await self.page.evaluate("() => window.stampLog")
        return int(log["lastPublic"]), int(log["private"])

    async def close(self) -> None:
        if self.page is not None:
            await self.page.context.close()


async def test_nothing_private_leaves_with_chromium_principals(
    browser: Browser, e2e_server: Server, http: httpx.AsyncClient
) -> None:
    room = await summit_in_lobby(http)
    report = await prove_no_leak(
        http,
        room,
        [
            ChromiumPrincipal(browser, e2e_server, room.summit.id, token)
            for token in (room.ru_principal, room.us_principal)
        ],
    )
    assert report["cut_latency_ms"] < 1000
