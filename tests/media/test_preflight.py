"""The operator's preflight of Janus's media ports (what `summitry check` runs): an
offer of one audio stream gets Janus's answer from a room of its own, and ICE with the
candidates in it succeeds. Only the operator may ask, and only a few at once."""

from __future__ import annotations

import aioice
import httpx
import pytest

from summitry.ice_probe import ice_with_janus, offer_for
from tests.media.conftest import Room
from tests.servers import bearer, operator


async def an_offer() -> str:
    connection = aioice.Connection(ice_controlling=True, use_ipv6=False)
    await connection.gather_candidates()
    try:
        return offer_for(connection)
    finally:
        await connection.close()


async def test_the_preflight_runs_ice_with_janus_and_is_for_the_operator(
    http: httpx.AsyncClient, room: Room, media_address: str
) -> None:
    async def exchange(offer: str, headers: dict[str, str] | None = None) -> str:
        answer = await http.post(
            "/api/v1/preflight/media",
            content=offer,
            headers={**(headers or operator()), "Content-Type": "application/sdp"},
        )
        if answer.status_code != 201:
            raise AssertionError(answer.status_code, answer.text)
        return answer.text

    result = await ice_with_janus(exchange)
    assert result.ok and result.offered[0].startswith(f"{media_address}:"), result

    with pytest.raises(AssertionError) as refused:
        await ice_with_janus(lambda offer: exchange(offer, bearer(room.ru_principal)))
    assert refused.value.args[0] == 403
    # Each preflight holds Janus's ports for half a minute: four at once, no more.
    answers = [await exchange(await an_offer()) for _ in range(3)]
    assert all("a=candidate:" in answer for answer in answers)
    with pytest.raises(AssertionError) as busy:
        await exchange(await an_offer())
    assert busy.value.args[0] == 503 and "preflight checks are running" in busy.value.args[1]
