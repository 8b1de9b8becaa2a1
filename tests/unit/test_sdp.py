"""Which ICE candidates of a client reach the media server: never one naming its own
loopback, a link-local neighbour, "this host" or multicast, nor the internal networks the
operator lists."""

from __future__ import annotations

from ipaddress import ip_network

import pytest

from summitry.domain.sdp import PeerPolicy, candidate_address

INTERNAL = PeerPolicy((ip_network("10.20.0.0/16"), ip_network("fd00:20::/32")))


def line(address: str, kind: str = "host") -> str:
    return f"a=candidate:1 1 udp 2122260223 {address} 50000 typ {kind}"


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.8.9.10",
        "::1",
        "169.254.169.254",  # a cloud's metadata service
        "fe80::1",
        "0.0.0.0",
        "::",
        "224.0.0.251",
        "ff02::fb",
        "255.255.255.255",
        "::ffff:127.0.0.1",  # loopback spelt as IPv6
        "10.20.1.2",
        "fd00:20::5",
        "internal.example.org",  # a name the media server would resolve for itself
    ],
)
def test_candidates_naming_what_the_server_must_not_reach_are_dropped(address: str) -> None:
    assert not INTERNAL.admits(address)
    sdp = f"v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n{line(address)}\r\n{line('203.0.113.7')}\r\n"
    kept, dropped = INTERNAL.description(sdp)
    assert dropped == [address]
    assert address not in kept and "203.0.113.7" in kept


@pytest.mark.parametrize(
    "address",
    ["203.0.113.7", "198.18.0.2", "192.168.1.20", "10.21.0.1", "2001:db8::7", "c0ffee.local"],
)
def test_candidates_of_real_callers_pass(address: str) -> None:
    assert INTERNAL.admits(address)
    kept, dropped = INTERNAL.description(f"v=0\r\n{line(address, 'srflx')}\r\n")
    assert dropped == [] and address in kept


def test_trickled_candidates_are_filtered_alike() -> None:
    trickled: list[dict[str, object]] = [
        {"candidate": line("127.0.0.1").removeprefix("a="), "sdpMid": "0"},
        {"candidate": line("203.0.113.7").removeprefix("a="), "sdpMid": "0"},
    ]
    kept, dropped = PeerPolicy().candidates(trickled)
    assert dropped == ["127.0.0.1"] and kept == trickled[1:]


def test_only_candidate_lines_are_read() -> None:
    assert candidate_address("candidate:1 1 udp 1 198.18.0.2 9 typ host") == "198.18.0.2"
    assert candidate_address("rtcp-mux") is None
    assert candidate_address("candidate:short") is None
