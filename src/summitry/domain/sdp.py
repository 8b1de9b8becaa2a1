"""Guards on session descriptions before they reach the media server."""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network

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


def is_simulcast(sdp: str) -> bool:
    """Whether an offer sends its video in several layers (RFC 8853)."""
    return any(line.startswith("a=simulcast:send") for line in sdp.splitlines())


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


Network = IPv4Network | IPv6Network

# Addresses no client has a business naming as its own: the media server's loopback, link-
# local neighbours, "this host", multicast and broadcast.
NEVER_PEERS: tuple[Network, ...] = tuple(
    ip_network(network)
    for network in (
        "127.0.0.0/8",
        "::1/128",
        "169.254.0.0/16",
        "fe80::/10",
        "0.0.0.0/8",
        "::/128",
        "224.0.0.0/4",
        "ff00::/8",
        "255.255.255.255/32",
    )
)


@dataclass(frozen=True)
class PeerPolicy:
    """Which addresses a client's ICE candidates may name. The media server sends
    connectivity checks to every candidate it is given, so a caller could aim it at the
    server's own loopback or internal networks; those candidates are dropped before they
    reach it. `denied`: the internal networks the operator lists, beyond NEVER_PEERS."""

    denied: tuple[Network, ...] = ()

    def admits(self, address: str) -> bool:
        """Whether a candidate may name `address`: an IP outside the denied networks, or
        a browser's mDNS name (*.local), which stands for a host on the caller's LAN."""
        try:
            ip = ip_address(address)
        except ValueError:
            return address.endswith(".local")
        if ip.version == 6 and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return not any(ip in network for network in (*NEVER_PEERS, *self.denied))

    def description(self, sdp: str) -> tuple[str, list[str]]:
        """`sdp` without the candidates naming addresses it may not, and those addresses."""
        kept, dropped = [], []
        for line in sdp.split("\n"):
            address = candidate_address(line.rstrip("\r").removeprefix("a="))
            if address is not None and not self.admits(address):
                dropped.append(address)
            else:
                kept.append(line)
        return "\n".join(kept), dropped

    def candidates(
        self, candidates: list[dict[str, object]]
    ) -> tuple[list[dict[str, object]], list[str]]:
        """Trickled candidates without those naming addresses it may not, and those."""
        kept, dropped = [], []
        for candidate in candidates:
            address = candidate_address(str(candidate.get("candidate", "")))
            if address is not None and not self.admits(address):
                dropped.append(address)
            else:
                kept.append(candidate)
        return kept, dropped


def candidate_address(attribute: str) -> str | None:
    """The connection address of a `candidate:` attribute (RFC 8839: foundation,
    component, transport, priority, address, port, typ ...); None for anything else."""
    if not attribute.startswith("candidate:"):
        return None
    fields = attribute.split()
    return fields[4] if len(fields) > 4 else None
