"""Instants and zones. Every instant is stored in UTC; each side sees the summit at its
own wall time on the event's date (not today's), and is warned when its UTC offset on
that date differs from today's, so nobody turns up an hour early after a DST change."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from summitry.domain.errors import InvalidInput


def require_zone(name: str, field: str = "time_zone") -> ZoneInfo:
    """The IANA zone called `name`, or InvalidInput naming the bad value."""
    if not name or ("/" not in name and name != "UTC") or ".." in name or name.startswith("/"):
        raise InvalidInput(
            f"unknown time zone {name!r}; use an IANA name such as Europe/Moscow", field=field
        )
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise InvalidInput(
            f"unknown time zone {name!r}; use an IANA name such as Europe/Moscow", field=field
        ) from error


def require_aware(instant: datetime, field: str) -> datetime:
    """`instant` in UTC; a naive datetime is refused, since its meaning depends on a guess."""
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise InvalidInput(
            f"{field} has no UTC offset; write it as 2021-12-07T15:00:00Z or with +03:00",
            field=field,
        )
    return instant.astimezone(UTC)


def wall_time(instant: datetime, zone: str) -> datetime:
    """The wall time at `instant` in `zone`, carrying that date's offset."""
    return instant.astimezone(require_zone(zone))


@dataclass(frozen=True)
class OffsetChange:
    """A side's UTC offset on the event date differs from the offset it has today."""

    zone: str
    offset_today: timedelta
    offset_at_event: timedelta

    @property
    def message(self) -> str:
        return (
            f"{self.zone} is at UTC{format_offset(self.offset_today)} today but will be at "
            f"UTC{format_offset(self.offset_at_event)} on the day of the summit"
        )


def offset_change(zone: str, event: datetime, today: datetime) -> OffsetChange | None:
    tz = require_zone(zone)
    at_event = event.astimezone(tz).utcoffset()
    now = today.astimezone(tz).utcoffset()
    assert at_event is not None and now is not None  # aware datetimes in a ZoneInfo
    return None if at_event == now else OffsetChange(zone, now, at_event)


def format_offset(offset: timedelta) -> str:
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    hours, rest = divmod(abs(minutes), 60)
    return f"{sign}{hours:02d}:{rest:02d}"
