"""HTTPS served by summitry itself (`--tls-cert`, `--tls-key`), with a CA made here as the
demo makes one: HSTS on every answer, garbage and plain HTTP on the TLS port refused
without disturbing anyone, and proxies' headers believed only from trusted proxies."""

from __future__ import annotations

import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from summitry.security.local_ca import LocalTls, local_tls
from tests.conftest import free_port
from tests.servers import Server, launch, stop, trusting


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> LocalTls:
    return local_tls(tmp_path_factory.mktemp("tls"), ["127.0.0.1", "localhost"])


@pytest.fixture(scope="module")
def https_server(tmp_path_factory: pytest.TempPathFactory, tls: LocalTls) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("https-data")
    server = launch(
        data,
        free_port(),
        {"SUMMITRY_MEDIA": "off"},
        ("--tls-cert", str(tls.cert), "--tls-key", str(tls.key)),
        ca=tls.ca,
    )
    try:
        yield server
    finally:
        stop(server)


def test_https_answers_with_hsts_and_a_certificate_from_the_ca(
    https_server: Server, tls: LocalTls
) -> None:
    health = httpx.get(f"{https_server.url}/api/v1/health", verify=trusting(tls.ca))
    assert health.status_code == 200
    assert health.headers["strict-transport-security"] == "max-age=31536000"
    page = httpx.get(f"{https_server.url}/room/x", verify=trusting(tls.ca))
    assert "strict-transport-security" in page.headers
    with pytest.raises(httpx.ConnectError):  # not trusted without the CA
        httpx.get(f"{https_server.url}/api/v1/health")


def test_garbage_and_plain_http_on_the_tls_port_disturb_nobody(
    https_server: Server, tls: LocalTls
) -> None:
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{https_server.port}/api/v1/health", timeout=5)
    with socket.create_connection(("127.0.0.1", https_server.port), timeout=5) as raw:
        raw.sendall(b"\x16\x03\x01\x00\x05garbage-that-is-no-handshake" * 10)
        raw.settimeout(5)
        try:
            answer = raw.recv(1024)
        except ConnectionResetError:
            answer = b""
        assert answer == b"" or answer[0] == 0x15, answer  # closed, or a TLS alert
    context = ssl.create_default_context(cafile=str(tls.ca))
    with (
        socket.create_connection(("127.0.0.1", https_server.port), timeout=5) as plain,
        context.wrap_socket(plain, server_hostname="127.0.0.1") as secured,
    ):
        assert secured.version() in ("TLSv1.2", "TLSv1.3")
    health = httpx.get(f"{https_server.url}/api/v1/health", verify=trusting(tls.ca))
    assert health.status_code == 200
    assert https_server.process.poll() is None


def test_forwarded_headers_count_only_from_trusted_proxies(tmp_path: Path) -> None:
    claims = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
    for args, believed in (((), False), (("--trusted-proxy", "127.0.0.1"), True)):
        folder = tmp_path / f"proxy-{believed}"
        folder.mkdir()
        server = launch(folder, free_port(), {"SUMMITRY_MEDIA": "off"}, args)
        try:
            answer = httpx.get(f"{server.url}/api/v1/health", headers=claims)
            assert answer.status_code == 200
            assert ("strict-transport-security" in answer.headers) is believed, answer.headers
        finally:
            stop(server)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tls-cert", "/nonexistent/cert.pem"], "needs both"),
        (["--tls-cert", "/nonexistent/c.pem", "--tls-key", "/nonexistent/k.pem"], "no such"),
    ],
)
def test_bad_tls_settings_are_refused_plainly(
    args: list[str], message: str, tmp_path: Path
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "summitry.cli", "serve", "--data-dir", str(tmp_path), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={"SUMMITRY_MEDIA": "off", "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 2, done
    assert message in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_a_missing_coturn_is_named_before_anything_starts(tmp_path: Path) -> None:
    """Local media runs coturn beside Janus: without it, a plain message and exit 2."""
    done = subprocess.run(
        [sys.executable, "-m", "summitry.cli", "serve", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        # Any executable stands in for Janus, which is looked for first; no turnserver on PATH.
        env={"PATH": str(tmp_path), "SUMMITRY_JANUS_BIN": sys.executable},
    )
    assert done.returncode == 2, done
    assert "coturn is not installed" in done.stderr and "Traceback" not in done.stderr
