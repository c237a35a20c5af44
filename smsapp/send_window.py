"""The send window (pack §13): when a contact may be sent a campaign message.

The tenant's weekly window (weekday → local [start, end] ranges; [] closed, "24:00" an end of
day) applies in the contact's timezone. Public holidays close the whole day when the tenant
respects them: the country's national holidays, plus the state's when the state is known
(`holidays` package). An Australian contact of unknown location is sent only while the window
is open in every Australian zone at once (no 6 a.m. message in Perth).

Pure: `opening(now, places, window, …)` answers None when open now, else when it next opens.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo

import holidays

from smsapp.geo import AUSTRALIAN_ZONES, contact_timezone, normalise_state, state_from_postcode

Window = dict[str, list[list[str]]]
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
LOOKAHEAD_DAYS = 15
# A window that never opens (every day closed, or zones that never overlap) is looked at again
# after this long: the job is held, never dropped.
NEVER_OPEN_RECHECK = timedelta(days=1)
MAX_ZONE_ROUNDS = 64


@dataclass(frozen=True)
class Place:
    """Where the window is read: a timezone and the holiday calendar that applies there."""

    zone: str
    country: str | None  # for national holidays; None: no holiday calendar
    subdivision: str | None  # a state, for its own holidays


def places_for(
    *, timezone: str | None, state: str | None, postcode: str | None, country: str | None,
    tenant_timezone: str,
) -> tuple[Place, ...]:  # fmt: skip
    """The places whose windows must all be open for this contact."""
    country = (country or "AU").upper()
    code = normalise_state(state) or (state_from_postcode(postcode) if country == "AU" else None)
    zone = contact_timezone(timezone=timezone, state=state, postcode=postcode, country=country)
    if zone is not None:
        return (Place(zone, country, code if country == "AU" else None),)
    if country == "AU":
        return tuple(Place(z, "AU", None) for z in AUSTRALIAN_ZONES)
    # Abroad with no known timezone: the tenant's own clock is the best guess we have.
    return (Place(tenant_timezone, country, None),)


@cache
def _calendar(country: str, subdivision: str | None) -> holidays.HolidayBase | None:
    try:
        return holidays.country_holidays(country, subdiv=subdivision)
    except NotImplementedError:  # a country the package does not know: no holidays
        return None


def is_holiday(day: date, place: Place) -> bool:
    if place.country is None:
        return False
    calendar = _calendar(place.country, place.subdivision)
    return calendar is not None and day in calendar


def _local(day: date, hhmm: str, zone: ZoneInfo) -> datetime:
    hours, minutes = (int(part) for part in hhmm.split(":"))
    if hours == 24:
        return datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
    return datetime.combine(day, time(hours, minutes), tzinfo=zone)


def _zone_opening(
    now: datetime, place: Place, window: Window, respect_holidays: bool
) -> datetime | None:
    """None when the window is open at `now` in this place, else its next opening (UTC); a
    window that does not open within LOOKAHEAD_DAYS answers now + NEVER_OPEN_RECHECK."""
    zone = ZoneInfo(place.zone)
    local_now = now.astimezone(zone)
    for offset in range(LOOKAHEAD_DAYS):
        day = local_now.date() + timedelta(days=offset)
        if respect_holidays and is_holiday(day, place):
            continue
        for start_text, end_text in window.get(WEEKDAYS[day.weekday()], []):
            start, end = _local(day, start_text, zone), _local(day, end_text, zone)
            if start <= local_now < end:
                return None
            if start > local_now:
                return start.astimezone(UTC)
    return now + NEVER_OPEN_RECHECK


def opening(
    now: datetime, places: Sequence[Place], window: Window, *, respect_holidays: bool
) -> datetime | None:
    """None when the window is open now in every place, else the first moment it is."""
    at = now
    for _ in range(MAX_ZONE_ROUNDS):
        later = [o for p in places if (o := _zone_opening(at, p, window, respect_holidays))]
        if not later:
            return None if at == now else at
        at = max(later)
    return now + NEVER_OPEN_RECHECK
