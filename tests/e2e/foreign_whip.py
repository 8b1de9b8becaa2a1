"""A WHIP publisher that is not ours (aiortc), as a foreign client behind a firewall runs:
it asks the WHIP endpoint for its ICE servers first (OPTIONS, RFC 9725 section 4.6, for
clients that cannot change them after the offer), publishes a moving picture and a tone
through them, and prints what it got. Runs until killed.

    python -m tests.e2e.foreign_whip WHIP_URL TOKEN CA_FILE
"""

from __future__ import annotations

import asyncio
import re
import sys

import httpx
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription

from tests.media.peers import MovingPicture, Tone

LINK = re.compile(r'<([^>]+)>;\s*rel="ice-server";\s*username="([^"]*)";\s*credential="([^"]*)"')


def ice_servers(link_header: str) -> list[RTCIceServer]:
    return [
        RTCIceServer(urls=url, username=username, credential=credential)
        for url, username, credential in LINK.findall(link_header)
    ]


async def publish(url: str, token: str, ca: str) -> None:
    auth = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(verify=ca, timeout=30) as http:
        asked = await http.options(url, headers=auth)
        servers = ice_servers(asked.headers.get("link", ""))
        print(f"ice servers: {[server.urls for server in servers]}", flush=True)
        # aiortc uses one TURN server, the first it is given: where only TCP 443 gets
        # out, as its operator would, it is given the TLS one.
        over_tls = [server for server in servers if str(server.urls).startswith("turns:")]
        pc = RTCPeerConnection(RTCConfiguration(iceServers=over_tls))
        # Said when it happens: the picture can reach a page before a poll would tell.
        pc.on(
            "connectionstatechange", lambda: print(f"connection: {pc.connectionState}", flush=True)
        )
        pc.addTrack(MovingPicture())
        pc.addTrack(Tone(660.0))
        await pc.setLocalDescription(await pc.createOffer())
        answer = await http.post(
            url,
            content=pc.localDescription.sdp,
            headers={**auth, "Content-Type": "application/sdp"},
        )
        print(f"whip: {answer.status_code}", flush=True)
        answer.raise_for_status()
        await pc.setRemoteDescription(RTCSessionDescription(answer.text, "answer"))
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(publish(*sys.argv[1:4]))
