"""One real summitry server for the API tests, started as a person would start it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import free_port

OPERATOR_TOKEN = "operator-token-for-tests-0123456789"


@dataclass
class Server:
    url: str
    data_dir: Path


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data_dir = tmp_path_factory.mktemp("server-data")
    port = free_port()
    env = {**os.environ, "SUMMITRY_OPERATOR_TOKEN": OPERATOR_TOKEN}
    env.pop("SUMMITRY_DATABASE_URL", None)
    log = (data_dir / "server.log").open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "summitry.cli",
            "serve",
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            if httpx.get(f"{url}/api/v1/health", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"summitry did not start:\n{(data_dir / 'server.log').read_text()}")
        time.sleep(0.1)
    try:
        yield Server(url, data_dir)
    finally:
        process.terminate()
        process.wait(10)
        log.close()


@pytest.fixture
async def http(server: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        yield client


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


@pytest.fixture
async def summit(http: httpx.AsyncClient) -> Seeded:
    response = await http.post("/api/v1/summits", json=summit_body(), headers=operator())
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
