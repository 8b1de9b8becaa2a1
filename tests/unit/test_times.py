"""Times, zones and the calendar invitation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import icalendar
import pytest

from summitry.domain.errors import InvalidInput
from summitry.domain.invitation import Invitation, to_ics
from summitry.domain.times import offset_change, require_aware, require_zone, wall_time

SEED = datetime(2021, 12, 7, 15, 0, tzinfo=UTC)


def test_seed_is_six_pm_in_moscow_and_ten_am_in_new_york() -> None:
    moscow = wall_time(SEED, "Europe/Moscow")
    washington = wall_time(SEED, "America/New_York")
    assert (moscow.hour, moscow.minute, moscow.utcoffset()) == (18, 0, timedelta(hours=3))
    assert (washington.hour, washington.minute, washington.utcoffset()) == (
        10,
        0,
        timedelta(hours=-5),
    )
    assert moscow.isoformat() == "2021-12-07T18:00:00+03:00"
    assert washington.isoformat() == "2021-12-07T10:00:00-05:00"


def test_wall_time_uses_the_event_dates_offset() -> None:
    july = datetime(2022, 7, 7, 15, 0, tzinfo=UTC)
    assert wall_time(july, "America/New_York").isoformat() == "2022-07-07T11:00:00-04:00"


def test_offset_change_warns_across_dst() -> None:
    today = datetime(2021, 11, 1, 12, tzinfo=UTC)  # New York still on EDT
    change = offset_change("America/New_York", SEED, today)
    assert change is not None
    assert (change.offset_today, change.offset_at_event) == (
        timedelta(hours=-4),
        timedelta(hours=-5),
    )
    assert change.message == (
        "America/New_York is at UTC-04:00 today but will be at UTC-05:00 on the day of the summit"
    )
    assert offset_change("Europe/Moscow", SEED, today) is None


@pytest.mark.parametrize("name", ["Mars/Olympus", "", "EST5EDT/x", "../etc/passwd", "moscow"])
def test_unknown_zone_is_refused(name: str) -> None:
    with pytest.raises(InvalidInput, match="unknown time zone") as raised:
        require_zone(name)
    assert raised.value.field == "time_zone"


def test_naive_datetime_is_refused() -> None:
    with pytest.raises(InvalidInput, match="no UTC offset"):
        require_aware(datetime(2021, 12, 7, 15), "starts_at")
    assert require_aware(datetime.fromisoformat("2021-12-07T18:00:00+03:00"), "s") == SEED


def test_ics_carries_the_sides_zone_with_its_vtimezone() -> None:
    ics = to_ics(
        Invitation(
            uid="summit-1-p-1@summitry",
            title="Russia – United States video summit",
            agenda="Strategic stability",
            starts_at=SEED,
            length=timedelta(hours=2),
            time_zone="Europe/Moscow",
            attendee="Yuri Ushakov",
            role="coordinator",
            side="Russian Federation",
            link="http://127.0.0.1:8000/room/1#t",
            issued_at=datetime(2021, 12, 1, tzinfo=UTC),
        )
    )
    text = ics.decode()
    assert "DTSTART;TZID=Europe/Moscow:20211207T180000" in text
    assert "DTEND;TZID=Europe/Moscow:20211207T200000" in text
    calendar = icalendar.Calendar.from_ical(ics)
    zones = [c for c in calendar.walk("VTIMEZONE")]
    assert [str(z["TZID"]) for z in zones] == ["Europe/Moscow"]
    event = calendar.walk("VEVENT")[0]
    assert event.decoded("dtstart").astimezone(UTC) == SEED
    assert str(event["url"]) == "http://127.0.0.1:8000/room/1#t"
    assert "coordinator of Russian Federation" in str(event["description"])
