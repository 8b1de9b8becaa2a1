"""The calendar invitation (.ics) a participant receives, in its side's own zone."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import icalendar

from summitry.domain.times import wall_time


@dataclass(frozen=True)
class Invitation:
    uid: str
    title: str
    agenda: str
    starts_at: datetime
    length: timedelta
    time_zone: str
    attendee: str
    role: str
    side: str
    link: str
    issued_at: datetime


def to_ics(invitation: Invitation) -> bytes:
    """An iCalendar event whose DTSTART carries the side's TZID and a matching VTIMEZONE."""
    calendar = icalendar.Calendar()
    calendar.add("prodid", "-//summitry//summit invitation//EN")
    calendar.add("version", "2.0")
    calendar.add("method", "PUBLISH")
    event = icalendar.Event()
    event.add("uid", invitation.uid)
    event.add("dtstamp", invitation.issued_at)
    start = wall_time(invitation.starts_at, invitation.time_zone)
    event.add("dtstart", start)
    event.add("dtend", start + invitation.length)
    event.add("summary", invitation.title)
    event.add(
        "description",
        f"{invitation.agenda}\n\nYou are invited as {invitation.role} of {invitation.side}, "
        f"{invitation.attendee}.\nJoin: {invitation.link}".strip(),
    )
    event.add("url", invitation.link)
    calendar.add_component(event)
    calendar.add_missing_timezones()
    return bytes(calendar.to_ical())
