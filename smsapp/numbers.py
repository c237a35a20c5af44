"""Sending numbers (and alphanumeric sender IDs) of a tenant."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from smsapp.clock import Clock
from smsapp.db import Database, Executor, Row
from smsapp.fields import Conflict, InvalidInput, NotFound, check_fields, iso, require_phone
from smsapp.held_jobs import release_held
from smsapp.phones import is_alphanumeric_sender, normalise_phone


class NumberError(ValueError):
    pass


async def add_sending_number(
    db: Database, clock: Clock, *, tenant_id: int, value: str, provider: str = "sandbox"
) -> int:
    """Add a number (E.164) or sender ID to a tenant; adding the same one again is a no-op.
    A number that belongs to another tenant is refused."""
    value = value.strip()
    if value.startswith("+") or value[:1].isdigit():
        normalised = normalise_phone(value, "AU")
        if not normalised.ok:
            raise NumberError(f"{value!r} is not a valid mobile number ({normalised.reason})")
        assert normalised.e164 is not None
        phone, kind = normalised.e164, "phone"
    elif is_alphanumeric_sender(value):
        phone, kind = value, "alphanumeric"
    else:
        raise NumberError(
            f"{value!r} is neither a phone number nor an alphanumeric sender ID "
            "(1–11 letters, digits or spaces)"
        )
    now = clock.now()
    new_id = await db.val(
        "numbers.insert",
        tenant_id=tenant_id,
        phone_e164=phone,
        kind=kind,
        provider=provider,
        warmup_started_on=now.date(),
        now=now,
    )
    if new_id is not None:
        return int(new_id)
    existing = await db.one("numbers.by_phone", phone_e164=phone)
    assert existing is not None
    if existing["tenant_id"] != tenant_id:
        raise NumberError(f"{phone} already belongs to another tenant")
    return int(existing["id"])


# --- the sending-numbers API and admin page (pack §13, §17) -------------------------------
# Functions below raise the domain errors of `smsapp.fields` (answered as HTTP by routes);
# writes take an `Executor`: call them inside `db.transaction()` with the audit entry.

KINDS = ("phone", "alphanumeric")
PROVIDERS = ("sandbox", "twilio")
# `PATCH /api/sending-numbers/{id}` fields; `POST` also takes them, after `phone`/`sender_id`.
UPDATE_FIELDS = (
    "per_minute_limit",
    "daily_cap",
    "warmup_started_on",
    "active",
    "registered",
    "provider",
)
CREATE_FIELDS = ("phone", "sender_id", *UPDATE_FIELDS)
PER_MINUTE_RANGE = (1, 10_000)  # segments per minute
DAILY_CAP_RANGE = (1, 1_000_000)  # segments per day
# Segments a number may send on day 0, 1, 2, … since warmup_started_on (pack §13); then its
# daily_cap. Never more than daily_cap on any day.
WARMUP_SCHEDULE = (200, 400, 800, 1_600, 3_200, 6_400)
ISO_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


def warmup_allowance(started_on: date | None, today: date, daily_cap: int) -> int:
    """Segments the number may send on `today` (the tenant's local date). No start date
    means a warm number: its daily_cap."""
    if started_on is None:
        return daily_cap
    day = max(0, (today - started_on).days)
    if day < len(WARMUP_SCHEDULE):
        return min(WARMUP_SCHEDULE[day], daily_cap)
    return daily_cap


def number_json(row: Row, today: date) -> dict[str, Any]:
    """The API's sending number. `phone_e164` holds the sender ID when kind is
    `alphanumeric`; `warmup_limit_today` is what the warm-up allows on the tenant's today."""
    return {
        "id": row["id"],
        "phone_e164": row["phone_e164"],
        "kind": row["kind"],
        "registered": bool(row["registered"]),
        "provider": row["provider"],
        "warmup_started_on": row["warmup_started_on"].isoformat()
        if row["warmup_started_on"]
        else None,
        "daily_cap": row["daily_cap"],
        "per_minute_limit": row["per_minute_limit"],
        "warmup_limit_today": warmup_allowance(
            row["warmup_started_on"], today, int(row["daily_cap"])
        ),
        "active": bool(row["active"]),
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
    }


async def list_numbers(db: Executor, *, tenant_id: int) -> list[Row]:
    return await db.all("sending_numbers.list", tenant_id=tenant_id)


async def get_number(db: Executor, *, tenant_id: int, number_id: int) -> Row:
    row = await db.one("sending_numbers.get", id=number_id, tenant_id=tenant_id)
    if row is None:
        raise NotFound("sending number")
    return row


def _warmup_date(value: object, today: date) -> date | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    text = value.strip() if isinstance(value, str) else ""
    try:
        parsed = date.fromisoformat(text) if ISO_DATE.match(text) else None
    except ValueError:
        parsed = None
    if parsed is None:
        raise InvalidInput(
            f"warmup_started_on {value!r} is not a date as YYYY-MM-DD (or null)",
            field="warmup_started_on",
        )
    if parsed > today:
        raise InvalidInput(
            f"warmup_started_on {text} is in the future (today is {today.isoformat()})",
            field="warmup_started_on",
        )
    return parsed


def _whole(value: object, field: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{field} must be a whole number", field=field)
    if not low <= value <= high:
        raise InvalidInput(f"{field} must be between {low:,} and {high:,}", field=field)
    return value


def _flag(value: object, field: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidInput(f"{field} must be true or false", field=field)
    return value


def new_number_values(row: Row, body: dict[str, Any], today: date) -> dict[str, Any]:
    """The stored values after applying a partial update to `row`."""
    check_fields(body, UPDATE_FIELDS)
    values = {field: row[field] for field in UPDATE_FIELDS}
    for field, value in body.items():
        if field == "per_minute_limit":
            values[field] = _whole(value, field, *PER_MINUTE_RANGE)
        elif field == "daily_cap":
            values[field] = _whole(value, field, *DAILY_CAP_RANGE)
        elif field == "warmup_started_on":
            values[field] = _warmup_date(value, today)
        elif field in ("active", "registered"):
            values[field] = _flag(value, field)
        elif field == "provider":
            if value not in PROVIDERS:
                raise InvalidInput(
                    f"provider must be one of {', '.join(PROVIDERS)}", field="provider"
                )
            values[field] = value
    if values["registered"] and row["kind"] != "alphanumeric":
        raise InvalidInput(
            "registered is the Sender ID Register flag: it applies to sender IDs only",
            field="registered",
        )
    values["active"] = bool(values["active"])
    values["registered"] = bool(values["registered"])
    return values


def _change_json(field: str, value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value


async def update_number(
    db: Executor,
    clock: Clock,
    *,
    tenant_id: int,
    number_id: int,
    body: dict[str, Any],
    today: date,
) -> tuple[Row, dict[str, dict[str, Any]]]:
    """Change a number's limits, warm-up, provider or flags: (the row after, the changes as
    {field: {"from", "to"}}). Nothing is written when nothing changes."""
    row = await db.one("sending_numbers.get_for_update", id=number_id, tenant_id=tenant_id)
    if row is None:
        raise NotFound("sending number")
    values = new_number_values(row, body, today)
    changes = {
        field: {"from": _change_json(field, row[field]), "to": _change_json(field, value)}
        for field, value in values.items()
        if row[field] != value
    }
    if not changes:
        return row, {}
    await db.run(
        "sending_numbers.update", id=number_id, tenant_id=tenant_id, now=clock.now(), **values
    )
    # New limits, a new warm-up start or a number (re)activated: jobs held for those go now.
    await release_held(db, tenant_id=tenant_id, gates=("rate_limit", "warmup"), numbers=True,
                       now=clock.now())  # fmt: skip
    return await get_number(db, tenant_id=tenant_id, number_id=number_id), changes


def number_identity(body: dict[str, Any], region: str) -> tuple[str, str]:
    """(value, kind) from {"phone"} (normalised as an import would, in the tenant's default
    country; SMS-capable numbers only) or {"sender_id"} (1–11 letters, digits or spaces, at
    least one letter)."""
    check_fields(body, CREATE_FIELDS)
    has_phone, has_sender = body.get("phone") is not None, body.get("sender_id") is not None
    if has_phone == has_sender:
        raise InvalidInput(
            'give either "phone" (a mobile number) or "sender_id" (an alphanumeric sender '
            "ID of at most 11 characters)",
            field="phone" if not has_phone else "sender_id",
        )
    if has_phone:
        return require_phone(body["phone"], region), "phone"
    raw = body["sender_id"]
    sender_id = " ".join(raw.split()) if isinstance(raw, str) else ""
    if not is_alphanumeric_sender(sender_id):
        raise InvalidInput(
            f"sender_id {raw!r} must be 1–11 letters, digits or spaces with at least one letter",
            code="invalid_sender_id",
            field="sender_id",
        )
    return sender_id, "alphanumeric"


async def _holder(db: Executor, value: str, kind: str) -> Row | None:
    if kind == "alphanumeric":
        return await db.one("sending_numbers.sender_id_holder", sender_id=value)
    return await db.one("sending_numbers.holder", phone_e164=value)


def _taken(holder: Row, value: str, tenant_id: int) -> Conflict:
    if holder["tenant_id"] == tenant_id:
        return Conflict(
            f"{holder.get('phone_e164') or value} is already one of your sending numbers",
            code="already_added",
            id=holder["id"],
        )
    return Conflict(f"{value} belongs to another account", code="number_taken")


async def create_number(
    db: Executor,
    clock: Clock,
    *,
    tenant_id: int,
    body: dict[str, Any],
    region: str,
    today: date,
    default_provider: str,
) -> Row:
    """Add a number or sender ID (warm-up starting `today`), then apply any other fields of
    `body` as an update would. Taken by this tenant or another: Conflict (409)."""
    value, kind = number_identity(body, region)
    holder = await _holder(db, value, kind)
    if holder is not None:
        raise _taken(holder, value, tenant_id)
    row = await db.one(
        "sending_numbers.insert",
        tenant_id=tenant_id,
        phone_e164=value,
        kind=kind,
        provider=default_provider,
        warmup_started_on=today,
        now=clock.now(),
    )
    if row is None:  # added concurrently
        holder = await _holder(db, value, kind)
        assert holder is not None
        raise _taken(holder, value, tenant_id)
    rest = {k: v for k, v in body.items() if k in UPDATE_FIELDS}
    changes: dict[str, dict[str, Any]] = {}
    if rest:  # an update that changes something releases the held jobs itself
        row, changes = await update_number(
            db, clock, tenant_id=tenant_id, number_id=int(row["id"]), body=rest, today=today
        )
    if not changes:
        await release_held(db, tenant_id=tenant_id, gates=("rate_limit", "warmup"),
                           numbers=True, now=clock.now())  # fmt: skip
    return row
