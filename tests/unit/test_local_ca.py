"""The demo's certificate authority: made once, a server certificate for the names asked,
made again when those names change or it nears its end."""

from __future__ import annotations

import ipaddress
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509

from summitry.security.local_ca import RENEW_BEFORE, SERVER_LIFETIME, local_tls

NOW = datetime(2026, 12, 5, 15, 0, tzinfo=UTC)


def certificate(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def names(path: Path) -> set[str]:
    carried = certificate(path).extensions.get_extension_for_class(x509.SubjectAlternativeName)
    return {str(name.value) for name in carried.value}


def test_the_server_certificate_is_signed_by_the_ca_for_the_names_asked(tmp_path: Path) -> None:
    tls = local_tls(tmp_path / "tls", ["198.18.0.1", "summit.example", "localhost"], NOW)
    ca, server = certificate(tls.ca), certificate(tls.cert)
    server.verify_directly_issued_by(ca)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert not server.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert names(tls.cert) == {"198.18.0.1", "summit.example", "localhost"}
    carried = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert carried.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("198.18.0.1")]
    assert server.not_valid_after_utc - NOW <= SERVER_LIFETIME
    for secret in (tls.key, tmp_path / "tls" / "ca.key"):
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600


def test_the_ca_stays_and_the_certificate_is_made_again_only_when_needed(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "tls"
    first = local_tls(folder, ["198.18.0.1"], NOW)
    ca, issued = first.ca.read_bytes(), first.cert.read_bytes()
    again = local_tls(folder, ["198.18.0.1"], NOW + timedelta(days=1))
    assert (again.ca.read_bytes(), again.cert.read_bytes()) == (ca, issued)
    moved = local_tls(folder, ["198.18.0.7"], NOW + timedelta(days=2))
    assert moved.ca.read_bytes() == ca and names(moved.cert) == {"198.18.0.7"}
    late = NOW + SERVER_LIFETIME - RENEW_BEFORE + timedelta(days=1)
    renewed = local_tls(folder, ["198.18.0.7"], late)
    assert certificate(renewed.cert).not_valid_after_utc > late + RENEW_BEFORE
    certificate(renewed.cert).verify_directly_issued_by(certificate(renewed.ca))
