"""Bad media requests get a clear 4xx and leave the room undisturbed."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.media.conftest import Room
from tests.media.peers import Publisher, Subscriber, auth, sample_offer
from tests.media.test_room import wait_feeds
from tests.servers import Server, bearer, create_summit, invited

SDP = "application/sdp"


@pytest.fixture
async def live_room(
    http: httpx.AsyncClient, room: Room
) -> AsyncIterator[tuple[Room, Publisher, Subscriber, str]]:
    """Putin publishes and Biden watches; each test disturbs them and checks they go on."""
    putin = Publisher(http, room.summit.id, room.ru_principal)
    assert (await putin.publish()).status_code == 201
    biden = Subscriber(http, room.summit.id, room.us_principal)
    await biden.start()
    await wait_feeds(biden, 1)
    await biden.wait_frames("video", 10, timeout=10)
    assert putin.pc is not None
    valid_offer = await sample_offer()
    try:
        yield room, putin, biden, valid_offer
        await biden.wait_frames("video", 15, timeout=10)  # still flowing after the abuse
        assert len((await biden.sync())["feeds"]) == 1
    finally:
        await biden.close()
        await putin.close()


def error_of(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]


async def whip(
    http: httpx.AsyncClient, summit_id: str, token: str | None, body: str, content_type: str = SDP
) -> httpx.Response:
    headers = {"Content-Type": content_type}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return await http.post(f"/api/v1/summits/{summit_id}/whip", content=body, headers=headers)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("hello janus", "must start with v=0"),
        ("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n", "carries no audio or video"),
        ("v=0\r\nthis is not sdp\r\n", "malformed line"),
        ("v=0\r\n" + "a=x-padding:" + "x" * 40_000 + "\r\n", "larger than 32768 bytes"),
    ],
)
async def test_malformed_offers(
    http: httpx.AsyncClient,
    live_room: tuple[Room, Publisher, Subscriber, str],
    body: str,
    message: str,
) -> None:
    room = live_room[0]
    response = await whip(http, room.summit.id, room.us_principal, body)
    assert error_of(response) == (400, "bad_sdp")
    assert message in response.json()["message"]


async def test_offer_without_fingerprint_and_wrong_type(
    http: httpx.AsyncClient, live_room: tuple[Room, Publisher, Subscriber, str]
) -> None:
    room, _, _, offer = live_room
    stripped = "".join(
        line for line in offer.splitlines(keepends=True) if not line.startswith("a=fingerprint")
    )
    response = await whip(http, room.summit.id, room.us_principal, stripped)
    assert error_of(response) == (400, "bad_sdp")
    response = await whip(http, room.summit.id, room.us_principal, offer, "text/plain")
    assert response.status_code == 422
    assert "application/sdp" in response.json()["message"]


async def test_who_may_publish(
    http: httpx.AsyncClient, live_room: tuple[Room, Publisher, Subscriber, str]
) -> None:
    room, _, _, offer = live_room
    assert error_of(await whip(http, room.summit.id, None, offer)) == (401, "not_authenticated")
    assert error_of(await whip(http, room.summit.id, "forged.token.here", offer)) == (
        401,
        "not_authenticated",
    )
    observer = await whip(http, room.summit.id, room.observer, offer)
    assert error_of(observer) == (403, "forbidden")
    assert "observers" in observer.json()["message"]
    other = await create_summit(http)
    response = await whip(http, room.summit.id, other.ru_token, offer)
    assert (error_of(response), response.json()["message"]) == (
        (403, "forbidden"),
        "your invitation is for another summit",
    )
    # Invited but not admitted: waits in the lobby, cannot publish.
    lavrov = await invited(http, room.summit.id, room.summit.ru_token, "Sergey Lavrov", "delegate")
    response = await whip(http, room.summit.id, lavrov["token"], offer)
    assert error_of(response) == (403, "forbidden")


async def test_resources_belong_to_their_owner(
    http: httpx.AsyncClient, live_room: tuple[Room, Publisher, Subscriber, str]
) -> None:
    room, putin, biden, _ = live_room
    assert putin.location is not None
    response = await http.delete(putin.location, headers=auth(room.us_principal))
    assert (error_of(response), response.json()["message"]) == (
        (403, "forbidden"),
        "this media resource belongs to someone else",
    )
    base = f"/api/v1/summits/{room.summit.id}/subscriptions/{biden.resource}"
    response = await http.post(
        f"{base}/answer", json={"sdp": "v=0"}, headers=auth(room.ru_principal)
    )
    assert error_of(response) == (403, "forbidden")
    response = await http.post(f"{base}/sync", headers=auth(room.observer))
    assert error_of(response) == (403, "forbidden")
    missing = await http.delete(
        f"/api/v1/summits/{room.summit.id}/whip/nope", headers=auth(room.ru_principal)
    )
    assert error_of(missing) == (404, "not_found")
    trickle = await http.patch(
        putin.location,
        content="a=mid:0\r\na=end-of-candidates\r\n",
        headers=auth(room.us_principal, "application/trickle-ice-sdpfrag"),
    )
    assert error_of(trickle) == (403, "forbidden")


async def test_no_media_before_the_lobby_or_after_the_end(
    http: httpx.AsyncClient, room: Room
) -> None:
    offer = await sample_offer()
    fresh = await create_summit(http)
    response = await whip(http, fresh.id, fresh.ru_token, offer)
    assert (error_of(response), response.json()["message"]) == (
        (409, "not_allowed_now"),
        "the room is not open yet",
    )
    for action in ("skip_public", "end"):
        done = await http.post(
            f"/api/v1/summits/{room.summit.id}/actions/{action}",
            headers=bearer(room.summit.ru_token),
        )
        assert done.status_code == 200, done.text
    response = await whip(http, room.summit.id, room.ru_principal, offer)
    assert error_of(response) == (409, "not_allowed_now")
    assert "ended" in response.json()["message"]


class AimingPublisher(Publisher):
    """A publisher whose offer also names the media server's loopback and a link-local
    neighbour as its own addresses: were they passed on, Janus would send them STUN."""

    AIMED = ("127.0.0.1", "169.254.3.4", "::1")

    async def offer(self) -> str:
        offer = await super().offer()
        first_media = offer.index("a=mid:")
        aimed = "".join(
            f"a=candidate:9{n} 1 udp 2122260223 {address} 9 typ host\r\n"
            for n, address in enumerate(self.AIMED)
        )
        return offer[:first_media] + aimed + offer[first_media:]


async def test_candidates_aimed_at_the_servers_own_addresses_never_reach_janus(
    http: httpx.AsyncClient, room: Room, media_server: Server
) -> None:
    putin = AimingPublisher(http, room.summit.id, room.ru_principal)
    biden = Subscriber(http, room.summit.id, room.us_principal)
    try:
        assert (await putin.publish()).status_code == 201
        await biden.start()
        await wait_feeds(biden, 1)
        await biden.wait_frames("video", 10, timeout=10)  # its real candidates still work
        logged = [line for line in media_server.log.splitlines() if "dropped ICE" in line]
        assert logged and all(address in logged[-1] for address in AimingPublisher.AIMED), logged
    finally:
        await biden.close()
        await putin.close()
