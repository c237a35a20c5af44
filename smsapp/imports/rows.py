"""Mapping columns to fields, normalising each row once, and deciding what each row does.

Pure functions: the database work (the lookups) happens in `smsapp.imports.service`.
Decisions, first match wins (pack §6): invalid_phone, duplicate, dnc, suppressed_by_cooldown,
update (a contact has this phone, or failing that this email), create.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any, NamedTuple, Protocol
from zoneinfo import ZoneInfo

from smsapp.geo import contact_timezone, normalise_state, valid_timezone
from smsapp.imports.reading import ImportInputError
from smsapp.phones import normalise_phone
from smsapp.tenancy import EMAIL

FIELDS = (
    "phone", "email", "first_name", "last_name", "country", "state", "postcode", "timezone",
    "tags", "consent_source", "consent_at",
)  # fmt: skip
DECISIONS = ("invalid_phone", "duplicate", "dnc", "suppressed_by_cooldown", "update", "create")
REJECTED = frozenset({"invalid_phone", "duplicate", "dnc", "suppressed_by_cooldown"})
ATTRIBUTE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,63}$")
TAG_SEPARATORS = re.compile(r"[,;|]")

# Header names people use, for pre-filling the mapping form (lower-case, spaces folded).
HEADER_GUESSES: dict[str, tuple[str, ...]] = {
    "phone": ("phone", "mobile", "mobile number", "phone number", "mobile phone", "cell", "msisdn",
              "number", "tel", "telephone", "sms"),
    "email": ("email", "e-mail", "email address", "mail"),
    "first_name": ("first name", "firstname", "first", "given name", "forename", "name"),
    "last_name": ("last name", "lastname", "surname", "family name", "last"),
    "country": ("country", "country code"),
    "state": ("state", "region", "province"),
    "postcode": ("postcode", "post code", "postal code", "zip", "zip code"),
    "timezone": ("timezone", "time zone", "tz"),
    "tags": ("tags", "tag", "groups", "labels", "segment"),
    "consent_source": ("consent source", "consent", "source", "opt in source"),
    "consent_at": ("consent at", "consent date", "consented at", "opt in date", "opted in"),
}  # fmt: skip


def _fold(header: str) -> str:
    return " ".join(header.replace("_", " ").replace("-", " ").lower().split())


def guess_mapping(headers: list[str]) -> dict[str, str]:
    folded = {_fold(h): h for h in headers if h}
    guess: dict[str, str] = {}
    for name, candidates in HEADER_GUESSES.items():
        for candidate in candidates:
            header = folded.get(_fold(candidate))
            if header is not None and header not in guess.values():
                guess[name] = header
                break
    return guess


def validate_mapping(raw: object, headers: list[str]) -> dict[str, str]:
    """`{field: header}` checked against the file: phone mapped, every header present.
    A name that is not a field is an attribute (`loyalty_tier` → attributes.loyalty_tier)."""
    if not isinstance(raw, dict) or not raw:
        raise ImportInputError(
            400, "bad_mapping", "mapping must be a JSON object of field → CSV header"
        )
    by_folded = {h.strip().lower(): h for h in headers}
    mapping: dict[str, str] = {}
    missing: list[str] = []
    for name, header in raw.items():
        if not isinstance(name, str) or not isinstance(header, str) or not header.strip():
            raise ImportInputError(400, "bad_mapping", "mapping values must be CSV header names")
        if name not in FIELDS and not ATTRIBUTE_NAME.match(name):
            raise ImportInputError(
                400,
                "bad_mapping",
                f"{name!r} is neither a field ({', '.join(FIELDS)}) nor an attribute name "
                "(lower-case letters, digits and underscores)",
            )
        actual = by_folded.get(header.strip().lower())
        if actual is None:
            missing.append(header)
        else:
            mapping[name] = actual
    if missing:
        raise ImportInputError(
            400,
            "missing_header",
            f"the file has no column named {', '.join(repr(m) for m in missing)}; "
            f"its columns are {', '.join(repr(h) for h in headers if h)}",
        )
    if "phone" not in mapping:
        raise ImportInputError(400, "bad_mapping", "map a column to phone: it is required")
    return mapping


@dataclass(slots=True)
class NormalisedRow:
    """One input row after normalisation; stored as JSON in import_rows.data."""

    row: int
    phone_raw: str
    phone_e164: str | None
    problem: str | None  # why the phone is invalid, when it is
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    country: str | None = None
    state: str | None = None
    postcode: str | None = None
    timezone: str | None = None
    tags: list[str] = field(default_factory=list)
    consent_source: str | None = None
    consent_at: str | None = None  # ISO-8601 UTC
    attributes: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """Stored per row, so empty optional fields are left out (from_json restores them)."""
        data = {name: getattr(self, name) for name in _REQUIRED}
        for name in _OPTIONAL:
            value = getattr(self, name)
            if value:
                data[name] = value
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> NormalisedRow:
        return cls(**data)


_REQUIRED = ("row", "phone_raw", "phone_e164", "problem")
_OPTIONAL = tuple(name for name in NormalisedRow.__slots__ if name not in _REQUIRED)


class Decidable(Protocol):
    """What `decide` reads of a row: a NormalisedRow, or the RowKey made from one."""

    @property
    def row(self) -> int: ...
    @property
    def phone_e164(self) -> str | None: ...
    @property
    def problem(self) -> str | None: ...
    @property
    def email(self) -> str | None: ...
    @property
    def warnings(self) -> Sequence[str]: ...


class RowKey(NamedTuple):
    """A normalised row reduced to what the decisions need: cheap to pass between processes
    and to hold for every row of a large file."""

    row: int
    phone_e164: str | None
    problem: str | None
    email: str | None
    warnings: tuple[str, ...]  # a tuple, so that the garbage collector soon stops scanning it

    @classmethod
    def of(cls, row: NormalisedRow) -> RowKey:
        return cls(row.row, row.phone_e164, row.problem, row.email, tuple(row.warnings))


def _cell(cells: Sequence[str], index: int | None) -> str | None:
    if index is None or index >= len(cells):
        return None
    value = cells[index].strip()
    return value or None


def parse_consent_at(raw: str, tz: ZoneInfo) -> datetime | None:
    """ISO-8601 dates and times, or Australian day-first dates (31/12/2025 [14:30]).
    A time without a zone is read in the tenant's timezone."""
    text = raw.strip()
    parsed: datetime | None = None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        for fmt in ("%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%d/%m/%Y", "%d-%m-%Y", "%d.%m.%Y"):
            try:
                parsed = datetime.strptime(text, fmt)
                break
            except ValueError:
                continue
    if parsed is None:
        try:
            parsed = datetime.combine(date.fromisoformat(text), time())
        except ValueError:
            return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz)
    return parsed.astimezone(UTC)


