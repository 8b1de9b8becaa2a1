"""A certificate authority made on this machine, for the demo reached from another address:
browsers give camera and microphone only to secure pages, and a CA of one's own that each
browser is told to trust once is better than telling people to ignore certificate errors.
The CA is made once per data directory; the server's certificate is made again when the
names it must carry change or it nears its end."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_LIFETIME = timedelta(days=3650)
SERVER_LIFETIME = timedelta(days=397)  # the longest browsers accept
RENEW_BEFORE = timedelta(days=30)


@dataclass(frozen=True)
class LocalTls:
    ca: Path  # what each browser is told to trust
    cert: Path
    key: Path


def local_tls(folder: Path, names: list[str], now: datetime | None = None) -> LocalTls:
    """The CA in `folder` (made on first use), and a server certificate for `names`
    (host names or addresses) signed by it."""
    now = now or datetime.now(UTC)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    tls = LocalTls(folder / "ca.pem", folder / "server.pem", folder / "server.key")
    ca_key = _key(folder / "ca.key")
    if not tls.ca.exists():
        tls.ca.write_bytes(_ca_certificate(ca_key, now).public_bytes(serialization.Encoding.PEM))
    ca = x509.load_pem_x509_certificate(tls.ca.read_bytes())
    if not _fits(tls.cert, ca, names, now):
        server_key = _key(tls.key)
        certificate = _server_certificate(server_key, ca, ca_key, names, now)
        tls.cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return tls


def _key(path: Path) -> ec.EllipticCurvePrivateKey:
    """The P-256 key kept in `path`, made on first use and readable by its owner only."""
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return key
    key = ec.generate_private_key(ec.SECP256R1())
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    return key


def _alternative_names(names: list[str]) -> list[x509.GeneralName]:
    result: list[x509.GeneralName] = []
    for name in dict.fromkeys(names):
        try:
            result.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            result.append(x509.DNSName(name))
    return result


def _ca_certificate(key: ec.EllipticCurvePrivateKey, now: datetime) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"summitry local CA {now:%Y-%m-%d}")])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + CA_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


def _server_certificate(
    key: ec.EllipticCurvePrivateKey,
    ca: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    names: list[str],
    now: datetime,
) -> x509.Certificate:
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(min(now + SERVER_LIFETIME, ca.not_valid_after_utc))
        .add_extension(x509.SubjectAlternativeName(_alternative_names(names)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )


def _fits(path: Path, ca: x509.Certificate, names: list[str], now: datetime) -> bool:
    """Whether the certificate in `path` was signed by `ca`, carries exactly `names` and
    has a while to go."""
    if not path.exists():
        return False
    certificate = x509.load_pem_x509_certificate(path.read_bytes())
    try:
        certificate.verify_directly_issued_by(ca)
        carried = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except (InvalidSignature, ValueError, TypeError, x509.ExtensionNotFound):
        return False
    return (
        set(carried.value) == set(_alternative_names(names))
        and certificate.not_valid_after_utc - now > RENEW_BEFORE
    )
