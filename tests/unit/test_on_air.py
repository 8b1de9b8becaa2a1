"""Who a side puts on air: the ranking and a coordinator's choice."""

from __future__ import annotations

import itertools

import pytest

from summitry.domain.model import Role
from summitry.domain.on_air import ON_AIR_ORDER, Speaker, on_air

RU, US = "ru", "us"
PRINCIPAL = Speaker("putin", RU, Role.PRINCIPAL)
DELEGATE = Speaker("lavrov", RU, Role.DELEGATE)
COORDINATOR = Speaker("ushakov", RU, Role.COORDINATOR)
INTERPRETER = Speaker("interpreter", RU, Role.INTERPRETER)
OBSERVER = Speaker("press", RU, Role.OBSERVER)
OTHER_SIDE = Speaker("biden", US, Role.PRINCIPAL)
RANKED = [PRINCIPAL, DELEGATE, COORDINATOR, INTERPRETER]


def test_the_order_of_who_speaks_for_a_side() -> None:
    assert ON_AIR_ORDER == (Role.PRINCIPAL, Role.DELEGATE, Role.COORDINATOR, Role.INTERPRETER)
    assert Role.OBSERVER not in ON_AIR_ORDER


def test_nobody_publishing_puts_nobody_on_air() -> None:
    assert on_air([], RU) is None
    assert on_air([], RU, chosen="putin") is None


@pytest.mark.parametrize("speakers", list(itertools.permutations(RANKED)))
def test_the_principal_by_default_whatever_the_order(speakers: tuple[Speaker, ...]) -> None:
    assert on_air([OBSERVER, *speakers, OTHER_SIDE], RU) == PRINCIPAL


@pytest.mark.parametrize(
    ("publishing", "expected"),
    [
        ([DELEGATE, COORDINATOR, INTERPRETER], DELEGATE),
        ([INTERPRETER, COORDINATOR], COORDINATOR),
        ([INTERPRETER], INTERPRETER),
        ([OBSERVER, INTERPRETER], INTERPRETER),
    ],
)
def test_else_whoever_ranks_next(publishing: list[Speaker], expected: Speaker) -> None:
    assert on_air([OTHER_SIDE, *publishing], RU) == expected


def test_observers_and_the_other_side_never_go_on_air() -> None:
    assert on_air([OBSERVER, OTHER_SIDE], RU) is None
    assert on_air([OBSERVER], RU, chosen="press") is None
    assert on_air([OTHER_SIDE], RU, chosen="biden") is None
    assert on_air([PRINCIPAL, OBSERVER], US) is None


@pytest.mark.parametrize("chosen", RANKED)
def test_a_coordinators_choice_wins(chosen: Speaker) -> None:
    assert on_air([*RANKED, OBSERVER, OTHER_SIDE], RU, chosen.participant_id) == chosen


def test_a_choice_that_cannot_go_on_air_falls_back_to_the_ranking() -> None:
    # Not publishing (yet, or any more), an observer, or someone of the other side.
    for chosen in ("lavrov", "press", "biden", "nobody"):
        assert on_air([OBSERVER, COORDINATOR, PRINCIPAL, OTHER_SIDE], RU, chosen) == PRINCIPAL
    assert on_air([COORDINATOR, OBSERVER, OTHER_SIDE], RU, "press") == COORDINATOR


def test_each_side_is_ranked_on_its_own() -> None:
    speakers = [DELEGATE, Speaker("blinken", US, Role.DELEGATE), OTHER_SIDE, COORDINATOR]
    assert on_air(speakers, RU) == DELEGATE
    assert on_air(speakers, US) == OTHER_SIDE
    assert on_air(speakers, US, chosen="blinken") == Speaker("blinken", US, Role.DELEGATE)


def test_a_tie_goes_to_whoever_published_first() -> None:
    first, second = Speaker("a", RU, Role.DELEGATE), Speaker("b", RU, Role.DELEGATE)
    assert on_air([COORDINATOR, first, second], RU) is first
    assert on_air([COORDINATOR, second, first], RU) is second
