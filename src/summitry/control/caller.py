"""Who is asking: the guards every command starts with, and the caller's context (grant,
summit, participant) that commands share instead of loading it each their own way."""

from __future__ import annotations

from dataclasses import dataclass

from summitry.domain.errors import IllegalTransition, NotPermitted
from summitry.domain.model import Presence, Role, reads_the_talks
from summitry.domain.phases import Phase
from summitry.security.grants import Grant
from summitry.store.models import ParticipantRow, SummitRow
from summitry.store.repository import Repository

CLOCK_ACTOR = "clock"
OPERATOR_ACTOR = "operator"
MEDIA_ACTOR = "media"


def actor_of(grant: Grant) -> str:
    return f"{grant.role.value}:{grant.participant_id}"


def require_summit(grant: Grant, summit_id: str) -> None:
    if grant.summit_id != summit_id:
        raise NotPermitted("your invitation is for another summit")


def require_coordinator(grant: Grant) -> None:
    if grant.role is not Role.COORDINATOR:
        raise NotPermitted(f"only a coordinator may do this; you are {grant.role.value}")


def require_own_side(grant: Grant, side_id: str) -> None:
    if grant.side_id != side_id:
        raise NotPermitted("a coordinator acts on their own side only")


@dataclass(frozen=True)
class CallerContext:
    grant: Grant
    summit: SummitRow
    person: ParticipantRow

    @property
    def actor(self) -> str:
        return actor_of(self.grant)

    @property
    def phase(self) -> Phase:
        return Phase(self.summit.phase)

    @classmethod
    async def load(cls, repo: Repository, grant: Grant, summit_id: str) -> CallerContext:
        require_summit(grant, summit_id)
        summit = await repo.summit(summit_id)
        return cls(grant, summit, await repo.participant(summit_id, grant.participant_id))

    @property
    def reads_the_talks(self) -> bool:
        return reads_the_talks(self.person.role, self.person.presence)

    @classmethod
    async def reader(cls, repo: Repository, grant: Grant, summit_id: str) -> CallerContext:
        """The caller, if they may read more than the lobby's own state."""
        caller = await cls.load(repo, grant, summit_id)
        if not caller.reads_the_talks:
            raise NotPermitted("that is for those in the call: your coordinator admits you")
        return caller

    @classmethod
    async def in_call(cls, repo: Repository, grant: Grant, summit_id: str) -> CallerContext:
        """The caller, if admitted to a summit whose room is open."""
        caller = await cls.load(repo, grant, summit_id)
        if caller.phase is Phase.SCHEDULED:
            raise IllegalTransition("the room is not open yet")
        if caller.phase.is_over:
            raise IllegalTransition(f"the summit is {caller.phase.value}; the room is closed")
        if caller.person.presence != Presence.ADMITTED.value:
            raise NotPermitted(
                "you are not in the call: your coordinator admits you from the lobby"
            )
        return caller
