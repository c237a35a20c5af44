"""A tenant's sending settings (pack §13, §17 `GET|PATCH /api/tenants/{id}`) and its pause
state (pack §7): validation of every field, and the SQL. No aiohttp here.

Writes take an `Executor`: call them inside `db.transaction()` with the caller's audit entry.
The API speaks money in cents (`price_per_segment: {"AU": 5.5}`); the `price_book` column
holds integer units per segment (`{"AU": 55000}`, see `smsapp.money`).
"""

from __future__ import annotations

import itertools
import re
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import phonenumbers

from smsapp.clock import Clock
from smsapp.db import Executor, Row
from smsapp.fields import Conflict, InvalidInput, NotFound, check_fields, iso
from smsapp.geo import valid_timezone
from smsapp.held_jobs import release_held, reprice_waiting_jobs
from smsapp.money import cents_text, cents_to_units, units_to_cents

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# The fields `PATCH /api/tenants/{id}` takes, in the order GET shows them.
FIELDS = (
    "name",
    "timezone",
    "default_country",
    "send_window",
    "respect_public_holidays",
    "rate_limit_per_minute",
    "cooldown_hours",
    "optout_footer",
    "optout_keywords",
    "short_link_base_url",
    "fallback_url",
    "price_per_segment",
)
RATE_LIMIT_RANGE = (1, 100_000)  # segments per minute
COOLDOWN_RANGE = (0, 8_760)  # hours: up to a year
MAX_NAME = 100
MAX_FOOTER = 160  # one GSM-7 segment: a footer longer than a message makes no sense
MAX_URL = 2_000
MAX_RANGES_PER_DAY = 12
MAX_PRICE_CENTS = 1_000  # $10 a segment: anything above is a unit mix-up (units for cents?)
MAX_PRICE_ENTRIES = 300
MAX_KEYWORDS = 20
MAX_KEYWORD = 30
MAX_REASON = 500

HH_MM = re.compile(r"^([0-9]{1,2}):([0-9]{2})$")
COUNTRY = re.compile(r"^[A-Z]{2}$")
KEYWORD = re.compile(r"^[A-Z0-9]+(?: [A-Z0-9]+)*$")
PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
FOOTER_PLACEHOLDERS = ("tenant_name", "optout_link")
OPTOUT_LINK = "{optout_link}"
# Words the opt-out matrix (pack §10) reads as opt-in or help: never a tenant's opt-out word.
RESERVED_KEYWORDS = frozenset({"START", "YES", "UNSTOP", "SUBSCRIBE", "RESUME", "HELP", "INFO"})

Window = dict[str, list[list[str]]]


# --- validation: each takes the JSON value and answers the stored value, or InvalidInput ----


