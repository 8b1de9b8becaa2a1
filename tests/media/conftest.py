"""A summitry with its own Janus, inside the network namespace the test command made."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.servers import Seeded, Server, bearer, create_summit, invited, running_summitry


@pytest.fixture(scope="session")
def media_server(tmp_path_factory: pytest.TempPathFactory, media_address: str) -> Iterator[Server]:
    with running_summitry(
        tmp_path_factory.mktemp("media-server"),
        SUMMITRY_MEDIA_ADDRESS=media_address,
        SUMMITRY_VIEWER_CONNECT_SECONDS="8",
    ) as server:
        yield server


@pytest.fixture
async def http(media_server: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=media_server.url, timeout=15) as client:
        yield client


@dataclass
class Room:
    summit: Seeded
    ru_principal: str
    us_principal: str
    observer: str


async def invite(
    http: httpx.AsyncClient, summit_id: str, coordinator: str, name: str, role: str
) -> str:
    invitation = await invited(http, summit_id, coordinator, name, role)
    knocked = await http.post(
        f"/api/v1/summits/{summit_id}/lobby", headers=bearer(invitation["token"])
    )
    assert knocked.json()["presence"] == "waiting"
    admitted = await http.post(
        f"/api/v1/summits/{summit_id}/participants/{invitation['participant']['id']}/admit",
        headers=bearer(coordinator),
    )
    assert admitted.json()["presence"] == "admitted", admitted.text
    return str(invitation["token"])


@pytest.fixture
async def room(http: httpx.AsyncClient) -> Room:
    return await summit_in_lobby(http)


async def summit_in_lobby(http: httpx.AsyncClient) -> Room:
    """A summit in its lobby: both coordinators in, a principal per side and an observer
    admitted."""
    summit = await create_summit(http)
    opened = await http.post(
        f"/api/v1/summits/{summit.id}/actions/open_lobby", headers=bearer(summit.ru_token)
    )
    assert opened.status_code == 200, opened.text
    for token in (summit.ru_token, summit.us_token):
        await http.post(f"/api/v1/summits/{summit.id}/lobby", headers=bearer(token))
    return Room(
        summit,
        await invite(http, summit.id, summit.ru_token, "Vladimir Putin", "principal"),
        await invite(http, summit.id, summit.us_token, "Joe Biden", "principal"),
        await invite(http, summit.id, summit.us_token, "Press Pool", "observer"),
    )
