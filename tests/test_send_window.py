"""The send window (pack §13) in the contact's timezone, with state-aware public holidays and
unknown Australian locations open only when every Australian zone is."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from smsapp.send_window import NEVER_OPEN_RECHECK, Place, opening, places_for

DEFAULT = {
    "mon": [["09:00", "20:00"]], "tue": [["09:00", "20:00"]], "wed": [["09:00", "20:00"]],
    "thu": [["09:00", "20:00"]], "fri": [["09:00", "20:00"]], "sat": [["09:00", "17:00"]],
    "sun": [],
}  # fmt: skip
SYDNEY = (Place("Australia/Sydney", "AU", "NSW"),)
PERTH = (Place("Australia/Perth", "AU", "WA"),)
MELBOURNE = (Place("Australia/Melbourne", "AU", "VIC"),)
UNKNOWN_AU = places_for(timezone=None, state=None, postcode=None, country="AU",
                        tenant_timezone="Australia/Sydney")  # fmt: skip


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


CASES = [
    # (what, now UTC, places, expected opening or None for open now)
    ("Sydney Monday 14:00 is open", utc(2026, 1, 5, 3), SYDNEY, None),
    ("Sydney Monday 08:59 waits a minute", utc(2026, 1, 4, 21, 59), SYDNEY, utc(2026, 1, 4, 22)),
    (
        "Sydney Monday 20:00 is closed until Tuesday 09:00",
        utc(2026, 1, 5, 9),
        SYDNEY,
        utc(2026, 1, 5, 22),
    ),
    (
        "Saturday closes at 17:00; Sunday closed; Monday 09:00",
        utc(2026, 1, 10, 6),
        SYDNEY,
        utc(2026, 1, 11, 22),
    ),
    ("Sunday is closed all day", utc(2026, 1, 11, 1), SYDNEY, utc(2026, 1, 11, 22)),
    (
        "Perth Monday 08:00 (Sydney 11:00) waits for Perth",
        utc(2026, 1, 5, 0),
        PERTH,
        utc(2026, 1, 5, 1),
    ),
    (
        "unknown Australian location: waits for Perth",
        utc(2026, 1, 5, 0),
        UNKNOWN_AU,
        utc(2026, 1, 5, 1),
    ),
    (
        "unknown Australian location: closes with Sydney at 20:00",
        utc(2026, 1, 5, 9),
        UNKNOWN_AU,
        utc(2026, 1, 6, 1),
    ),
    ("unknown Australian location: open when all are", utc(2026, 1, 5, 3), UNKNOWN_AU, None),
    ("Australia Day (national) is closed", utc(2026, 1, 26, 3), SYDNEY, utc(2026, 1, 26, 22)),
    ("Melbourne Cup Day closes Victoria", utc(2026, 11, 2, 23), MELBOURNE, utc(2026, 11, 3, 22)),
    ("… but not New South Wales", utc(2026, 11, 2, 23), SYDNEY, None),
    ("WA Day closes Western Australia", utc(2026, 6, 1, 3), PERTH, utc(2026, 6, 2, 1)),
    (
        "daylight saving ends: Sydney opens at 09:00 AEST",
        utc(2026, 4, 6, 22, 30),
        (Place("Australia/Sydney", "AU", None),),
        utc(2026, 4, 6, 23),
    ),
]


@pytest.mark.parametrize(("what", "now", "places", "expected"), CASES, ids=[c[0] for c in CASES])
def test_it_opens_as_the_table_says(
    what: str, now: datetime, places: tuple[Place, ...], expected: datetime | None
) -> None:
    assert opening(now, places, DEFAULT, respect_holidays=True) == expected


def test_it_ignores_holidays_when_the_tenant_does() -> None:
    assert opening(utc(2026, 1, 26, 3), SYDNEY, DEFAULT, respect_holidays=False) is None


def test_it_reads_all_day_and_split_windows() -> None:
    all_day = {day: [["00:00", "24:00"]] for day in DEFAULT}
    assert opening(utc(2026, 1, 11, 15), SYDNEY, all_day, respect_holidays=False) is None
    split = {**DEFAULT, "mon": [["09:00", "12:00"], ["13:00", "20:00"]]}
    assert opening(utc(2026, 1, 5, 1, 30), SYDNEY, split, respect_holidays=True) == utc(
        2026, 1, 5, 2
    )


def test_it_holds_a_window_that_never_opens_and_looks_again_later() -> None:
    closed: dict[str, list[list[str]]] = {day: [] for day in DEFAULT}
    now = utc(2026, 1, 5, 3)
    assert opening(now, SYDNEY, closed, respect_holidays=True) == now + NEVER_OPEN_RECHECK


PLACES = [
    ({"timezone": "Australia/Perth", "state": "NSW"}, ("Australia/Perth",)),
    ({"state": "qld"}, ("Australia/Brisbane",)),
    ({"postcode": "6000"}, ("Australia/Perth",)),
    ({"postcode": "2600"}, ("Australia/Sydney",)),  # Canberra
    (
        {},
        tuple(
            sorted(
                {
                    "Australia/Sydney",
                    "Australia/Brisbane",
                    "Australia/Adelaide",
                    "Australia/Darwin",
                    "Australia/Perth",
                }
            )
        ),
    ),
    ({"country": "NZ"}, ("Australia/Sydney",)),  # abroad, no timezone: the tenant's
    ({"country": "NZ", "timezone": "Pacific/Auckland"}, ("Pacific/Auckland",)),
]


@pytest.mark.parametrize(("contact", "zones"), PLACES)
def test_it_places_a_contact_by_timezone_state_or_postcode(
    contact: dict[str, str], zones: tuple[str, ...]
) -> None:
    places = places_for(
        timezone=contact.get("timezone"), state=contact.get("state"),
        postcode=contact.get("postcode"), country=contact.get("country", "AU"),
        tenant_timezone="Australia/Sydney",
    )  # fmt: skip
    assert tuple(sorted(p.zone for p in places)) == tuple(sorted(zones))


def test_it_uses_the_state_holidays_when_the_state_is_known_from_the_postcode() -> None:
    (place,) = places_for(timezone=None, state=None, postcode="3000", country="AU",
                          tenant_timezone="Australia/Sydney")  # fmt: skip
    assert place.subdivision == "VIC"
