"""A recording fake of the media ports (httpx's MockTransport pattern): it does what the
control plane asks and writes down each call, so pure tests can assert the order of
effects without Janus. It stands beside the real-Janus tests in tests/media and
tests/e2e, never instead of them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from summitry.control.media import Feed, Offered, Published, Publisher, RecordingFile
from summitry.domain import phases

Call = tuple[str, ...]


class RecordingMedia:
    def __init__(self) -> None:
        self.calls: list[Call] = []
        # Runs inside each effect, to look at the world while the media plane works.
        self.during_effect: Callable[[phases.Effect], Awaitable[None]] | None = None

    @property
    def generation(self) -> int:
        return 1

    @property
    def connected(self) -> bool:
        return True

    async def restore(self, summit_ids: list[str]) -> None:
        self.calls.append(("restore", *summit_ids))

    async def carry_out(self, summit_id: str, effect: phases.Effect) -> None:
        self.calls.append(("carry_out", type(effect).__name__))
        if self.during_effect is not None:
            await self.during_effect(effect)

    def feeds(self, summit_id: str) -> list[Feed]:
        return []

    async def publish(
        self, summit_id: str, publisher: Publisher, offer: str, encrypted: bool = False
    ) -> Published:
        self.calls.append(("publish", publisher.participant_id, str(encrypted)))
        return Published(f"pub-{publisher.participant_id}", "answer")

    async def trickle(
        self, resource_id: str, candidates: list[dict[str, object]], completed: bool
    ) -> None:
        self.calls.append(("trickle", resource_id))

    async def subscribe(self, summit_id: str, participant_id: str, sees_feeds: bool) -> Offered:
        self.calls.append(("subscribe", participant_id, str(sees_feeds)))
        return Offered(f"sub-{participant_id}", None, [], [])

    async def answer(self, resource_id: str, answer: str) -> None:
        self.calls.append(("answer", resource_id))

    async def sync(self, resource_id: str, sees_feeds: bool) -> Offered:
        self.calls.append(("sync", resource_id, str(sees_feeds)))
        return Offered(resource_id, None, [], [])

    async def withhold_feeds(self, summit_id: str, allowed: set[str]) -> None:
        self.calls.append(("withhold_feeds", *sorted(allowed)))

    async def leave(self, resource_id: str) -> None:
        self.calls.append(("leave", resource_id))

    def owner(self, resource_id: str) -> tuple[str, str] | None:
        return None

    async def drop_participant(self, summit_id: str, participant_id: str) -> None:
        self.calls.append(("drop_participant", participant_id))

    async def set_media_state(
        self, summit_id: str, participant_id: str, audio: bool, video: bool
    ) -> None:
        self.calls.append(("set_media_state", participant_id, str(audio), str(video)))

    async def choose_layers(self, resource_id: str, layers: dict[int, int]) -> None:
        self.calls.append(("choose_layers", resource_id, str(sorted(layers.items()))))

    async def preflight(self, offer: str) -> str:
        self.calls.append(("preflight",))
        return "answer"

    async def watch_broadcast(
        self, summit_id: str, offer: str, gone: Callable[[], None]
    ) -> tuple[str, str]:
        self.calls.append(("watch_broadcast",))
        return "viewer", "answer"

    def watching(self, summit_id: str) -> int:
        return 0

    async def stop_watching(self, summit_id: str, resource_id: str) -> None:
        self.calls.append(("stop_watching", resource_id))

    def recordings(self, summit_id: str) -> list[RecordingFile]:
        return []

    def broadcast_folder(self, summit_id: str, position: int) -> str | None:
        return None

    async def choose_on_air(self, summit_id: str, side_id: str, participant_id: str | None) -> None:
        self.calls.append(("choose_on_air", side_id, str(participant_id)))

    def on_air(self, summit_id: str) -> dict[str, str | None]:
        return {}
