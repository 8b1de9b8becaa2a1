"""The frame sealer of the room page (static/e2ee-worker.js) in Chromium, fed frames
directly: what a media server could do with sealed frames it relays (play them back,
change their numbers) gets it nothing."""

from __future__ import annotations

from typing import Any

from playwright.async_api import Browser

from tests.servers import Server

FRAMES = 140  # more than the replay window of 128

# One sender and one receiver in one worker, as on a room page, on the
# createEncodedStreams path: audio frames whose body carries their index.
REPLAY = """
async ([count, deliver, replay]) => {
  const worker = new Worker("/static/e2ee-worker.js");
  const key = await crypto.subtle.generateKey(
    { name: "AES-GCM", length: 128 }, false, ["encrypt", "decrypt"]);
  worker.postMessage({ type: "key", epoch: 1, key });
  worker.postMessage({ type: "mode", private: true, sendEpoch: 1 });
  const pipe = (side) => {
    const input = new TransformStream();
    const output = new TransformStream();
    worker.postMessage(
      { type: "streams", readable: input.readable, writable: output.writable,
        options: { side, kind: "audio", id: side } },
      [input.readable, output.writable]);
    return { writer: input.writable.getWriter(), reader: output.readable.getReader() };
  };
  const counters = () => new Promise((resolve) => {
    const ask = Math.random();
    const answer = ({ data }) => {
      if (data.ask !== ask) return;
      worker.removeEventListener("message", answer);
      resolve(Object.fromEntries(data.counters.map((c) => [c.side, c])));
    };
    worker.addEventListener("message", answer);
    worker.postMessage({ type: "stats", ask });
  });
  const sender = pipe("send");
  const receiver = pipe("receive");
  const sealed = [];
  for (let i = 0; i < count; i += 1) {
    await sender.writer.write({ data: new Uint8Array([0xfc, i >> 8, i & 0xff, 7, 7]).buffer });
    sealed.push(new Uint8Array((await sender.reader.read()).value.data));
  }
  // The last frame again, its frame number (the trailer's bytes 17-20) raised by one.
  const renumbered = sealed[count - 1].slice();
  const at = renumbered.length - 8;
  renumbered[at + 3] += 1;
  const frames = [...deliver, ...replay].map((i) => sealed[i].slice().buffer);
  frames.push(renumbered.buffer);
  const opened = [];
  (async () => {
    for (;;) {
      const { value, done } = await receiver.reader.read();
      if (done) return;
      const body = new Uint8Array(value.data);
      opened.push({ index: (body[1] << 8) | body[2], length: body.length });
    }
  })();
  for (const data of frames) await receiver.writer.write({ data });
  let seen;
  for (let tries = 0; tries < 100; tries += 1) {
    seen = await counters();
    const r = seen.receive;
    if (r && r.decrypted + r.replayed + r.undecryptable + r.forged === frames.length) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  worker.terminate();
  return { counters: seen, opened, sealedLength: sealed[0].length };
}
"""


async def test_a_relayed_frame_opens_once_and_a_renumbered_one_never(
    browser: Browser, e2e_server: Server
) -> None:
    context = await browser.new_context()
    page = await context.new_page()
    await page.goto(f"{e2e_server.url}/api/v1/health")  # a page of the summit's origin
    # Every frame once, two of them swapped on the way (within the window)...
    deliver = [0, 2, 1, *range(3, FRAMES)]
    # ...then played back: one from far back (beyond the window), two recent ones.
    replay = [1, FRAMES - 1, FRAMES - 2]
    try:
        result: dict[str, Any] = await page.evaluate(REPLAY, [FRAMES, deliver, replay])
    finally:
        await context.close()
    sent, received = result["counters"]["send"], result["counters"]["receive"]
    assert sent["encrypted"] == FRAMES
    # 1 clear byte, 4 sealed + 16 of GCM tag, 24 of trailer (IV, stream, number, epoch, marker)
    assert result["sealedLength"] == 1 + 4 + 16 + 24
    assert [frame["index"] for frame in result["opened"]] == deliver
    assert {frame["length"] for frame in result["opened"]} == {5}
    assert received["decrypted"] == FRAMES
    assert received["replayed"] == len(replay)
    assert received["forged"] == 1  # the renumbered frame: its number is authenticated
    assert received["undecryptable"] == 0
