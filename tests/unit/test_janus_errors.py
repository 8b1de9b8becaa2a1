"""Janus's errors become the domain's in one place (`media.connection.janus_errors`)."""

from __future__ import annotations

from typing import cast

import pytest

from summitry.domain.errors import (
    BadDescription,
    IllegalTransition,
    MediaRefused,
    MediaUnavailable,
)
from summitry.media.connection import janus_errors
from summitry.media.janus import Handle, JanusError, JanusUnavailable
from summitry.web.errors import STATUS


class RecordingHandle:
    """Stands in for a Janus handle: records that it was let go."""

    def __init__(self) -> None:
        self.detached = 0

    async def detach(self) -> None:
        self.detached += 1


async def test_what_goes_well_passes_through() -> None:
    handle = RecordingHandle()
    async with janus_errors(MediaRefused, "refused", detach=cast(Handle, handle)):
        done = True
    assert (done, handle.detached) == (True, 0)


@pytest.mark.parametrize("refused", [None, MediaRefused, BadDescription])
async def test_no_answer_is_media_unavailable(refused: type[MediaRefused] | None) -> None:
    handle = RecordingHandle()
    cause = JanusUnavailable("connection refused")
    with pytest.raises(MediaUnavailable) as raised:
        async with janus_errors(refused, "refused", detach=cast(Handle, handle)):
            raise cause
    assert (raised.value.message, raised.value.__cause__) == (
        "the media server did not answer",
        cause,
    )
    assert handle.detached == 0  # the handle may well live on in Janus


@pytest.mark.parametrize("refused", [MediaRefused, BadDescription])
async def test_a_refusal_lets_the_handle_go_and_says_why(refused: type[MediaRefused]) -> None:
    handle = RecordingHandle()
    cause = JanusError(426, "No such room (1234)")
    with pytest.raises(refused) as raised:
        async with janus_errors(
            refused, "the room refused to let you in", detach=cast(Handle, handle)
        ):
            raise cause
    assert type(raised.value) is refused
    assert raised.value.message == "the room refused to let you in: No such room (1234)"
    assert (raised.value.__cause__, handle.detached) == (cause, 1)


async def test_a_refusal_without_a_handle() -> None:
    with pytest.raises(MediaRefused) as raised:
        async with janus_errors(MediaRefused, "the media server refused the subscription"):
            raise JanusError(428, "nope")
    assert raised.value.message == "the media server refused the subscription: nope"


async def test_without_a_translation_a_refusal_passes_as_it_is() -> None:
    handle = RecordingHandle()
    cause = JanusError(427, "Room exists")
    with pytest.raises(JanusError) as raised:
        async with janus_errors(detach=cast(Handle, handle)):
            raise cause
    assert (raised.value, handle.detached) == (cause, 0)


async def test_other_errors_are_not_janus_errors() -> None:
    with pytest.raises(KeyError):
        async with janus_errors(MediaRefused, "refused"):
            raise KeyError("streams")


def test_a_media_refusal_answers_as_a_refusal_always_did() -> None:
    assert STATUS[MediaRefused] == STATUS[IllegalTransition] == (409, "not_allowed_now")
    assert STATUS[MediaUnavailable] == (503, "media_unavailable")
