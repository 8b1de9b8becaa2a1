"""The media plane, built and wired in one place: the Janus connection, the rooms and
the broadcast chain (which know each other only through the small protocols each
declares), and the supervised Janus when we run our own."""

from __future__ import annotations

import logging
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from summitry.config import Config
from summitry.control.media import MediaPlane
from summitry.media.broadcast import BroadcastChain, Failed, Sealed
from summitry.media.connection import Announce, JanusConnection
from summitry.media.packager import end_orphans
from summitry.media.rooms import JanusRooms
from summitry.media.state_file import StateFile
from summitry.media.supervisor import (
    JanusEndpoint,
    JanusNotFound,
    JanusSettings,
    JanusSupervisor,
    find_janus,
)
from summitry.media.turn import TurnSettings, TurnSupervisor

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunningPlane:
    """A media plane that is up: what the orchestrator calls, who is told when a
    broadcast fails (the orchestrator cuts the summit) and when its recordings are sealed
    (the orchestrator audits their checksums)."""

    media: MediaPlane
    on_broadcast_failure: list[Failed]
    on_recordings_sealed: list[Sealed]


def find_ffmpeg() -> str:
    found = shutil.which("ffmpeg")
    if found is None:
        raise JanusNotFound(
            "ffmpeg is not installed (apt-get install ffmpeg); the broadcast chain needs it"
        )
    return found


@asynccontextmanager
async def build_media_plane(
    config: Config, announce: Announce
) -> AsyncIterator[RunningPlane | None]:
    """The configured media plane: our own supervised Janus, an external one, or none
    (`SUMMITRY_MEDIA=off`). On leaving, live broadcasts end, the session closes and our
    own Janus stops."""
    if config.media == "off":
        yield None
        return
    media_dir = config.data_dir / "janus"
    media_dir.mkdir(mode=0o700, exist_ok=True)
    broadcast_dir = config.data_dir / "broadcast"
    connection = JanusConnection()
    state = StateFile(media_dir / "media.state.json")
    rooms = JanusRooms(connection, state, announce)
    broadcast = BroadcastChain(
        connection, rooms, announce, broadcast_dir, find_ffmpeg(), config.viewer_connect_seconds
    )
    rooms.broadcast = broadcast
    connection.user = rooms
    end_orphans(broadcast_dir)
    supervisor: JanusSupervisor | None = None
    turn: TurnSupervisor | None = None
    try:
        if config.turn == "local":
            turn = TurnSupervisor(
                TurnSettings(
                    config.data_dir / "turn",
                    config.media_address,
                    config.turn_port,
                    config.public_address,
                    tls=config.turn_tls,
                    tls_port=config.turn_tls_port,
                ),
                config.turn_secret,
            )
            await turn.start()
        if config.media == "external":
            assert config.janus_url is not None
            await connection.connect(
                config.janus_url, config.janus_api_secret, config.janus_admin_key, resume=True
            )
        else:
            supervisor = JanusSupervisor(
                JanusSettings(find_janus(), media_dir, config.media_address, config.public_address)
            )
            endpoint = await supervisor.start()
            await connection.connect(
                endpoint.url, endpoint.api_secret, endpoint.admin_key, resume=supervisor.adopted
            )

            async def reconnect(endpoint: JanusEndpoint, generation: int) -> None:
                log.warning("Janus restarted (start %d): recreating rooms", generation)
                await connection.connect(endpoint.url, endpoint.api_secret, endpoint.admin_key)

            supervisor.on_restart.append(reconnect)
        yield RunningPlane(rooms, broadcast.on_failure, broadcast.on_sealed)
    finally:
        await broadcast.close()
        await connection.close()
        state.remove()
        if supervisor is not None:
            await supervisor.stop()
        if turn is not None:
            await turn.stop()
