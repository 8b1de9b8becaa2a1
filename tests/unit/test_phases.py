"""The phase machine: every allowed move, every illegal one, and the clock's moves."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from summitry.domain.errors import IllegalTransition, InvalidInput
from summitry.domain.model import GoLiveConsent
from summitry.domain.phases import (
    EVENT_NAMES,
    TRANSITIONS,
    Cancel,
    CloseRoom,
    ConsentToGoLive,
    Cut,
    CutReason,
    End,
    EnterPrivate,
    OpenLobby,
    OpenRoom,
    Phase,
    SkipPublic,
    StartBroadcast,
    StopBroadcast,
    SummitState,
    apply,
    coordinator_event,
    due_event,
)

RU, US = "side-ru", "side-us"
START = datetime(2021, 12, 7, 15, 0, tzinfo=UTC)
NOW = START - timedelta(minutes=10)


def state(phase: Phase = Phase.SCHEDULED, **changes: object) -> SummitState:
    base = SummitState(
        phase=phase, sides=(RU, US), starts_at=START, public_length=timedelta(minutes=15)
    )
    return replace(base, **changes)  # type: ignore[arg-type]


ALL_EVENTS = [OpenLobby(RU), ConsentToGoLive(RU), SkipPublic(RU), Cut(RU), End(RU), Cancel(RU)]


def test_open_lobby_opens_the_room() -> None:
    result = apply(state(), OpenLobby(RU), NOW)
    assert result.state == state(Phase.LOBBY, version=1)
    assert result.effects == (OpenRoom(),)


def test_go_live_waits_for_both_coordinators() -> None:
    lobby = state(Phase.LOBBY, version=1)
    first = apply(lobby, ConsentToGoLive(RU), NOW)
    assert first.state == state(Phase.LOBBY, version=2, consents=frozenset({RU}))
    assert first.effects == ()
    second = apply(first.state, ConsentToGoLive(US), NOW)
    assert second.state == state(
        Phase.PUBLIC, version=3, consents=frozenset({RU, US}), public_since=NOW
    )
    assert second.effects == (StartBroadcast((RU, US)),)


def test_either_consent_goes_live_at_once() -> None:
    lobby = state(Phase.LOBBY, go_live_consent=GoLiveConsent.EITHER)
    result = apply(lobby, ConsentToGoLive(US), NOW)
    assert result.state.phase is Phase.PUBLIC
    assert result.state.public_since == NOW
    assert result.effects == (StartBroadcast((RU, US)),)


def test_consenting_twice_is_refused() -> None:
    lobby = state(Phase.LOBBY, consents=frozenset({RU}), version=2)
    with pytest.raises(IllegalTransition, match="already consented"):
        apply(lobby, ConsentToGoLive(RU), NOW)


def test_a_summit_without_public_part_cannot_go_live() -> None:
    lobby = state(Phase.LOBBY, public_length=timedelta(0))
    with pytest.raises(IllegalTransition, match="no public part"):
        apply(lobby, ConsentToGoLive(RU), NOW)


def test_cut_by_either_coordinator_stops_broadcast_then_encrypts() -> None:
    live = state(Phase.PUBLIC, version=3, public_since=NOW, consents=frozenset({RU, US}))
    for side in (RU, US):
        result = apply(live, Cut(side), NOW + timedelta(minutes=5))
        assert result.state == replace(
            live, phase=Phase.PRIVATE, version=4, private_since=NOW + timedelta(minutes=5)
        )
        assert result.effects == (StopBroadcast(CutReason.COORDINATOR), EnterPrivate())


def test_skip_public_goes_private_without_broadcast() -> None:
    result = apply(state(Phase.LOBBY), SkipPublic(US), NOW)
    assert result.state == state(Phase.PRIVATE, version=1, private_since=NOW)
    assert result.effects == (EnterPrivate(),)


def test_end_closes_the_room() -> None:
    private = state(Phase.PRIVATE, private_since=NOW, version=4)
    result = apply(private, End(RU), NOW + timedelta(hours=1))
    assert result.state == replace(
        private, phase=Phase.ENDED, version=5, ended_at=NOW + timedelta(hours=1)
    )
    assert result.effects == (CloseRoom(),)


@pytest.mark.parametrize(
    ("phase", "effects"), [(Phase.SCHEDULED, ()), (Phase.LOBBY, (CloseRoom(),))]
)
def test_cancel(phase: Phase, effects: tuple[object, ...]) -> None:
    result = apply(state(phase), Cancel(RU), NOW)
    assert result.state == state(Phase.CANCELLED, version=1, ended_at=NOW)
    assert result.effects == effects


ILLEGAL = [
    (phase, event)
    for phase in Phase
    for event in ALL_EVENTS
    if type(event) not in TRANSITIONS[phase]
]


@pytest.mark.parametrize(
    ("phase", "event"), ILLEGAL, ids=[f"{p.value}-{type(e).__name__}" for p, e in ILLEGAL]
)
def test_every_illegal_transition_is_refused_and_changes_nothing(
    phase: Phase, event: object
) -> None:
    before = state(phase, version=7)
    snapshot = replace(before)
    with pytest.raises(IllegalTransition):
        apply(before, event, NOW)  # type: ignore[arg-type]
    assert before == snapshot


def test_illegal_moves_cover_the_whole_table() -> None:
    allowed = sum(len(events) for events in TRANSITIONS.values())
    assert allowed + len(ILLEGAL) == len(Phase) * len(ALL_EVENTS)
    assert allowed == 7


def test_private_refuses_broadcast_with_a_clear_message() -> None:
    with pytest.raises(IllegalTransition, match="can never broadcast again"):
        apply(state(Phase.PRIVATE, private_since=NOW), ConsentToGoLive(RU), NOW)


def test_unknown_side_is_refused() -> None:
    with pytest.raises(InvalidInput, match="not a side"):
        apply(state(), OpenLobby("side-elsewhere"), NOW)


def test_automatic_cut_names_no_side() -> None:
    with pytest.raises(InvalidInput):
        Cut(RU, CutReason.PLANNED_END)
    with pytest.raises(InvalidInput):
        Cut(None, CutReason.COORDINATOR)


# --- the clock


def test_lobby_opens_thirty_minutes_before_the_start() -> None:
    scheduled = state()
    assert due_event(scheduled, START - timedelta(minutes=31), None) is None
    assert due_event(scheduled, START - timedelta(minutes=30), None) == OpenLobby()


def test_planned_public_part_ends_with_an_automatic_cut() -> None:
    live = state(Phase.PUBLIC, public_since=START + timedelta(minutes=2))
    assert due_event(live, START + timedelta(minutes=16), None) is None
    event = due_event(live, START + timedelta(minutes=17), None)
    assert event == Cut(reason=CutReason.PLANNED_END)
    assert apply(live, event, START).effects == (
        StopBroadcast(CutReason.PLANNED_END),
        EnterPrivate(),
    )


def test_summit_ends_after_everyone_left_and_the_grace() -> None:
    private = state(Phase.PRIVATE, private_since=START)
    left = START + timedelta(hours=1)
    assert due_event(private, left + timedelta(minutes=10), None) is None  # someone is in
    assert due_event(private, left + timedelta(minutes=4), left) is None
    assert due_event(private, left + timedelta(minutes=5), left) == End()


def test_nothing_is_due_for_finished_summits() -> None:
    far = START + timedelta(days=3)
    for phase in (Phase.ENDED, Phase.CANCELLED):
        assert due_event(state(phase), far, START) is None


@given(
    st.lists(st.sampled_from([*ALL_EVENTS, Cut(reason=CutReason.PLANNED_END), End()]), max_size=20),
    st.sampled_from(list(GoLiveConsent)),
)
def test_never_public_after_private(events: list[object], consent: GoLiveConsent) -> None:
    current = state(go_live_consent=consent)
    been_private = False
    for number, event in enumerate(events):
        try:
            current = apply(current, event, NOW + timedelta(seconds=number)).state  # type: ignore[arg-type]
        except IllegalTransition:
            continue
        been_private = been_private or current.phase is Phase.PRIVATE
        if been_private:
            assert current.phase is not Phase.PUBLIC
            assert current.private_since is not None
        assert current.version <= number + 1


def test_the_documented_diagram_is_the_table() -> None:
    from pathlib import Path

    from summitry.domain.phases import mermaid

    doc = (Path(__file__).parents[2] / "docs" / "architecture.md").read_text()
    assert f"```mermaid\n{mermaid()}\n```" in doc


def test_a_silent_console_cuts_the_broadcast() -> None:
    live = state(Phase.PUBLIC, public_since=START, public_length=timedelta(hours=1))
    now = START + timedelta(minutes=5)
    fresh, silent = now - timedelta(seconds=3), now - timedelta(seconds=11)
    assert due_event(live, now, None, [fresh, fresh]) is None
    assert due_event(live, now, None, [fresh, silent]) == Cut(reason=CutReason.CONTROL_LOST)
    # Only a live summit is cut; in the lobby a silent console changes nothing.
    assert due_event(state(Phase.LOBBY), now, None, [silent]) is None


@pytest.mark.parametrize(("name", "event"), [(n, e) for e, n in EVENT_NAMES.items()])
def test_a_coordinator_event_is_named_once(name: str, event: type) -> None:
    assert coordinator_event(name, RU) == event(RU)


def test_an_unknown_action_names_the_known_ones() -> None:
    with pytest.raises(InvalidInput, match="one of: open_lobby, consent, skip_public, cut, end"):
        coordinator_event("explode", RU)
