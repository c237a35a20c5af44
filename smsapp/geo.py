"""Where a contact is, for the send window (pack §13). Australian mobiles are not geographic,
so the timezone comes from an imported `timezone`, else `state`, else `postcode`."""

from __future__ import annotations

from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

SYDNEY = "Australia/Sydney"
STATE_TIMEZONES = {
    "NSW": SYDNEY,
    "ACT": SYDNEY,
    "VIC": SYDNEY,
    "TAS": SYDNEY,
    "QLD": "Australia/Brisbane",  # no daylight saving
    "SA": "Australia/Adelaide",
    "NT": "Australia/Darwin",
    "WA": "Australia/Perth",
}
# Every Australian zone a contact of unknown location might be in (pack §13: such a contact
# is sent only while the window is open in all of them).
AUSTRALIAN_ZONES = tuple(sorted(set(STATE_TIMEZONES.values())))

STATE_NAMES = {
    "NEW SOUTH WALES": "NSW",
    "AUSTRALIAN CAPITAL TERRITORY": "ACT",
    "VICTORIA": "VIC",
    "TASMANIA": "TAS",
    "QUEENSLAND": "QLD",
    "SOUTH AUSTRALIA": "SA",
    "NORTHERN TERRITORY": "NT",
    "WESTERN AUSTRALIA": "WA",
}

# Australia Post's ranges (first match wins: the ACT ranges sit inside NSW's).
POSTCODE_RANGES: tuple[tuple[int, int, str], ...] = (
    (200, 299, "ACT"),
    (2600, 2618, "ACT"),
    (2900, 2920, "ACT"),
    (800, 999, "NT"),
    (1000, 2999, "NSW"),
    (3000, 3999, "VIC"),
    (8000, 8999, "VIC"),
    (4000, 4999, "QLD"),
    (9000, 9999, "QLD"),
    (5000, 5999, "SA"),
    (6000, 6999, "WA"),
    (7000, 7999, "TAS"),
)


def normalise_state(raw: str | None) -> str | None:
    """`nsw`, `N.S.W.`, `New South Wales` → `NSW`; anything else unchanged (trimmed), or None."""
    if raw is None or not raw.strip():
        return None
    text = raw.strip().upper().replace(".", "")
    if text in STATE_TIMEZONES:
        return text
    return STATE_NAMES.get(" ".join(text.split()), raw.strip())


def state_from_postcode(raw: str | None) -> str | None:
    digits = (raw or "").strip()
    if not digits.isdigit() or len(digits) not in (3, 4):
        return None
    code = int(digits)
    for low, high, state in POSTCODE_RANGES:
        if low <= code <= high:
            return state
    return None


@cache
def _known_zones() -> frozenset[str]:
    return frozenset(available_timezones())


def valid_timezone(name: str | None) -> str | None:
    if not name or name.strip() not in _known_zones():
        return None
    try:
        ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return name.strip()


def contact_timezone(
    *, timezone: str | None, state: str | None, postcode: str | None, country: str | None
) -> str | None:
    """The contact's timezone, or None when unknown (then every zone of the country counts)."""
    explicit = valid_timezone(timezone)
    if explicit:
        return explicit
    if (country or "AU").upper() != "AU":
        return None
    code = normalise_state(state)
    if code in STATE_TIMEZONES:
        return STATE_TIMEZONES[code]
    from_postcode = state_from_postcode(postcode)
    return STATE_TIMEZONES[from_postcode] if from_postcode else None
