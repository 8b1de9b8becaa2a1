"""Guards on session descriptions before they reach the media server."""

from __future__ import annotations

from summitry.domain.errors import BadDescription

MAX_SDP_BYTES = 32 * 1024
MAX_MEDIA_SECTIONS = 16
MAX_LINE = 4096


def check_description(sdp: str, kind: str = "offer") -> str:
    """`sdp` if it is a plausible description carrying audio or video, or InvalidInput
    saying what is wrong with it."""
    if len(sdp.encode()) > MAX_SDP_BYTES:
        raise BadDescription(f"the SDP {kind} is larger than {MAX_SDP_BYTES} bytes", field="sdp")
    lines = [line.rstrip("\r") for line in sdp.split("\n") if line.strip()]
    if not lines or lines[0] != "v=0":
        raise BadDescription(f"the body is not an SDP {kind} (it must start with v=0)", field="sdp")
    for line in lines:
        if len(line) > MAX_LINE or len(line) < 2 or line[1] != "=":
            raise BadDescription(f"the SDP {kind} has a malformed line: {line[:60]!r}", field="sdp")
    media = [line for line in lines if line.startswith("m=")]
    if len(media) > MAX_MEDIA_SECTIONS:
        raise BadDescription(
            f"the SDP {kind} has {len(media)} media sections (at most {MAX_MEDIA_SECTIONS})",
            field="sdp",
        )
    usable = [
        line
        for line in media
        if line.split(" ")[0] in ("m=audio", "m=video")
        and len(line.split(" ")) >= 4
        and line.split(" ")[1] != "0"
    ]
    if not usable:
        raise BadDescription(f"the SDP {kind} carries no audio or video", field="sdp")
    if not any(line.startswith("a=fingerprint:") for line in lines):
        raise BadDescription(f"the SDP {kind} has no DTLS fingerprint", field="sdp")
    return sdp if sdp.endswith("\n") else sdp + "\r\n"


def has_candidates(sdp: str) -> bool:
    return "a=candidate:" in sdp or "a=end-of-candidates" in sdp


def trickle_fragment(fragment: str) -> tuple[list[dict[str, object]], bool]:
    """The candidates of an application/trickle-ice-sdpfrag body (RFC 8840), each with
    its mid, and whether it says the gathering is complete."""
    candidates: list[dict[str, object]] = []
    mid: str | None = None
    completed = False
    for raw in fragment.splitlines():
        line = raw.strip()
        if line.startswith("a=mid:"):
            mid = line[len("a=mid:") :]
        elif line.startswith("a=candidate:"):
            if mid is None:
                raise BadDescription("a candidate comes before any a=mid line", field="sdp")
            candidates.append({"candidate": line[2:], "sdpMid": mid})
        elif line == "a=end-of-candidates":
            completed = True
    return candidates, completed
