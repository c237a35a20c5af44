"""A tenant's budget (pack §3, §7, §13, §17 `GET|POST /api/tenants/{id}/budget`): daily and
monthly caps in the tenant's timezone, and the spend they are checked against.

Spend is the sum of `costs.amount` (units) of the tenant's local day and month; a cost of
unknown price (amount NULL) counts nothing. The API speaks cents; a limit of null means no
limit. Reservations (cost of jobs being sent, pack §7) belong to the send loop, which adds
them to this spend when it checks a job.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from smsapp.clock import Clock
from smsapp.db import Executor, Row
from smsapp.fields import InvalidInput, check_fields, iso
from smsapp.held_jobs import release_held
from smsapp.money import cents_to_units, units_to_cents
from smsapp.tenant_settings import lock_tenant

FIELDS = ("daily_limit", "monthly_limit", "alert_threshold_pct")
DEFAULT_THRESHOLD_PCT = 80
THRESHOLD_RANGE = (1, 100)
MAX_LIMIT_CENTS = 100_000_000_000  # $1 billion: exact as a JSON number, far beyond any use
CURRENCY = "AUD"


@dataclass(frozen=True)
class Periods:
    """The tenant's current local day and month, as half-open UTC ranges."""

    day: date
    day_start: datetime
    day_end: datetime
    month_start: datetime
    month_end: datetime


def _local_midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def periods(now: datetime, tz: str) -> Periods:
    """Day and month boundaries at local midnight in `tz` (a 23- or 25-hour day when the
    clocks change is still one day)."""
    zone = ZoneInfo(tz)
    today = now.astimezone(zone).date()
    first = today.replace(day=1)
    next_first = (first + timedelta(days=32)).replace(day=1)
    return Periods(
        day=today,
        day_start=_local_midnight(today, zone),
        day_end=_local_midnight(today + timedelta(days=1), zone),
        month_start=_local_midnight(first, zone),
        month_end=_local_midnight(next_first, zone),
    )


@dataclass(frozen=True)
class Spend:
    today: int  # units
    month: int  # units
    periods: Periods


async def spend(db: Executor, *, tenant_id: int, tz: str, now: datetime) -> Spend:
    """The tenant's spend of its local day and month so far, from `costs`."""
    p = periods(now, tz)
    row = await db.one(
        "budget_settings.spend",
        tenant_id=tenant_id,
        day_start=p.day_start,
        day_end=p.day_end,
        month_start=p.month_start,
        month_end=p.month_end,
    )
    assert row is not None
    return Spend(int(row["today"]), int(row["month"]), p)


def validate_limit(value: object, field: str) -> int | None:
    """A cap in cents (>= 0, up to four decimals) as units; null means no cap."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InvalidInput(f"{field} must be a number of cents or null", field=field)
    if isinstance(value, str) and not value.strip():
        return None
    try:
        units = cents_to_units(value)
    except ValueError as exc:
        raise InvalidInput(f"{field}: {exc}", field=field) from None
    if units < 0 or units > cents_to_units(MAX_LIMIT_CENTS):
        raise InvalidInput(
            f"{field} must be between 0 and {MAX_LIMIT_CENTS:,} cents, or null for no limit",
            field=field,
        )
    return units


def validate_threshold(value: object) -> int:
    low, high = THRESHOLD_RANGE
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInput(
            f"alert_threshold_pct must be a whole number from {low} to {high}",
            field="alert_threshold_pct",
        )
    return value


async def get_budget(db: Executor, tenant_id: int) -> Row | None:
    return await db.one("budget_settings.get", tenant_id=tenant_id)


def _stored(budget: Row | None) -> dict[str, Any]:
    if budget is None:
        return {"daily_limit": None, "monthly_limit": None, "alert_threshold_pct": 80}
    return {field: budget[field] for field in FIELDS}


def _cents(units: int | None) -> int | float | None:
    return None if units is None else units_to_cents(int(units))


def limits_json(values: dict[str, Any]) -> dict[str, Any]:
    return {
        "daily_limit": _cents(values["daily_limit"]),
        "monthly_limit": _cents(values["monthly_limit"]),
        "alert_threshold_pct": values["alert_threshold_pct"],
    }


def budget_json(budget: Row | None, current: Spend, tz: str) -> dict[str, Any]:
    """`GET /api/tenants/{id}/budget`: the caps (cents, null = no cap) and the spend of the
    tenant's current local day and month (cents)."""
    return {
        **limits_json(_stored(budget)),
        "spend_today": units_to_cents(current.today),
        "spend_month": units_to_cents(current.month),
        "currency": CURRENCY,
        "timezone": tz,
        "today": current.periods.day.isoformat(),
        "month": current.periods.day.strftime("%Y-%m"),
        "configured": budget is not None,
        "updated_at": iso(budget["updated_at"]) if budget is not None else None,
    }


def new_limits(budget: Row | None, body: dict[str, Any]) -> dict[str, Any]:
    """The stored values after `body`: a field left out keeps its value (a new budget starts
    with no caps and an 80 % alert threshold)."""
    check_fields(body, FIELDS)
    values = _stored(budget)
    for field in ("daily_limit", "monthly_limit"):
        if field in body:
            values[field] = validate_limit(body[field], field)
    if "alert_threshold_pct" in body:
        values["alert_threshold_pct"] = validate_threshold(body["alert_threshold_pct"])
    return values


async def set_budget(
    db: Executor, clock: Clock, *, tenant_id: int, body: dict[str, Any]
) -> tuple[Row, dict[str, dict[str, Any]]]:
    """Create or change the tenant's budget: (the budget row, the changes as {field: {"from",
    "to"}} in cents). Call inside a transaction."""
    # The stop rule (pack §7): a lowered cap holds for every provider call after this answers.
    await db.stop_lock(tenant_id)
    await lock_tenant(db, tenant_id)
    budget = await get_budget(db, tenant_id)
    values = new_limits(budget, body)
    before, after = limits_json(_stored(budget)), limits_json(values)
    changes = {
        field: {"from": before[field], "to": after[field]}
        for field in FIELDS
        if before[field] != after[field]
    }
    if budget is None or changes:
        await db.run("budget_settings.upsert", tenant_id=tenant_id, now=clock.now(), **values)
        # Raised or removed caps: what they held is checked again at once.
        await release_held(db, tenant_id=tenant_id, gates=("budget", "price_unknown"),
                           now=clock.now())  # fmt: skip
    row = await get_budget(db, tenant_id)
    assert row is not None
    return row, changes