def _minutes(text: object, *, day: str, is_end: bool) -> tuple[int, str]:
    """("09:00" -> 540, "09:00"); "24:00" only as an end. "9:00" reads as "09:00"."""
    match = HH_MM.match(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise InvalidInput(
            f"send_window {day}: {text!r} is not a time as HH:MM", field="send_window", day=day
        )
    hours, minutes = int(match.group(1)), int(match.group(2))
    if minutes > 59 or hours > 24 or (hours == 24 and (minutes or not is_end)):
        allowed = "00:00 to 24:00" if is_end else "00:00 to 23:59"
        raise InvalidInput(
            f"send_window {day}: {text!r} is not a time of day ({allowed})",
            field="send_window",
            day=day,
        )
    return hours * 60 + minutes, f"{hours:02d}:{minutes:02d}"


def validate_day(day: str, ranges: object) -> list[list[str]]:
    """One day's ranges, sorted by start: [] is closed, [["00:00", "24:00"]] all day. Each
    range starts before it ends; ranges may touch (12:00 end, 12:00 start) but not overlap."""
    if not isinstance(ranges, list):
        raise InvalidInput(
            f"send_window {day} must be a list of [start, end] ranges ([] for closed)",
            field="send_window",
            day=day,
        )
    if len(ranges) > MAX_RANGES_PER_DAY:
        raise InvalidInput(
            f"send_window {day} has more than {MAX_RANGES_PER_DAY} ranges",
            field="send_window",
            day=day,
        )
    parsed: list[tuple[int, int, str, str]] = []
    for pair in ranges:
        if not isinstance(pair, list) or len(pair) != 2:
            raise InvalidInput(
                f"send_window {day}: {pair!r} is not a [start, end] pair such as "
                '["09:00", "20:00"]',
                field="send_window",
                day=day,
            )
        start, start_text = _minutes(pair[0], day=day, is_end=False)
        end, end_text = _minutes(pair[1], day=day, is_end=True)
        if start >= end:
            raise InvalidInput(
                f"send_window {day}: {start_text}-{end_text} ends before it starts "
                "(a range cannot cross midnight: split it over two days)",
                field="send_window",
                day=day,
            )
        parsed.append((start, end, start_text, end_text))
    parsed.sort()
    for before, after in itertools.pairwise(parsed):
        if after[0] < before[1]:
            raise InvalidInput(
                f"send_window {day}: {before[2]}-{before[3]} and {after[2]}-{after[3]} overlap",
                field="send_window",
                day=day,
            )
    return [[start_text, end_text] for _, _, start_text, end_text in parsed]


def validate_send_window(value: object) -> Window:
    """The whole week: every day `mon`…`sun` named, nothing else (a window replaces the
    stored one whole, so a forgotten day is an error rather than silently closed)."""
    if not isinstance(value, dict):
        raise InvalidInput(
            "send_window must be an object of weekday (mon…sun) to a list of ranges",
            field="send_window",
        )
    unknown = [k for k in value if k not in WEEKDAYS]
    if unknown:
        raise InvalidInput(
            f"send_window: unknown day(s) {', '.join(map(str, unknown))}; "
            f"the days are {', '.join(WEEKDAYS)}",
            field="send_window",
        )
    missing = [d for d in WEEKDAYS if d not in value]
    if missing:
        raise InvalidInput(
            f"send_window must name every day; missing {', '.join(missing)} "
            "(use [] for a closed day)",
            field="send_window",
        )
    return {day: validate_day(day, value[day]) for day in WEEKDAYS}


def validate_timezone(value: object) -> str:
    name = valid_timezone(value) if isinstance(value, str) else None
    if name is None:
        raise InvalidInput(
            f"timezone {value!r} is not an IANA timezone such as Australia/Sydney",
            field="timezone",
        )
    return name


def validate_int(value: object, field: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{field} must be a whole number", field=field)
    if not low <= value <= high:
        raise InvalidInput(f"{field} must be between {low:,} and {high:,}", field=field)
    return value


def validate_bool(value: object, field: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidInput(f"{field} must be true or false", field=field)
    return value


def validate_name(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput("name must be a non-empty string", field="name")
    if len(value.strip()) > MAX_NAME:
        raise InvalidInput(f"name is longer than {MAX_NAME} characters", field="name")
    return value.strip()


def validate_country(value: object, field: str) -> str:
    code = value.strip().upper() if isinstance(value, str) else ""
    if not COUNTRY.match(code) or code not in phonenumbers.SUPPORTED_REGIONS:
        raise InvalidInput(
            f"{field}: {value!r} is not a two-letter country code such as AU", field=field
        )
    return code


def validate_keywords(value: object) -> list[str]:
    """Extra opt-out words (pack §10), upper-cased, without duplicates, in the given order."""
    if not isinstance(value, list):
        raise InvalidInput("optout_keywords must be a list of words", field="optout_keywords")
    if len(value) > MAX_KEYWORDS:
        raise InvalidInput(
            f"optout_keywords holds at most {MAX_KEYWORDS} words", field="optout_keywords"
        )
    words: list[str] = []
    for raw in value:
        word = " ".join(raw.split()).upper() if isinstance(raw, str) else ""
        if not KEYWORD.match(word) or len(word) > MAX_KEYWORD:
            raise InvalidInput(
                f"optout_keywords: {raw!r} must be letters and digits "
                f"(at most {MAX_KEYWORD} characters)",
                field="optout_keywords",
            )
        if word in RESERVED_KEYWORDS:
            raise InvalidInput(
                f"optout_keywords: {word} already means opt-in or help "
                f"({', '.join(sorted(RESERVED_KEYWORDS))})",
                field="optout_keywords",
            )
        if word not in words:
            words.append(word)
    return words


def footer_problem(footer: str, keywords: list[str]) -> str | None:
    """Why a footer cannot be the opt-out of a campaign message, or None when it can.

    The Spam Act (s18) needs a functional unsubscribe in every message: the footer must say
    STOP (or one of the tenant's own opt-out words) as a word, or carry `{optout_link}`.
    Placeholders other than {tenant_name} and {optout_link} are refused (they would have no
    value when the footer is appended)."""
    for name in PLACEHOLDER.findall(footer):
        if name not in FOOTER_PLACEHOLDERS:
            return (
                f"optout_footer: unknown placeholder {{{name}}}; a footer may use "
                + " and ".join(f"{{{p}}}" for p in FOOTER_PLACEHOLDERS)
            )
    if OPTOUT_LINK in footer:
        return None
    upper = footer.upper()
    for word in ("STOP", *keywords):
        if re.search(rf"(?<![A-Z0-9]){re.escape(word)}(?![A-Z0-9])", upper):
            return None
    return (
        "optout_footer must tell people how to opt out (Spam Act): include the word STOP"
        + (f" (or {', '.join(keywords)})" if keywords else "")
        + " or the {optout_link} placeholder"
    )


def validate_footer(value: object, keywords: list[str]) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput("optout_footer must be a non-empty string", field="optout_footer")
    footer = " ".join(value.split())
    if len(footer) > MAX_FOOTER:
        raise InvalidInput(
            f"optout_footer is longer than {MAX_FOOTER} characters", field="optout_footer"
        )
    problem = footer_problem(footer, keywords)
    if problem is not None:
        raise InvalidInput(problem, field="optout_footer")
    return footer


def validate_url(value: object, field: str, *, base: bool) -> str | None:
    """An http(s) URL with a host, or None (null or blank clears it). A base URL (short
    links are built on it) has no query or fragment and loses a trailing slash."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be a URL string or null", field=field)
    url = value.strip()
    if len(url) > MAX_URL or any(c.isspace() or ord(c) < 32 for c in url):
        raise InvalidInput(f"{field} is not a usable URL", field=field)
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise InvalidInput(f"{field}: {url!r} is not a URL", field=field) from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise InvalidInput(
            f"{field} must be an http:// or https:// URL with a host, not {url!r}", field=field
        )
    if parts.username or parts.password:
        raise InvalidInput(f"{field} must not carry a user name or password", field=field)
    if base:
        if parts.query or parts.fragment:
            raise InvalidInput(f"{field} is a base URL: no ?query or #fragment", field=field)
        url = url.rstrip("/")
    return url


def validate_price_book(value: object) -> dict[str, int]:
    """{"AU": 5.5} (cents per segment, >= 0, up to four decimals) as {"AU": 55000} (units).
    Countries are destination ISO codes that phone numbers can have; the book replaces the
    stored one whole. Exact or refused: 5.55555 is an error, never rounded."""
    if not isinstance(value, dict):
        raise InvalidInput(
            'price_per_segment must be an object of country to cents, such as {"AU": 5.5}',
            field="price_per_segment",
        )
    if len(value) > MAX_PRICE_ENTRIES:
        raise InvalidInput(
            f"price_per_segment holds at most {MAX_PRICE_ENTRIES} countries",
            field="price_per_segment",
        )
    book: dict[str, int] = {}
    for raw_country, cents in value.items():
        country = validate_country(raw_country, "price_per_segment")
        if country in book:
            raise InvalidInput(
                f"price_per_segment names {country} twice", field="price_per_segment"
            )
        if isinstance(cents, bool) or not isinstance(cents, int | float | str):
            raise InvalidInput(
                f"price_per_segment {country}: {cents!r} is not a number of cents",
                field="price_per_segment",
                country=country,
            )
        try:
            units = cents_to_units(cents)
        except ValueError as exc:
            raise InvalidInput(
                f"price_per_segment {country}: {exc}", field="price_per_segment", country=country
            ) from None
        if units < 0 or units > cents_to_units(MAX_PRICE_CENTS):
            raise InvalidInput(
                f"price_per_segment {country} must be between 0 and {MAX_PRICE_CENTS} cents",
                field="price_per_segment",
                country=country,
            )
        book[country] = units
    return dict(sorted(book.items()))


def validate_reason(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput("a pause needs a reason (a non-empty string)", field="reason")
    reason = value.strip()
    if len(reason) > MAX_REASON:
        raise InvalidInput(f"reason is longer than {MAX_REASON} characters", field="reason")
    return reason


# --- the stored row and its API form -------------------------------------------------------

# API field -> column, where they differ.
COLUMN = {"price_per_segment": "price_book"}


def price_book_cents(book: dict[str, int]) -> dict[str, int | float]:
    return {country: units_to_cents(int(units)) for country, units in sorted(book.items())}


def window_json(window: Window) -> Window:
    """The stored window with the days in week order (a day missing reads as closed)."""
    return {day: [list(r) for r in window.get(day, [])] for day in WEEKDAYS}


def field_json(row: Row, field: str) -> Any:
    """One setting of a tenant row as the API shows it."""
    if field == "price_per_segment":
        return price_book_cents(row["price_book"])
    if field == "send_window":
        return window_json(row["send_window"])
    return row[COLUMN.get(field, field)]


def settings_json(row: Row) -> dict[str, Any]:
    """`GET /api/tenants/{id}`: the settings of pack §17, plus identity and pause state."""
    body: dict[str, Any] = {"id": row["id"], "slug": row["slug"]}
    body.update({field: field_json(row, field) for field in FIELDS})
    body.update(
        {
            "paused": bool(row["paused"]),
            "paused_at": iso(row["paused_at"]),
            "paused_by": row["paused_by"],
            "paused_by_email": row.get("paused_by_email"),
            "pause_reason": row["pause_reason"],
            "created_at": iso(row["created_at"]),
            "updated_at": iso(row["updated_at"]),
        }
    )
    return body


async def get_tenant(db: Executor, tenant_id: int) -> Row:
    row = await db.one("tenant_settings.get", tenant_id=tenant_id)
    if row is None:
        raise NotFound("tenant")
    return row


async def lock_tenant(db: Executor, tenant_id: int) -> None:
    """Hold the tenant's row for the rest of the transaction (PostgreSQL), so that two
    writers of its settings, budget or pause state take turns; SQLite has one writer."""
    if await db.val("tenant_settings.lock", tenant_id=tenant_id) is None:
        raise NotFound("tenant")


def new_values(current: Row, body: dict[str, Any]) -> dict[str, Any]:
    """The stored values after applying `body` (a partial update) to `current`: every field
    validated; cross-field rules (the footer's opt-out word) checked against the result."""
    check_fields(body, FIELDS)
    values: dict[str, Any] = {field: current[COLUMN.get(field, field)] for field in FIELDS}
    for field, value in body.items():
        if field == "name":
            values[field] = validate_name(value)
        elif field == "timezone":
            values[field] = validate_timezone(value)
        elif field == "default_country":
            values[field] = validate_country(value, "default_country")
        elif field == "send_window":
            values[field] = validate_send_window(value)
        elif field == "respect_public_holidays":
            values[field] = validate_bool(value, field)
        elif field == "rate_limit_per_minute":
            values[field] = validate_int(value, field, *RATE_LIMIT_RANGE)
        elif field == "cooldown_hours":
            values[field] = validate_int(value, field, *COOLDOWN_RANGE)
        elif field == "optout_keywords":
            values[field] = validate_keywords(value)
        elif field == "short_link_base_url":
            values[field] = validate_url(value, field, base=True)
        elif field == "fallback_url":
            values[field] = validate_url(value, field, base=False)
        elif field == "price_per_segment":
            values[field] = validate_price_book(value)
    if "optout_footer" in body:
        values["optout_footer"] = validate_footer(body["optout_footer"], values["optout_keywords"])
    elif "optout_keywords" in body:
        problem = footer_problem(values["optout_footer"], values["optout_keywords"])
        if problem is not None:
            raise InvalidInput(
                "optout_keywords: the current footer relies on a word you are removing; "
                "change optout_footer in the same request",
                field="optout_keywords",
            )
    return values


def _as_stored(values: dict[str, Any]) -> dict[str, Any]:
    return {COLUMN.get(field, field): value for field, value in values.items()}


async def update_settings(
    db: Executor, clock: Clock, *, tenant_id: int, body: dict[str, Any]
) -> tuple[Row, dict[str, dict[str, Any]]]:
    """Apply a partial update: (the tenant row after it, the changes as {field: {"from",
    "to"}} in API form). Nothing is written when nothing changes."""
    await lock_tenant(db, tenant_id)
    current = await get_tenant(db, tenant_id)
    values = new_values(current, body)
    after = {**current, **_as_stored(values)}
    changes = {
        field: {"from": field_json(current, field), "to": field_json(after, field)}
        for field in FIELDS
        if field_json(current, field) != field_json(after, field)
    }
    if not changes:
        return current, {}
    if "short_link_base_url" in changes and values["short_link_base_url"]:
        await _refuse_anothers_short_host(db, tenant_id, values["short_link_base_url"])
    await db.run(
        "tenant_settings.update", tenant_id=tenant_id, now=clock.now(), **_as_stored(values)
    )
    await _release_for(db, tenant_id, set(changes), clock.now())
    return await get_tenant(db, tenant_id), changes


async def _refuse_anothers_short_host(db: Executor, tenant_id: int, url: str) -> None:
    """A tenant's own short host serves that tenant's links only (smsapp/short_host.py): a host
    another tenant already prints in its messages cannot become this one's too."""
    from smsapp.short_host import tenant_hosts_map, url_host  # the hosts as the server reads them

    host = url_host(url)
    hosts = tenant_hosts_map(await db.all("short_links.tenant_short_hosts"))
    if host is not None and hosts.get(host, frozenset()) - {tenant_id}:
        raise Conflict(
            f"short_link_base_url: {host} is another account's short host",
            code="short_host_taken",
            field="short_link_base_url",
        )


# Which held jobs (pack §7) a settings change may free: the gate reads these fields.
GATES_READING = {
    "send_window": ("quiet_hours",),
    "respect_public_holidays": ("quiet_hours",),
    "timezone": ("quiet_hours", "budget", "warmup"),  # the local day moves
    "rate_limit_per_minute": ("rate_limit",),
    "price_per_segment": ("price_unknown",),
}


async def _release_for(db: Executor, tenant_id: int, changed: set[str], now: datetime) -> None:
    if "price_per_segment" in changed:
        await reprice_waiting_jobs(db, tenant_id=tenant_id, now=now)
    gates = {gate for field in changed for gate in GATES_READING.get(field, ())}
    if gates:
        await release_held(db, tenant_id=tenant_id, gates=sorted(gates), now=now)


async def pause_tenant(
    db: Executor, clock: Clock, *, tenant_id: int, user_id: int | None, reason: object
) -> tuple[Row, bool]:
    """Pause all sending of the tenant: (the tenant row, True) when it was running, (the row
    unchanged, False) when it was already paused (the first pause's who, when, why stay)."""
    text = validate_reason(reason)
    # The stop rule (pack §7): taken first, held until this transaction commits.
    await db.stop_lock(tenant_id)
    await lock_tenant(db, tenant_id)
    changed = await db.run(
        "tenant_settings.pause", tenant_id=tenant_id, user_id=user_id, reason=text, now=clock.now()
    )
    return await get_tenant(db, tenant_id), changed > 0


async def resume_tenant(db: Executor, clock: Clock, *, tenant_id: int) -> tuple[Row, Row | None]:
    """Resume sending: (the tenant row, the row as it was paused) or (row, None) when it was
    not paused."""
    await lock_tenant(db, tenant_id)
    before = await get_tenant(db, tenant_id)
    changed = await db.run("tenant_settings.resume", tenant_id=tenant_id, now=clock.now())
    if changed:
        await release_held(db, tenant_id=tenant_id, gates=("pause",), now=clock.now())
    return await get_tenant(db, tenant_id), before if changed else None


async def pause_actor(db: Executor, row: Row) -> str | None:
    """Who paused the tenant, for people: the user's email, else the API key's name."""
    if not row["paused"]:
        return None
    if row.get("paused_by_email"):
        return str(row["paused_by_email"])
    entry = await db.one("tenant_settings.last_pause_actor", tenant_id=row["id"])
    if entry is not None and entry["api_key_name"]:
        return f"API key {entry['api_key_name']!r}"
    return None


# --- the settings page's text forms of the window, price book and keywords -----------------

PRICE_ENTRY = re.compile(r"^([^=:\s]*)\s*([=:])\s*(.*)$")
RANGE_SEPARATOR = re.compile(r"\s*(?:-|–|—|\bto\b)\s*")
CLOSED_WORDS = ("", "closed", "none", "-", "–", "—")
ALL_DAY_WORDS = ("all day", "24h", "always")


def window_day_text(ranges: list[list[str]]) -> str:
    """[["09:00", "12:00"], ["13:00", "20:00"]] -> "09:00-12:00, 13:00-20:00"; [] -> ""."""
    return ", ".join(f"{start}-{end}" for start, end in ranges)


def window_day_from_text(day: str, text: str) -> list[list[str]]:
    """One day of the page's window, "09:00-12:00, 13:00-20:00" (blank or "closed" = closed,
    "all day" = 00:00-24:00), as API ranges; validate_send_window checks them."""
    cleaned = " ".join(text.split()).lower()
    if cleaned in CLOSED_WORDS:
        return []
    if cleaned in ALL_DAY_WORDS:
        return [["00:00", "24:00"]]
    ranges: list[list[str]] = []
    for part in re.split(r"[,;]", cleaned):
        if not part.strip():
            continue
        pieces = RANGE_SEPARATOR.split(part.strip())
        if len(pieces) != 2 or not all(pieces):
            raise InvalidInput(
                f"send window {day}: {part.strip()!r} is not a range such as 09:00-20:00",
                field="send_window",
                day=day,
            )
        ranges.append(pieces)
    return ranges


def price_book_text(book: dict[str, int]) -> str:
    """{"AU": 55000, "NZ": 70000} (units) -> "AU=5.5, NZ=7" (cents)."""
    return ", ".join(f"{country}={cents_text(units)}" for country, units in sorted(book.items()))


def price_book_from_text(text: str) -> dict[str, str]:
    """ "AU=5.5, NZ=7" (commas, semicolons or lines between entries; "=" or ":" inside) as the
    API's {"AU": "5.5", "NZ": "7"}; the decimal text is kept so the conversion stays exact."""
    book: dict[str, str] = {}
    for entry in re.split(r"[,;\n]", text):
        if not entry.strip():
            continue
        match = PRICE_ENTRY.match(entry.strip())
        country, sep, cents = match.groups() if match else ("", "", "")
        if not sep or not country or not cents:
            raise InvalidInput(
                f"price book: {entry.strip()!r} is not COUNTRY=cents such as AU=5.5",
                field="price_per_segment",
            )
        code = country.upper()
        if code in book:
            raise InvalidInput(f"price book names {code} twice", field="price_per_segment")
        book[code] = cents
    return book


def keywords_from_text(text: str) -> list[str]:
    return [word for word in (w.strip() for w in re.split(r"[,;\n]", text)) if word]
