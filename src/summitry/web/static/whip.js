// WHIP and WHEP (RFC 9725 and its twin for watching): this browser offers, with every ICE
// candidate in the offer, and the server answers with the SDP and the session's address.
// The room's Publisher publishes with it, the public page's player watches with it.

const GATHER_TIMEOUT_MS = 4000;

/** Resolves once ICE gathering is complete, so the SDP carries every candidate. */
function gathered(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      if (pc.iceGatheringState !== "complete") return;
      pc.removeEventListener("icegatheringstatechange", done);
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      pc.removeEventListener("icegatheringstatechange", done);
      resolve(); // send what we have; host candidates come first
    }, GATHER_TIMEOUT_MS);
    pc.addEventListener("icegatheringstatechange", done);
  });
}

/**
 * Offers what `pc` carries through `post(sdp)` (a request resolving to the server's
 * Response), keeps the session's address in `session.location` (the Location header, made
 * absolute: the address to DELETE), and applies the answer unless `session.closed` by then.
 */
export async function negotiate(session, pc, post) {
  await pc.setLocalDescription(await pc.createOffer());
  await gathered(pc);
  const response = await post(pc.localDescription.sdp);
  const location = response.headers.get("Location");
  session.location = location ? new URL(location, response.url).href : null;
  const answer = await response.text();
  if (!session.closed) await pc.setRemoteDescription({ type: "answer", sdp: answer });
}
