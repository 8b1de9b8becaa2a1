"""Validation of a summit draft: everything wrong is named before anything is written."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from summitry.domain.errors import InvalidInput
from summitry.domain.model import SideDraft, SummitDraft, slugify

NOW = datetime(2021, 12, 1, tzinfo=UTC)
DRAFT = SummitDraft(
    title="Russia – United States video summit",
    agenda="",
    starts_at=datetime(2021, 12, 7, 15, tzinfo=UTC),
    planned_length=timedelta(hours=2),
    public_length=timedelta(minutes=10),
    sides=(
        SideDraft("Russian Federation", "Europe/Moscow", "Ushakov"),
        SideDraft("United States", "America/New_York", "Sullivan"),
    ),
)


def test_the_seed_draft_is_valid() -> None:
    DRAFT.validate(NOW)


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"starts_at": datetime(2021, 11, 30, tzinfo=UTC)}, "starts_at", "in the past"),
        ({"starts_at": datetime(2021, 12, 7, 15)}, "starts_at", "no UTC offset"),
        ({"public_length": timedelta(hours=3)}, "public_minutes", "longer than the summit"),
        ({"public_length": timedelta(minutes=-1)}, "public_minutes", "negative"),
        ({"planned_length": timedelta(0)}, "planned_minutes", "between 1 minute"),
        ({"title": "  "}, "title", "title is empty"),
        (
            {"sides": (*DRAFT.sides, SideDraft("Mediator", "Europe/Zurich", "X"))},
            "sides",
            "exactly two sides, not 3",
        ),
        ({"sides": DRAFT.sides[:1]}, "sides", "exactly two sides, not 1"),
        (
            {"sides": (DRAFT.sides[0], replace(DRAFT.sides[1], name="russian federation"))},
            "sides",
            "different names",
        ),
    ],
)
def test_bad_drafts_are_refused(changes: dict[str, object], field: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message) as raised:
        replace(DRAFT, **changes).validate(NOW)  # type: ignore[arg-type]
    assert raised.value.field == field


def test_side_with_unknown_zone_is_refused() -> None:
    with pytest.raises(InvalidInput, match="unknown time zone 'Europe/Atlantis'"):
        SideDraft("Atlantis", "Europe/Atlantis", "Poseidon")


def test_slug_is_readable_and_unguessable() -> None:
    assert slugify("Russia – United States video summit", "a1b2c3") == (
        "russia-united-states-video-summit-a1b2c3"
    )
    assert slugify("–––", "a1b2c3") == "a1b2c3"
