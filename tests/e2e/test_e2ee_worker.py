"""The frame sealer of the room page (static/e2ee-worker.js) in Chromium, fed frames
directly: what a media server could do with sealed frames it relays (play them back,
change their numbers, show them under another participant's name, play them back after
the receiver reloaded) gets it nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from playwright.async_api import Browser, Page

from tests.servers import Server

FRAMES = 140  # more than the replay window of 128
SENDER = "0123456789abcdef"
SOMEONE_ELSE = "fedcba9876543210"

# Page-side helpers: `window.sealer(raw)` starts a worker as the room page does, for a
# summit and with the epoch-1 media key `raw`, on the createEncodedStreams path; its
# pipes carry audio frames whose body holds their index.
HELPERS = """
() => {
  window.sealer = (raw, me) => {
    const worker = new Worker("/static/e2ee-worker.js");
    worker.postMessage({ type: "summit", id: "worker-test", me });
    const ready = crypto.subtle
      .importKey("raw", new Uint8Array(raw), "HKDF", false, ["deriveKey"])
      .then((key) => {
        worker.postMessage({ type: "key", epoch: 1, key });
        worker.postMessage({ type: "mode", private: true, sendEpoch: 1 });
      });
    const pipe = (side, id) => {
      const input = new TransformStream();
      const output = new TransformStream();
      worker.postMessage(
        { type: "streams", readable: input.readable, writable: output.writable,
          options: { side, kind: "audio", id } },
        [input.readable, output.writable]);
      const opened = [];
      const reader = output.readable.getReader();
      return { writer: input.writable.getWriter(), reader, opened };
    };
    const counters = () => new Promise((resolve) => {
      const ask = Math.random();
      const answer = ({ data }) => {
        if (data.ask !== ask) return;
        worker.removeEventListener("message", answer);
        resolve(Object.fromEntries(data.counters.map((c) => [c.id, c])));
      };
      worker.addEventListener("message", answer);
      worker.postMessage({ type: "stats", ask });
    });
    const seal = async (count) => {
      await ready;
      const sender = pipe("send", "send");
      const sealed = [];
      for (let i = 0; i < count; i += 1) {
        await sender.writer.write({ data: new Uint8Array([0xfc, i >> 8, i & 0xff, 7, 7]).buffer });
        sealed.push(new Uint8Array((await sender.reader.read()).value.data));
      }
      return sealed;
    };
    /** Feeds `frames` to a new receiver and waits until it dealt with each. */
    const receive = async (id, frames, expectSender) => {
      await ready;
      if (expectSender) worker.postMessage({ type: "expect", id, sender: expectSender });
      const receiver = pipe("receive", id);
      (async () => {
        for (;;) {
          const { value, done } = await receiver.reader.read();
          if (done) return;
          const body = new Uint8Array(value.data);
          receiver.opened.push({ index: (body[1] << 8) | body[2], length: body.length });
        }
      })();
      for (const data of frames) await receiver.writer.write({ data: data.slice().buffer });
      for (;;) {
        const r = (await counters())[id];
        const dealt = r && r.decrypted + r.replayed + r.undecryptable + r.forged + r.misattributed;
        if (dealt === frames.length) return { counters: r, opened: receiver.opened };
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    };
    return { worker, seal, receive, counters };
  };
  /** The frame numbers this browser keeps as taken for the test summit, by stream. */
  window.heard = () => new Promise((resolve, reject) => {
    const request = indexedDB.open("summitry-e2ee", 2);
    request.onerror = () => reject(request.error);
    request.onsuccess = () => {
      const db = request.result;
      if (!db.objectStoreNames.contains("heard")) return resolve([]);
      const get = db.transaction("heard").objectStore("heard").get("worker-test");
      get.onsuccess = () => resolve(get.result || []);
      get.onerror = () => reject(get.error);
      db.close();
    };
  });
}
"""

REPLAY = """
async ([count, deliver, replay, sender]) => {
  const raw = [...crypto.getRandomValues(new Uint8Array(32))];
  const { worker, seal, receive, counters } = window.sealer(raw, sender);
  const sealed = await seal(count);
  // The last frame again, its frame number (the trailer's bytes 21-24) raised by one.
  const renumbered = sealed[count - 1].slice();
  renumbered[renumbered.length - 8 + 3] += 1;
  const frames = [...deliver, ...replay].map((i) => sealed[i]);
  frames.push(renumbered);
  const result = await receive("receive", frames);
  const sent = (await counters()).send;
  worker.terminate();
  return { ...result, sent, sealedLength: sealed[0].length };
}
"""

MISATTRIBUTED = """
async ([count, sender, shown]) => {
  const raw = [...crypto.getRandomValues(new Uint8Array(32))];
  const { worker, seal, receive } = window.sealer(raw, sender);
  const sealed = await seal(count);
  const elsewhere = await receive("someone-else", sealed, shown);
  const right = await receive("right-tile", sealed, sender);
  worker.terminate();
  return { elsewhere, right };
}
"""

AFTER_RELOAD = """
async ([count, sender]) => {
  const raw = [...crypto.getRandomValues(new Uint8Array(32))];
  const before = window.sealer(raw, sender);
  const sealed = await before.seal(count);
  const first = await before.receive("receive", sealed);
  while ((await window.heard()).length === 0) {  // kept within a second
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  before.worker.terminate();
  const after = window.sealer(raw, sender);  // the page reloaded: a new worker
  const again = await after.receive("receive", sealed);
  after.worker.terminate();
  return { first, again, heard: await window.heard() };
}
"""


@pytest.fixture
async def page(browser: Browser, e2e_server: Server) -> AsyncIterator[Page]:
    context = await browser.new_context()
    page = await context.new_page()
    await page.goto(f"{e2e_server.url}/api/v1/health")  # a page of the summit's origin
    await page.evaluate(HELPERS)
    try:
        yield page
    finally:
        await context.close()


async def test_a_relayed_frame_opens_once_and_a_renumbered_one_never(page: Page) -> None:
    # Every frame once, two of them swapped on the way (within the window)...
    deliver = [0, 2, 1, *range(3, FRAMES)]
    # ...then played back: one from far back (beyond the window), two recent ones.
    replay = [1, FRAMES - 1, FRAMES - 2]
    result: dict[str, Any] = await page.evaluate(REPLAY, [FRAMES, deliver, replay, SENDER])
    received = result["counters"]
    assert result["sent"]["encrypted"] == FRAMES
    # 1 clear byte, 4 sealed + 16 of GCM tag, 32 of trailer (IV, sender, stream, number,
    # epoch, marker)
    assert result["sealedLength"] == 1 + 4 + 16 + 32
    assert [frame["index"] for frame in result["opened"]] == deliver
    assert {frame["length"] for frame in result["opened"]} == {5}
    assert received["decrypted"] == FRAMES
    assert received["replayed"] == len(replay)
    assert received["forged"] == 1  # the renumbered frame: its number is authenticated
    assert received["undecryptable"] == 0


async def test_frames_shown_under_another_participants_name_never_play(page: Page) -> None:
    result: dict[str, Any] = await page.evaluate(MISATTRIBUTED, [20, SENDER, SOMEONE_ELSE])
    elsewhere, right = result["elsewhere"], result["right"]
    assert elsewhere["counters"]["misattributed"] == 20
    assert elsewhere["opened"] == [] and elsewhere["counters"]["decrypted"] == 0
    assert right["counters"]["decrypted"] == 20
    assert [frame["index"] for frame in right["opened"]] == list(range(20))


async def test_frames_taken_before_a_reload_stay_taken(page: Page) -> None:
    result: dict[str, Any] = await page.evaluate(AFTER_RELOAD, [30, SENDER])
    assert result["first"]["counters"]["decrypted"] == 30
    # The same frames played back to the reloaded page: none of them opens again.
    assert result["again"]["counters"]["replayed"] == 30, result["again"]
    assert result["again"]["opened"] == []
    [(stream, highest)] = result["heard"]
    assert stream.startswith(f"{SENDER} ") and highest == 29