def split_tags(raw: str | None) -> list[str]:
    tags: list[str] = []
    for part in TAG_SEPARATORS.split(raw or ""):
        tag = part.strip()
        if tag and tag not in tags:
            tags.append(tag[:100])
    return tags


def normalise_row(
    number: int,
    cells: Sequence[str],
    columns: dict[str, int],
    *,
    default_country: str,
    tenant_tz: ZoneInfo,
) -> NormalisedRow:
    """`columns` maps each mapped field/attribute to its cell index."""

    def get(name: str) -> str | None:
        return _cell(cells, columns.get(name))

    country = (get("country") or "").upper() or None
    if country is not None and not re.fullmatch(r"[A-Z]{2}", country):
        country = None  # not an ISO code: fall back to the tenant's default for parsing
    phone_raw = get("phone") or ""
    phone = normalise_phone(phone_raw, country or default_country)
    row = NormalisedRow(number, phone_raw, phone.e164, phone.reason, country=country)
    email = get("email")
    if email is not None:
        if EMAIL.match(email.lower()):
            row.email = email.lower()
        else:
            row.warnings.append("email_ignored")
    row.first_name, row.last_name = get("first_name"), get("last_name")
    row.state, row.postcode = normalise_state(get("state")), get("postcode")
    raw_tz = get("timezone")
    if raw_tz is not None and valid_timezone(raw_tz) is None:
        row.warnings.append("timezone_ignored")
    row.timezone = contact_timezone(
        timezone=raw_tz, state=row.state, postcode=row.postcode, country=country or default_country
    )
    row.tags = split_tags(get("tags"))
    row.consent_source = get("consent_source")
    consent_raw = get("consent_at")
    if consent_raw is not None:
        consent = parse_consent_at(consent_raw, tenant_tz)
        if consent is None:
            row.warnings.append("consent_at_unreadable")
        else:
            row.consent_at = consent.isoformat()
    for name, index in columns.items():
        if name not in FIELDS:
            value = _cell(cells, index)
            if value is not None:
                row.attributes[name] = value
    return row


