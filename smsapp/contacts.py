"""Contacts (pack §3): create, change, search, erase, timeline. Pure logic and SQL.

Functions that write take an `Executor`: call them inside `db.transaction()` so that the
write and its audit entry commit together (erasure is several statements and needs it).

Fields of a request body (`POST`/`PATCH /api/contacts`, and the admin forms through
`contact_values`): phone (normalised in the contact's country, else the tenant's default),
email, first_name, last_name, country, state, postcode, timezone, tags, attributes,
consent_source, consent_at. The timezone is derived from state/postcode (pack §13) unless one
is given; a change of location re-derives it unless the same change names a timezone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from smsapp.clock import Clock
from smsapp.db import Executor, Row, is_unique_violation
from smsapp.fields import (
    Conflict,
    InvalidInput,
    NotFound,
    TenantDefaults,
    check_fields,
    iso,
    optional_email,
    optional_text,
    parse_instant,
    require_phone,
)
from smsapp.geo import contact_timezone, normalise_state, valid_timezone
from smsapp.phones import normalise_phone

FIELDS = (
    "phone",
    "email",
    "first_name",
    "last_name",
    "country",
    "state",
    "postcode",
    "timezone",
    "tags",
    "attributes",
    "consent_source",
    "consent_at",
)
# The stored columns a request may set (phone arrives as `phone`, is stored as `phone_e164`).
COLUMNS = ("phone_e164", *FIELDS[1:])
LOCATION_FIELDS = ("state", "postcode", "country")
COUNTRY = re.compile(r"^[A-Z]{2}$")
MAX_TAGS = 100
MAX_TAG_LENGTH = 100
MAX_ATTRIBUTES = 100
Scalar = str | int | float | bool | None


def contact_json(row: Row) -> dict[str, Any]:
    """The API's contact object (pack §17)."""
    return {
        "id": row["id"],
        "phone_e164": row["phone_e164"],
        "first_name": row["first_name"],
        "last_name": row["last_name"],
        "email": row["email"],
        "country": row["country"],
        "state": row["state"],
        "postcode": row["postcode"],
        "timezone": row["timezone"],
        "tags": row["tags"],
        "attributes": row["attributes"],
        "consent_source": row["consent_source"],
        "consent_at": iso(row["consent_at"]),
        "do_not_contact": bool(row["do_not_contact"]),
        "erased": row["erased_at"] is not None,
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
    }


# --- validation ----------------------------------------------------------------------------


def _country(value: object, default: str) -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        return default
    if not isinstance(value, str) or not COUNTRY.match(value.strip().upper()):
        raise InvalidInput("country must be a two-letter ISO 3166 code such as AU", field="country")
    return value.strip().upper()


def _tags(value: object) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        raise InvalidInput("tags must be a list of strings", field="tags")
    tags: list[str] = []
    for raw in value:
        tag = raw.strip()
        if len(tag) > MAX_TAG_LENGTH:
            raise InvalidInput(f"a tag is longer than {MAX_TAG_LENGTH} characters", field="tags")
        if tag and tag not in tags:
            tags.append(tag)
    if len(tags) > MAX_TAGS:
        raise InvalidInput(f"a contact has at most {MAX_TAGS} tags", field="tags")
    return tags


