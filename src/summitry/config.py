"""Configuration, read from an environment passed in (tests pass a dict)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from ipaddress import ip_address, ip_network
from pathlib import Path

from summitry.domain.sdp import Network
from summitry.security.audit import SEED_BYTES, from_b64url


def sqlite_url(data_dir: Path) -> str:
    return f"sqlite+aiosqlite:///{data_dir / 'summitry.db'}"


@dataclass(frozen=True)
class Config:
    data_dir: Path
    database_url: str
    public_url: str
    grant_secret: bytes
    operator_token: str
    audit_seed: bytes
    media: str = "local"
    media_address: str | None = None
    janus_url: str | None = None
    janus_api_secret: str = ""
    janus_admin_key: str = ""
    # HTTPS served by summitry itself: a certificate (chain) and its key, PEM.
    tls_cert: Path | None = None
    tls_key: Path | None = None
    # Reverse proxies whose X-Forwarded-For and X-Forwarded-Proto are believed; nobody's
    # by default, so nobody on the machine can pass for another address.
    trusted_proxies: tuple[str, ...] = ()
    # The server's internal networks: ICE candidates naming them are dropped (loopback,
    # link-local and multicast always are), so nobody can aim Janus at them.
    denied_peer_networks: tuple[Network, ...] = ()
    # The address the world reaches Janus at, when it is behind a 1:1 NAT.
    public_address: str | None = None
    # TURN: `local` (our own coturn, with local media), `external`, or `off`; the URLs
    # handed to callers, and the secret their credentials are derived from.
    turn: str = "off"
    turn_port: int = 3478
    turn_urls: tuple[str, ...] = ()
    turn_secret: str = ""
    # TURN over TLS (`turns:`) for networks that let only TCP 443 out: the port, and the
    # certificate coturn presents (summitry's own unless SUMMITRY_TURN_TLS_CERT/KEY).
    turn_tls_port: int = 5349
    turn_tls_cert: Path | None = None
    turn_tls_key: Path | None = None
    # A WHEP viewer whose connection is not up this long after its offer is let go (its
    # port goes back to the range the participants need).
    viewer_connect_seconds: int = 20

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None

    @property
    def turn_tls(self) -> tuple[Path, Path] | None:
        """The certificate and key coturn serves `turns:` with, if it has both."""
        if self.turn_tls_cert is None or self.turn_tls_key is None:
            return None
        return self.turn_tls_cert, self.turn_tls_key

    @classmethod
    def from_environ(
        cls,
        environ: Mapping[str, str],
        *,
        data_dir: Path | None = None,
        public_url: str | None = None,
    ) -> Config:
        folder = (data_dir or Path(environ.get("SUMMITRY_DATA_DIR", "data"))).resolve()
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        folder.chmod(0o700)
        tls_cert, tls_key = tls_files(environ)
        media = media_mode(environ)
        public_address = address(environ, "SUMMITRY_PUBLIC_ADDRESS")
        turn = turn_mode(environ, media)
        turn_port = port(environ, "SUMMITRY_TURN_PORT", 3478)
        turn_tls_port = port(environ, "SUMMITRY_TURN_TLS_PORT", 5349)
        turn_tls_cert, turn_tls_key = (
            tls_files(environ, "SUMMITRY_TURN_TLS_CERT", "SUMMITRY_TURN_TLS_KEY")
            if environ.get("SUMMITRY_TURN_TLS_CERT") or environ.get("SUMMITRY_TURN_TLS_KEY")
            else (tls_cert, tls_key)
        )
        if turn == "local":
            # The name callers reach TURN by: over TLS, one the certificate carries.
            host = (
                environ.get("SUMMITRY_TURN_HOST")
                or public_address
                or environ.get("SUMMITRY_MEDIA_ADDRESS")
                or "127.0.0.1"
            )
            turn_urls: tuple[str, ...] = tuple(
                f"turn:{host}:{turn_port}?transport={transport}" for transport in ("udp", "tcp")
            )
            if turn_tls_cert is not None:
                turn_urls += (f"turns:{host}:{turn_tls_port}?transport=tcp",)
            turn_secret = secret_file(folder / "turn.secret", 32)
        else:
            turn_urls = listed(environ, "SUMMITRY_TURN_URLS")
            turn_secret = environ.get("SUMMITRY_TURN_SECRET", "")
        return cls(
            data_dir=folder,
            database_url=environ.get("SUMMITRY_DATABASE_URL") or sqlite_url(folder),
            public_url=(
                public_url or environ.get("SUMMITRY_PUBLIC_URL") or "http://127.0.0.1:8000"
            ).rstrip("/"),
            grant_secret=secret_file(folder / "grant.key", 48).encode(),
            operator_token=environ.get("SUMMITRY_OPERATOR_TOKEN")
            or secret_file(folder / "operator.token", 24),
            audit_seed=audit_seed(folder / "audit.key"),
            media=media,
            media_address=environ.get("SUMMITRY_MEDIA_ADDRESS") or None,
            janus_url=environ.get("SUMMITRY_JANUS_URL") or None,
            janus_api_secret=environ.get("SUMMITRY_JANUS_API_SECRET", ""),
            janus_admin_key=environ.get("SUMMITRY_JANUS_ADMIN_KEY", ""),
            tls_cert=tls_cert,
            tls_key=tls_key,
            trusted_proxies=listed(environ, "SUMMITRY_TRUSTED_PROXIES"),
            denied_peer_networks=networks(environ, "SUMMITRY_DENIED_PEER_NETWORKS"),
            public_address=public_address,
            turn=turn,
            turn_port=turn_port,
            turn_urls=turn_urls,
            turn_secret=turn_secret,
            turn_tls_port=turn_tls_port,
            turn_tls_cert=turn_tls_cert,
            turn_tls_key=turn_tls_key,
            viewer_connect_seconds=seconds(environ, "SUMMITRY_VIEWER_CONNECT_SECONDS", 20),
        )


MEDIA_MODES = ("local", "external", "off")


class ConfigError(ValueError):
    """A setting in the environment is wrong; the message names it."""


def media_mode(environ: Mapping[str, str]) -> str:
    """local: summitry runs its own Janus; external: SUMMITRY_JANUS_URL; off: no media."""
    mode = environ.get("SUMMITRY_MEDIA") or (
        "external" if environ.get("SUMMITRY_JANUS_URL") else "local"
    )
    if mode not in MEDIA_MODES:
        raise ConfigError(f"SUMMITRY_MEDIA must be one of {', '.join(MEDIA_MODES)}, not {mode!r}")
    if mode == "external" and not environ.get("SUMMITRY_JANUS_URL"):
        raise ConfigError("SUMMITRY_MEDIA=external needs SUMMITRY_JANUS_URL")
    return mode


TURN_MODES = ("local", "external", "off")


def turn_mode(environ: Mapping[str, str], media: str) -> str:
    """local: summitry runs its own coturn (the default with local media); external:
    SUMMITRY_TURN_URLS and SUMMITRY_TURN_SECRET name one; off: no TURN."""
    mode = environ.get("SUMMITRY_TURN") or (
        "external" if environ.get("SUMMITRY_TURN_URLS") else "local" if media == "local" else "off"
    )
    if mode not in TURN_MODES:
        raise ConfigError(f"SUMMITRY_TURN must be one of {', '.join(TURN_MODES)}, not {mode!r}")
    if mode == "external" and not (
        environ.get("SUMMITRY_TURN_URLS") and environ.get("SUMMITRY_TURN_SECRET")
    ):
        raise ConfigError(
            "SUMMITRY_TURN=external needs SUMMITRY_TURN_URLS and SUMMITRY_TURN_SECRET"
        )
    return mode


def port(environ: Mapping[str, str], name: str, default: int) -> int:
    value = environ.get(name, "").strip()
    if not value:
        return default
    if not value.isdigit() or not 1 <= int(value) <= 65535:
        raise ConfigError(f"{name} must be a port number, not {value!r}")
    return int(value)


def seconds(environ: Mapping[str, str], name: str, default: int) -> int:
    value = environ.get(name, "").strip()
    if not value:
        return default
    if not value.isdigit() or not 1 <= int(value) <= 3600:
        raise ConfigError(f"{name} must be a whole number of seconds (1-3600), not {value!r}")
    return int(value)


def listed(environ: Mapping[str, str], name: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in environ.get(name, "").split(",") if item.strip())


def networks(environ: Mapping[str, str], name: str) -> tuple[Network, ...]:
    """A comma-separated list of networks in CIDR notation (10.20.0.0/16, fd00::/8)."""
    try:
        return tuple(ip_network(item, strict=False) for item in listed(environ, name))
    except ValueError as error:
        raise ConfigError(f"{name}: {error}") from error


def address(environ: Mapping[str, str], name: str) -> str | None:
    value = environ.get(name, "").strip()
    if not value:
        return None
    try:
        return str(ip_address(value))
    except ValueError as error:
        raise ConfigError(f"{name} must be an IP address, not {value!r}") from error


def tls_files(
    environ: Mapping[str, str],
    cert_name: str = "SUMMITRY_TLS_CERT",
    key_name: str = "SUMMITRY_TLS_KEY",
) -> tuple[Path | None, Path | None]:
    """A certificate (chain) and its key: both or neither, each a readable file."""
    cert, key = environ.get(cert_name), environ.get(key_name)
    if not cert and not key:
        return None, None
    if not cert or not key:
        flags = " (--tls-cert, --tls-key)" if cert_name == "SUMMITRY_TLS_CERT" else ""
        raise ConfigError(f"TLS needs both {cert_name} and {key_name}{flags}")
    paths = Path(cert).resolve(), Path(key).resolve()
    for path in paths:
        if not path.is_file():
            raise ConfigError(f"no such certificate or key file: {path}")
    return paths


def audit_seed(path: Path) -> bytes:
    """The seed of the audit trail's Ed25519 signing key: 32 random bytes kept as
    base64url in `path`, beside the other secrets and never in the database."""
    try:
        seed = from_b64url(secret_file(path, SEED_BYTES))
    except ValueError as error:
        raise ConfigError(f"{path} does not hold an audit key (base64url)") from error
    if len(seed) != SEED_BYTES:
        raise ConfigError(f"{path} holds {len(seed)} bytes; an audit key is {SEED_BYTES}")
    return seed


def secret_file(path: Path, size: int) -> str:
    """The secret kept in `path`, made on first use and readable by its owner only."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    value = secrets.token_urlsafe(size)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(value + "\n")
    return value
