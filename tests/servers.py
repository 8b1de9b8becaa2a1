"""Starting summitry as a person would (`summitry serve`), and the organiser's requests."""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import free_port

OPERATOR_TOKEN = "operator-token-for-tests-0123456789"


@dataclass
class Server:
    url: str
    data_dir: Path
    process: subprocess.Popen[bytes]
    port: int

    @property
    def log(self) -> str:
        return (self.data_dir / "server.log").read_text(errors="replace")


def trusting(ca: Path | None) -> ssl.SSLContext | bool:
    """What httpx verifies a server with: the CA its certificate comes from, or the system's."""
    return ssl.create_default_context(cafile=str(ca)) if ca else True


def launch(
    data_dir: Path,
    port: int,
    env: dict[str, str],
    args: tuple[str, ...] = (),
    ca: Path | None = None,
    host: str = "127.0.0.1",
    namespace: str | None = None,
) -> Server:
    """`summitry serve` on `host`:`port`, with `args` after; over HTTPS when given the
    `ca` its certificate comes from; inside network `namespace` if one is named."""
    # Each server's own coturn on a port of its own: several run side by side here.
    environ = {
        **os.environ,
        "SUMMITRY_OPERATOR_TOKEN": OPERATOR_TOKEN,
        "SUMMITRY_TURN_PORT": str(free_port()),
        **env,
    }
    environ.pop("SUMMITRY_DATABASE_URL", None)
    with (data_dir / "server.log").open("ab") as log:
        process = subprocess.Popen(
            [
                *(("ip", "netns", "exec", namespace) if namespace else ()),
                sys.executable,
                "-m",
                "summitry.cli",
                "serve",
                "--host",
                host,
                "--port",
                str(port),
                "--data-dir",
                str(data_dir),
                *args,
            ],
            env=environ,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    scheme = "https" if ca else "http"
    server = Server(f"{scheme}://{host}:{port}", data_dir, process, port)
    deadline = time.monotonic() + 30
    while True:
        try:
            health = httpx.get(f"{server.url}/api/v1/health", timeout=1, verify=trusting(ca))
            if health.status_code == 200:
                return server
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"summitry did not start:\n{server.log}")
        time.sleep(0.1)


def stop(server: Server, sig: int = signal.SIGTERM) -> None:
    if server.process.poll() is None:
        server.process.send_signal(sig)
        try:
            server.process.wait(15)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(5)


@contextmanager
def running_summitry(data_dir: Path, **env: str) -> Iterator[Server]:
    server = launch(data_dir, free_port(), env)
    try:
        yield server
    finally:
        stop(server)


def operator() -> dict[str, str]:
    return {"Authorization": f"Bearer {OPERATOR_TOKEN}"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def summit_body(**changes: Any) -> dict[str, Any]:
    start = (datetime.now(UTC) + timedelta(days=2)).replace(
        hour=15, minute=0, second=0, microsecond=0
    )
    body: dict[str, Any] = {
        "title": "Russia – United States video summit",
        "agenda": "Strategic stability",
        "starts_at": start.isoformat(),
        "planned_minutes": 120,
        "public_minutes": 10,
        "sides": [
            {
                "name": "Russian Federation",
                "time_zone": "Europe/Moscow",
                "coordinator": {"name": "Yuri Ushakov"},
            },
            {
                "name": "United States",
                "time_zone": "America/New_York",
                "coordinator": {"name": "Jake Sullivan"},
            },
        ],
    }
    body.update(changes)
    return body


@dataclass
class Seeded:
    id: str
    slug: str
    ru_token: str
    us_token: str
    ru_side: str
    us_side: str


async def create_summit(http: httpx.AsyncClient, **changes: Any) -> Seeded:
    response = await http.post("/api/v1/summits", json=summit_body(**changes), headers=operator())
    assert response.status_code == 201, response.text
    created = response.json()
    ru, us = created["coordinator_invites"]
    return Seeded(
        created["summit"]["id"],
        created["summit"]["slug"],
        ru["token"],
        us["token"],
        ru["participant"]["side_id"],
        us["participant"]["side_id"],
    )


async def invited(
    http: httpx.AsyncClient, summit_id: str, coordinator: str, name: str, role: str
) -> dict[str, Any]:
    """A coordinator invites someone to their side: the link, token and participant."""
    response = await http.post(
        f"/api/v1/summits/{summit_id}/participants",
        headers=bearer(coordinator),
        json={"name": name, "role": role},
    )
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result
