"""Deployment settings read from the environment: what is wrong is named, and what is
right reaches Janus's configuration."""

from __future__ import annotations

from ipaddress import ip_network
from pathlib import Path

import pytest

from summitry.config import Config, ConfigError
from summitry.media.supervisor import JanusSettings, write_config


def test_network_settings_are_read(tmp_path: Path) -> None:
    config = Config.from_environ(
        {
            "SUMMITRY_DENIED_PEER_NETWORKS": "10.20.0.0/16, fd00:20::/32",
            "SUMMITRY_TRUSTED_PROXIES": "127.0.0.1,::1",
            "SUMMITRY_PUBLIC_ADDRESS": "203.0.113.10",
        },
        data_dir=tmp_path,
    )
    assert config.denied_peer_networks == (ip_network("10.20.0.0/16"), ip_network("fd00:20::/32"))
    assert config.trusted_proxies == ("127.0.0.1", "::1")
    assert config.public_address == "203.0.113.10"
    assert not config.tls


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"SUMMITRY_DENIED_PEER_NETWORKS": "10.20.0.0/33"}, "SUMMITRY_DENIED_PEER_NETWORKS"),
        ({"SUMMITRY_PUBLIC_ADDRESS": "summit.example.org"}, "must be an IP address"),
        ({"SUMMITRY_TLS_KEY": "/etc/key.pem"}, "needs both"),
    ],
)
def test_wrong_network_settings_are_named(
    environ: dict[str, str], message: str, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match=message):
        Config.from_environ(environ, data_dir=tmp_path)


def test_janus_offers_the_public_address_behind_a_nat(tmp_path: Path) -> None:
    binary = tmp_path / "bin" / "janus"
    settings = JanusSettings(binary, tmp_path / "janus", "198.18.0.1", "203.0.113.10")
    write_config(settings, 8088, 7088)
    janus = (tmp_path / "janus" / "janus.jcfg").read_text()
    assert 'ice_enforce_list = "198.18.0.1"' in janus
    assert 'nat_1_1_mapping = "203.0.113.10"' in janus
    write_config(JanusSettings(binary, tmp_path / "plain"), 8088, 7088)
    assert "nat_1_1_mapping" not in (tmp_path / "plain" / "janus.jcfg").read_text()


def test_turn_is_offered_over_tls_when_there_is_a_certificate(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_text("certificate")
    key.write_text("key")
    plain = Config.from_environ({"SUMMITRY_MEDIA_ADDRESS": "198.18.0.1"}, data_dir=tmp_path)
    assert plain.turn == "local"
    assert plain.turn_urls == (
        "turn:198.18.0.1:3478?transport=udp",
        "turn:198.18.0.1:3478?transport=tcp",
    )
    assert plain.turn_tls_cert is None
    secure = Config.from_environ(
        {
            "SUMMITRY_MEDIA_ADDRESS": "198.18.0.1",
            "SUMMITRY_TLS_CERT": str(cert),
            "SUMMITRY_TLS_KEY": str(key),
            "SUMMITRY_TURN_TLS_PORT": "443",
            "SUMMITRY_TURN_HOST": "turn.summit.example",
        },
        data_dir=tmp_path,
    )
    assert secure.turn_urls[-1] == "turns:turn.summit.example:443?transport=tcp"
    assert (secure.turn_tls_cert, secure.turn_tls_key) == (cert.resolve(), key.resolve())
    with pytest.raises(ConfigError, match="SUMMITRY_TURN_TLS_KEY"):
        Config.from_environ({"SUMMITRY_TURN_TLS_CERT": str(cert)}, data_dir=tmp_path)