def _attributes(value: object) -> dict[str, Scalar]:
    """Extra fields for message placeholders: a flat object of strings, numbers, booleans."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidInput("attributes must be an object", field="attributes")
    if len(value) > MAX_ATTRIBUTES:
        raise InvalidInput(f"at most {MAX_ATTRIBUTES} attributes", field="attributes")
    for key, item in value.items():
        if not key.strip() or len(key) > MAX_TAG_LENGTH:
            raise InvalidInput(f"attribute name {key!r} is empty or too long", field="attributes")
        if not isinstance(item, str | int | float | bool) and item is not None:
            raise InvalidInput(
                f"attribute {key!r} must be a string, number, boolean or null",
                field="attributes",
            )
    return dict(value)


def contact_values(
    body: dict[str, Any], *, current: Row | None, defaults: TenantDefaults, now: datetime
) -> dict[str, Any]:
    """Every column of `COLUMNS` after applying `body`: a new contact when `current` is None
    (phone required), else a partial change of `current` (only the fields present change)."""
    check_fields(body, FIELDS)
    values: dict[str, Any] = (
        {column: None for column in COLUMNS}
        if current is None
        else {column: current[column] for column in COLUMNS}
    )
    if current is None:
        values["tags"], values["attributes"] = [], {}
    if current is None or "country" in body:
        values["country"] = _country(body.get("country"), defaults.country)
    if current is None or "phone" in body:
        region = values["country"] or defaults.country
        values["phone_e164"] = require_phone(body.get("phone"), region)
    if "email" in body:
        values["email"] = optional_email(body)
    for name in ("first_name", "last_name", "postcode", "consent_source"):
        if name in body:
            values[name] = optional_text(body, name)
    if "state" in body:
        values["state"] = normalise_state(optional_text(body, "state"))
    if "tags" in body:
        values["tags"] = _tags(body["tags"])
    if "attributes" in body:
        values["attributes"] = _attributes(body["attributes"])
    if "consent_at" in body:
        consent_at = parse_instant(body["consent_at"], "consent_at", defaults.timezone)
        if consent_at is not None and consent_at > now:
            raise InvalidInput("consent_at is in the future", field="consent_at")
        values["consent_at"] = consent_at

    explicit = optional_text(body, "timezone") if "timezone" in body else None
    if explicit is not None and valid_timezone(explicit) is None:
        raise InvalidInput(
            f"timezone {explicit!r} is not an IANA timezone such as Australia/Perth",
            field="timezone",
        )
    if current is None or "timezone" in body or any(f in body for f in LOCATION_FIELDS):
        values["timezone"] = contact_timezone(
            timezone=explicit,
            state=values["state"],
            postcode=values["postcode"],
            country=values["country"],
        )
    return values


# --- reads ---------------------------------------------------------------------------------


async def get_contact(db: Executor, *, tenant_id: int, contact_id: int) -> Row:
    row = await db.one("contacts.get", tenant_id=tenant_id, id=contact_id)
    if row is None:
        raise NotFound("contact")
    return row


@dataclass(frozen=True)
class Search:
    phone: str | None = None  # exact E.164
    q: str | None = None  # substring of name, email or phone, any case
    tag: str | None = None  # exact tag
    include_erased: bool = False


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search_params(search: Search, default_country: str) -> dict[str, Any]:
    q = (search.q or "").strip()
    digits = re.sub(r"[\s().-]", "", q)
    return {
        "phone": search.phone,
        "tag": search.tag,
        "include_erased": search.include_erased,
        "pattern": _like(q.lower()) if q else None,
        "digits": _like(digits) if q and digits else None,
        # "0412 345 678" finds +61412345678: the text read as a whole number, when it is one.
        "q_phone": normalise_phone(q, default_country).e164 if q else None,
    }


async def search_contacts(
    db: Executor,
    *,
    tenant_id: int,
    search: Search,
    default_country: str,
    limit: int,
    offset: int,
) -> tuple[list[Row], int]:
    """One page of matching contacts, newest first, and how many match in all."""
    params = search_params(search, default_country)
    rows = await db.all(
        "contacts.search", tenant_id=tenant_id, limit=limit, offset=offset, **params
    )
    total = await db.val("contacts.count", tenant_id=tenant_id, **params)
    return rows, int(total)


async def _events_and_messages(
    db: Executor, tenant_id: int, contact_id: int
) -> tuple[list[Row], list[Row]]:
    """The contact's events, oldest first, each with `message`: the inbound message it records
    (REPLIED, OPT_OUT, RESUBSCRIBE and HELP name theirs in data.inbound_message_id), else None;
    and the inbound messages no event records (a STOP from a number already on the list)."""
    await get_contact(db, tenant_id=tenant_id, contact_id=contact_id)
    events = await db.all("contacts.timeline", tenant_id=tenant_id, contact_id=contact_id)
    messages = {
        m["id"]: m
        for m in await db.all("inbox.of_contact", tenant_id=tenant_id, contact_id=contact_id)
    }
    recorded: set[int] = set()
    for event in events:
        data = event["data"] if isinstance(event["data"], dict) else {}
        ref = data.get("inbound_message_id")
        event["message"] = messages.get(ref) if isinstance(ref, int) else None
        if isinstance(ref, int) and event["message"] is not None:
            recorded.add(ref)
    return events, [m for i, m in messages.items() if i not in recorded]


async def contact_timeline(db: Executor, *, tenant_id: int, contact_id: int) -> list[Row]:
    """The contact's events, oldest first (NotFound for another tenant's contact); an event of
    an inbound message carries the message (its text) as `message`."""
    events, _ = await _events_and_messages(db, tenant_id, contact_id)
    return events


async def contact_page_timeline(db: Executor, *, tenant_id: int, contact_id: int) -> list[Row]:
    """The timeline as the contact page shows it: the events, and every inbound message no
    event records as an entry of its own (type INBOUND), in time order."""
    events, unrecorded = await _events_and_messages(db, tenant_id, contact_id)
    entries = events + [
        {"type": "INBOUND", "occurred_at": m["received_at"], "campaign_id": m["campaign_id"],
         "data": {}, "message": m}
        for m in unrecorded
    ]  # fmt: skip
    return sorted(entries, key=lambda e: e["occurred_at"])  # stable: events keep their order


def event_json(row: Row) -> dict[str, Any]:
    """An event of the timeline (pack §17); one that records an inbound message also has
    `message`: {"id", "body", "classification", "received_at"}."""
    answer = {
        "type": row["type"],
        "occurred_at": iso(row["occurred_at"]),
        "campaign_id": row["campaign_id"],
        "data": row["data"],
    }
    message = row.get("message")
    if message is not None:
        answer["message"] = {
            "id": message["id"],
            "body": message["body"],
            "classification": message["classification"],
            "received_at": iso(message["received_at"]),
        }
    return answer


# --- writes --------------------------------------------------------------------------------


def _duplicate(existing_id: int | None) -> Conflict:
    extra: dict[str, Any] = {} if existing_id is None else {"contact_id": existing_id}
    return Conflict("a contact with this phone number already exists", code="duplicate", **extra)


async def create_contact(
    tx: Executor, clock: Clock, *, tenant_id: int, defaults: TenantDefaults, body: dict[str, Any]
) -> Row:
    now = clock.now()
    values = contact_values(body, current=None, defaults=defaults, now=now)
    existing = await tx.val(
        "contacts.id_by_phone", tenant_id=tenant_id, phone_e164=values["phone_e164"]
    )
    if existing is not None:
        raise _duplicate(existing)
    try:
        contact_id = await tx.val("contacts.insert", tenant_id=tenant_id, now=now, **values)
    except Exception as exc:
        if is_unique_violation(exc):  # created concurrently since the check above
            raise _duplicate(None) from None
        raise
    return await get_contact(tx, tenant_id=tenant_id, contact_id=int(contact_id))


async def update_contact(
    tx: Executor,
    clock: Clock,
    *,
    tenant_id: int,
    contact_id: int,
    defaults: TenantDefaults,
    body: dict[str, Any],
) -> Row:
    now = clock.now()
    current = await tx.one("contacts.get_for_update", tenant_id=tenant_id, id=contact_id)
    if current is None:
        raise NotFound("contact")
    if current["erased_at"] is not None:
        raise Conflict("this contact was erased and cannot be changed", code="erased")
    values = contact_values(body, current=current, defaults=defaults, now=now)
    if values["phone_e164"] != current["phone_e164"]:
        existing = await tx.val(
            "contacts.id_by_phone", tenant_id=tenant_id, phone_e164=values["phone_e164"]
        )
        if existing is not None:
            raise _duplicate(existing)
    try:
        await tx.run("contacts.update", tenant_id=tenant_id, id=contact_id, now=now, **values)
    except Exception as exc:
        if is_unique_violation(exc):
            raise _duplicate(None) from None
        raise
    return await get_contact(tx, tenant_id=tenant_id, contact_id=contact_id)


async def erase_contact(tx: Executor, clock: Clock, *, tenant_id: int, contact_id: int) -> None:
    """Remove the person's data and keep the row (pack §2, §17), with what else held it: their
    jobs' texts, their inbound texts, the provider's callbacks about their messages either way,
    our outbox texts to their number, their import lines (docs/contacts.md). The
    do-not-contact entry of the number stays as it is: an erased person who opted out stays
    opted out. Safe to repeat."""
    now = clock.now()
    phone = (await get_contact(tx, tenant_id=tenant_id, contact_id=contact_id))["phone_e164"]
    await tx.run("contacts.erase", tenant_id=tenant_id, id=contact_id, now=now)
    await tx.run("contacts.erase_job_bodies", tenant_id=tenant_id, id=contact_id, now=now)
    cancelled = await tx.all(
        "contacts.cancel_queued_jobs", tenant_id=tenant_id, id=contact_id, now=now
    )
    for job in cancelled:
        await tx.run(
            "contacts.insert_event",
            tenant_id=tenant_id,
            campaign_id=job["campaign_id"],
            contact_id=contact_id,
            send_job_id=job["id"],
            type="CANCELLED",
            data={"reason": "erased"},
            now=now,
        )
    await tx.run("contacts.erase_event_data", tenant_id=tenant_id, id=contact_id)
    await tx.run("contacts.erase_webhook_payloads", tenant_id=tenant_id, id=contact_id, phone=phone)
    await tx.run("contacts.erase_inbound_messages", tenant_id=tenant_id, id=contact_id)
    await tx.run("contacts.erase_import_rows", tenant_id=tenant_id, id=contact_id, phone=phone)
    if phone is not None:  # None: erased before, and these went then
        await tx.run("contacts.cancel_outbox_messages", tenant_id=tenant_id, phone=phone, now=now)
        await tx.run("contacts.erase_outbox_messages", tenant_id=tenant_id, phone=phone, now=now)


def changed_fields(body: dict[str, Any]) -> list[str]:
    """The names an audit entry records (never the values: they are personal data)."""
    return sorted(k for k in body if k in FIELDS)
