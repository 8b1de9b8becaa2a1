"""One running summitry (control plane only) for the API tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from tests.servers import Seeded, Server, create_summit, running_summitry


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # The control plane alone: media has its own suite, with Janus.
    with running_summitry(tmp_path_factory.mktemp("server-data"), SUMMITRY_MEDIA="off") as run:
        yield run


@pytest.fixture
async def http(server: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        yield client


@pytest.fixture
async def summit(http: httpx.AsyncClient) -> Seeded:
    return await create_summit(http)
