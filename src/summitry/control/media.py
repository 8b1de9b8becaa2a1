"""What the control plane asks of the media plane (media/ implements it), as the few
ports each service needs, and the values that cross that seam."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from summitry.domain import phases
from summitry.domain.errors import MediaUnavailable
from summitry.domain.sdp import PeerPolicy

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class Publisher:
    """Who a published feed belongs to."""

    participant_id: str
    name: str
    side_id: str
    role: str


@dataclass(frozen=True)
class Feed:
    feed_id: int
    publisher: Publisher
    audio: bool = True
    video: bool = True


@dataclass(frozen=True)
class Stream:
    """One media section of a subscription: which feed's audio or video it carries."""

    mid: str
    feed_id: int
    kind: str


@dataclass(frozen=True)
class Published:
    resource_id: str
    answer: str


@dataclass(frozen=True)
class Offered:
    """A subscription's state: Janus's offer to answer (None when nothing changed or
    there is nothing to watch yet) and the feeds it carries."""

    resource_id: str
    offer: str | None
    feeds: list[Feed]
    streams: list[Stream]


@dataclass(frozen=True)
class RecordingFile:
    position: int
    kind: str  # "video" or "audio"
    path: str
    sha256: str
    bytes: int


class MediaStatus(Protocol):
    """Whether the media server is there (the health endpoint shows it)."""

    @property
    def generation(self) -> int:
        """How many times the media server was (re)connected: rooms are recreated each time."""
        ...

    @property
    def connected(self) -> bool: ...


class RoomMedia(Protocol):
    """The call: publishing, the room subscription, and who may receive feeds."""

    def feeds(self, summit_id: str) -> list[Feed]: ...

    async def publish(
        self, summit_id: str, publisher: Publisher, offer: str, encrypted: bool = False
    ) -> Published:
        """`encrypted`: the publisher's frames are end-to-end encrypted (private phase)."""
        ...

    async def trickle(
        self, resource_id: str, candidates: list[dict[str, object]], completed: bool
    ) -> None: ...

    async def subscribe(self, summit_id: str, participant_id: str, sees_feeds: bool) -> Offered:
        """The participant's room subscription: everyone else's feeds if `sees_feeds`."""
        ...

    async def answer(self, resource_id: str, answer: str) -> None: ...

    async def sync(self, resource_id: str, sees_feeds: bool) -> Offered: ...

    async def choose_layers(self, resource_id: str, layers: dict[int, int]) -> None:
        """feed id -> the simulcast layer of its video the subscription receives (0-2)."""
        ...

    async def withhold_feeds(self, summit_id: str, allowed: set[str]) -> None:
        """Stops every feed to the subscriptions of participants not in `allowed`."""
        ...

    async def leave(self, resource_id: str) -> None: ...

    def owner(self, resource_id: str) -> tuple[str, str] | None:
        """The (summit, participant) a resource belongs to, if it exists."""
        ...

    async def drop_participant(self, summit_id: str, participant_id: str) -> None: ...

    async def set_media_state(
        self, summit_id: str, participant_id: str, audio: bool, video: bool
    ) -> None: ...

    async def preflight(self, offer: str) -> str:
        """Janus's answer to a preflight check's offer, for no summit: the check runs
        ICE against its candidates, and what it set up goes away by itself."""
        ...


class BroadcastControl(Protocol):
    """What the phases do to the media (room opened, broadcast started and cut, room
    closed), and who is on air."""

    async def carry_out(self, summit_id: str, effect: phases.Effect) -> None: ...

    async def choose_on_air(self, summit_id: str, side_id: str, participant_id: str | None) -> None:
        """Who a side puts on air (None: its principal, or whoever speaks for it)."""
        ...

    def on_air(self, summit_id: str) -> dict[str, str | None]:
        """side -> the participant on air now, while live."""
        ...


class PublicOutputs(Protocol):
    """What the public receives: WHEP viewers, the live files and the recordings."""

    async def watch_broadcast(
        self, summit_id: str, offer: str, gone: Callable[[], None]
    ) -> tuple[str, str]:
        """WHEP: a public viewer's offer for the live broadcast: (resource id, answer).
        `gone` is called once the viewer is no more."""
        ...

    def watching(self, summit_id: str) -> int:
        """How many WHEP viewers watch the summit now."""
        ...

    async def stop_watching(self, summit_id: str, resource_id: str) -> None: ...

    def recordings(self, summit_id: str) -> list[RecordingFile]: ...

    def broadcast_folder(self, summit_id: str, position: int) -> str | None: ...


class MediaPlane(MediaStatus, RoomMedia, BroadcastControl, PublicOutputs, Protocol):
    """The whole media plane, as its adapter offers it to the runtime that wires it."""

    async def restore(self, summit_ids: list[str]) -> None: ...


def require_media(port: T | None) -> T:
    if port is None:
        raise MediaUnavailable("this server runs without a media plane")
    return port


def peer_safe(peers: PeerPolicy, sdp: str, source: str) -> str:
    """`sdp` without the ICE candidates that name addresses the media server must not
    reach (logged), before it goes to the media server."""
    safe, dropped = peers.description(sdp)
    if dropped:
        log.warning(
            "dropped ICE candidates of %s naming %s", source, ", ".join(sorted(set(dropped)))
        )
    return safe


def peer_safe_candidates(
    peers: PeerPolicy, candidates: list[dict[str, object]], source: str
) -> list[dict[str, object]]:
    """Trickled candidates without those naming addresses the media server must not reach."""
    safe, dropped = peers.candidates(candidates)
    if dropped:
        log.warning(
            "dropped ICE candidates of %s naming %s", source, ", ".join(sorted(set(dropped)))
        )
    return safe