@dataclass(frozen=True)
class Existing:
    """A contact already in the tenant, as the decisions need it."""

    id: int
    phone_e164: str | None
    email: str | None


@dataclass(frozen=True)
class Lookups:
    dnc: frozenset[str]
    suppressed: frozenset[str]
    by_phone: dict[str, Existing]
    by_email: dict[str, Existing]


class Decision(NamedTuple):  # a tuple: made for every row, at dry-run and again at commit
    row: int
    decision: str
    reasons: list[str]
    phone_e164: str | None
    contact_id: int | None = None
    previous_phone_e164: str | None = None


class Decider:
    """Decides rows in file order, a slice at a time: it remembers the numbers and contacts
    that earlier slices already took. Each slice comes with the lookups for its own rows."""

    def __init__(self) -> None:
        self.first_row_of: dict[str, int] = {}
        self.claimed: set[int] = set()

    def decide(self, rows: Iterable[Decidable], lookups: Lookups) -> list[Decision]:
        """One decision per row. A contact matched by an earlier row is not matched again (by
        email) by a later one: that row creates a contact instead."""
        first_row_of, claimed = self.first_row_of, self.claimed
        decisions: list[Decision] = []
        for row in rows:
            phone = row.phone_e164
            if phone is None:
                decisions.append(
                    Decision(row.row, "invalid_phone", [row.problem or "invalid_number"], None)
                )
                continue
            if phone in first_row_of:
                decisions.append(
                    Decision(
                        row.row, "duplicate", [f"duplicate_of_row:{first_row_of[phone]}"], phone
                    )
                )
                continue
            first_row_of[phone] = row.row
            if phone in lookups.dnc:
                decisions.append(Decision(row.row, "dnc", ["dnc"], phone))
                continue
            if phone in lookups.suppressed:
                decisions.append(Decision(row.row, "suppressed_by_cooldown", ["suppressed"], phone))
                continue
            match = lookups.by_phone.get(phone)
            if match is not None and match.id not in claimed:
                claimed.add(match.id)
                decisions.append(
                    Decision(row.row, "update", ["matched_phone", *row.warnings], phone, match.id)
                )
                continue
            by_email = lookups.by_email.get(row.email) if row.email else None
            if by_email is not None and by_email.id not in claimed and match is None:
                claimed.add(by_email.id)
                decisions.append(
                    Decision(
                        row.row,
                        "update",
                        ["matched_email", "phone_changed", *row.warnings],
                        phone,
                        by_email.id,
                        by_email.phone_e164,
                    )
                )
                continue
            decisions.append(Decision(row.row, "create", list(row.warnings), phone))
        return decisions


def decide(rows: Iterable[Decidable], lookups: Lookups) -> list[Decision]:
    """The decisions of a whole file's rows, in file order."""
    return Decider().decide(rows, lookups)
