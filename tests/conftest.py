"""Fixtures shared by the suite: a throwaway PostgreSQL, a database per test on SQLite
and PostgreSQL alike, and a clock the tests move by hand."""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from summitry.config import sqlite_url
from summitry.control.events import EventHub
from summitry.control.services import Services, build_services
from summitry.runtime import Nursery
from summitry.security.audit import AuditKey
from summitry.store.database import make_engine, migrate, sessions
from summitry.web.links import WebLinks

# The audit trail's signing key of the control plane's tests.
AUDIT_KEY = AuditKey(bytes(range(32)))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class PostgresServer:
    host: str
    port: int

    def url(self, database: str, driver: str = "postgresql+asyncpg") -> str:
        return f"{driver}://postgres@{self.host}:{self.port}/{database}"


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server of our own on loopback, gone when the session ends."""
    binaries = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not binaries:
        pytest.fail("PostgreSQL is not installed: run the suite through scripts/test.sh")
    bin_dir = Path(binaries[-1]).parent
    root = Path(tempfile.mkdtemp(prefix="summitry-pg-"))
    data = root / "data"
    as_user: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        shutil.chown(root, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    subprocess.run(
        [
            *as_user,
            str(bin_dir / "initdb"),
            "-D",
            str(data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
        ],
        check=True,
        capture_output=True,
    )
    port = free_port()
    subprocess.run(
        [
            *as_user,
            str(bin_dir / "pg_ctl"),
            "-D",
            str(data),
            "-w",
            "-l",
            str(root / "log"),
            "-o",
            f"-h 127.0.0.1 -p {port} -k {root} -F",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    try:
        yield PostgresServer("127.0.0.1", port)
    finally:
        subprocess.run(
            [*as_user, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"],
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield sqlite_url(tmp_path)
        return
    server: PostgresServer = request.getfixturevalue("postgres")
    name = f"t_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(
        host=server.host, port=server.port, user="postgres", database="postgres"
    )
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    yield server.url(name)


class HandClock:
    """The summits' clock, moved by the test."""

    def __init__(self, now: datetime) -> None:
        self.current = now

    def now(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> None:
        self.current += timedelta(**delta)


@pytest.fixture
def clock() -> HandClock:
    return HandClock(datetime(2021, 12, 1, 12, 0, tzinfo=UTC))


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    migrated = make_engine(database_url)
    await migrate(migrated)
    yield migrated
    await migrated.dispose()


@pytest.fixture
async def services(engine: AsyncEngine, clock: HandClock) -> AsyncIterator[Services]:
    """The control plane on a real database, without media; the background work it
    spawns is cancelled and awaited when the test ends."""
    async with Nursery() as nursery:
        yield build_services(
            sessions(engine),
            b"s" * 48,
            AUDIT_KEY,
            WebLinks("http://summitry.test"),
            EventHub(),
            nursery.spawn,
            clock,
        )


@pytest.fixture(scope="session")
def media_address() -> str:
    """The address Janus and the peers use, in the namespace the test command made."""
    address = os.environ.get("SUMMITRY_MEDIA_ADDRESS")
    if not address:
        pytest.fail(
            "media tests run inside the network namespace that scripts/test.sh makes "
            "(SUMMITRY_MEDIA_ADDRESS is not set)"
        )
    from tests.media.peers import gather_only_on

    gather_only_on(address)
    return address
