"""The presence machine: every allowed move with its whole result, every illegal one."""

from __future__ import annotations

import pytest

from summitry.domain.errors import IllegalTransition, NotPermitted
from summitry.domain.model import Presence, Role
from summitry.domain.presence import (
    ALLOWED_FROM,
    Change,
    JoinedCall,
    LeftCall,
    Move,
    Revoked,
    apply,
)

P = Presence


@pytest.mark.parametrize(
    ("current", "move", "role", "expected"),
    [
        (
            P.INVITED,
            Move.KNOCK,
            Role.PRINCIPAL,
            Change(P.INVITED, P.WAITING, "participant_waiting", ()),
        ),
        (P.LEFT, Move.KNOCK, Role.DELEGATE, Change(P.LEFT, P.WAITING, "participant_waiting", ())),
        (
            P.WAITING,
            Move.KNOCK,
            Role.DELEGATE,
            Change(P.WAITING, P.WAITING, "participant_waiting", ()),
        ),
        (
            P.INVITED,
            Move.KNOCK,
            Role.COORDINATOR,
            Change(P.INVITED, P.ADMITTED, "participant_joined", (JoinedCall(),)),
        ),
        (P.ADMITTED, Move.KNOCK, Role.PRINCIPAL, Change(P.ADMITTED, P.ADMITTED, "", ())),
        (
            P.WAITING,
            Move.ADMIT,
            Role.PRINCIPAL,
            Change(P.WAITING, P.ADMITTED, "participant_admitted", (JoinedCall(),)),
        ),
        (
            P.DENIED,
            Move.ADMIT,
            Role.PRINCIPAL,
            Change(P.DENIED, P.ADMITTED, "participant_admitted", (JoinedCall(),)),
        ),
        (
            P.WAITING,
            Move.DENY,
            Role.DELEGATE,
            Change(P.WAITING, P.DENIED, "participant_denied", ()),
        ),
        (
            P.ADMITTED,
            Move.DENY,
            Role.DELEGATE,
            Change(P.ADMITTED, P.DENIED, "participant_denied", (LeftCall(),)),
        ),
        (P.WAITING, Move.LEAVE, Role.OBSERVER, Change(P.WAITING, P.LEFT, "participant_left", ())),
        (
            P.ADMITTED,
            Move.LEAVE,
            Role.COORDINATOR,
            Change(P.ADMITTED, P.LEFT, "participant_left", (LeftCall(),)),
        ),
        (
            P.ADMITTED,
            Move.REMOVE,
            Role.INTERPRETER,
            Change(P.ADMITTED, P.REMOVED, "participant_removed", (LeftCall(), Revoked())),
        ),
        (
            P.INVITED,
            Move.REMOVE,
            Role.DELEGATE,
            Change(P.INVITED, P.REMOVED, "participant_removed", (Revoked(),)),
        ),
    ],
)
def test_allowed_moves(current: Presence, move: Move, role: Role, expected: Change) -> None:
    assert apply(current, move, role, "Sergey Lavrov") == expected


def test_a_knock_from_inside_the_call_records_nothing() -> None:
    assert not apply(P.ADMITTED, Move.KNOCK, Role.DELEGATE, "x").changed
    assert apply(P.INVITED, Move.KNOCK, Role.DELEGATE, "x").changed


def test_a_denied_participant_cannot_knock_their_way_in() -> None:
    with pytest.raises(NotPermitted, match="did not admit you"):
        apply(P.DENIED, Move.KNOCK, Role.PRINCIPAL, "Vladimir Putin")


ILLEGAL = [
    (current, move)
    for move in Move
    for current in Presence
    if current not in ALLOWED_FROM[move] and not (move is Move.KNOCK and current is P.DENIED)
]


@pytest.mark.parametrize(("current", "move"), ILLEGAL)
def test_every_illegal_move_is_refused(current: Presence, move: Move) -> None:
    with pytest.raises(IllegalTransition, match=f"Dmitry Peskov is {current.value}; cannot"):
        apply(current, move, Role.DELEGATE, "Dmitry Peskov")


def test_the_illegal_moves_are_the_ones_expected() -> None:
    assert sorted((c.value, m.value) for c, m in ILLEGAL) == sorted(
        [
            ("removed", "knock"),
            ("invited", "admit"),
            ("admitted", "admit"),
            ("left", "admit"),
            ("removed", "admit"),
            ("invited", "deny"),
            ("denied", "deny"),
            ("left", "deny"),
            ("removed", "deny"),
            ("invited", "leave"),
            ("denied", "leave"),
            ("left", "leave"),
            ("removed", "leave"),
        ]
    )


def test_the_documented_diagram_is_the_table() -> None:
    from pathlib import Path

    from summitry.domain.presence import mermaid

    doc = (Path(__file__).parents[2] / "docs" / "architecture.md").read_text()
    assert f"```mermaid\n{mermaid()}\n```" in doc
