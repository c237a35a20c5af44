"""Suppression rules (pack §3, §7): a number held back from campaigns for a while (cooldown,
manual, complaint, bounce) or for good (`expires_at` NULL). A rule is active while
`expires_at IS NULL OR expires_at > now`, now from the app clock. Writes take an `Executor`:
call them inside `db.transaction()`, with the caller's audit entry."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from smsapp.clock import Clock
from smsapp.db import Executor, Row
from smsapp.fields import (
    InvalidInput,
    NotFound,
    TenantDefaults,
    check_fields,
    iso,
    optional_text,
    parse_instant,
    require_phone,
)

KINDS = ("cooldown", "manual", "complaint", "bounce")
FIELDS = ("phone", "kind", "reason", "expires_at")


def rule_json(row: Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "phone_e164": row["phone_e164"],
        "contact_id": row["contact_id"],
        "kind": row["kind"],
        "reason": row["reason"],
        "expires_at": iso(row["expires_at"]),
        "created_at": iso(row["created_at"]),
    }


def rule_values(body: dict[str, Any], *, defaults: TenantDefaults, now: datetime) -> dict[str, Any]:
    """The columns of a new rule from a request body: {"phone", "kind", "reason"?,
    "expires_at"?}; the phone normalised in the tenant's default country."""
    check_fields(body, FIELDS)
    phone_e164 = require_phone(body.get("phone"), defaults.country)
    kind = body.get("kind")
    if kind not in KINDS:
        raise InvalidInput(f"kind must be one of {', '.join(KINDS)}", field="kind")
    expires_at = parse_instant(body.get("expires_at"), "expires_at", defaults.timezone)
    if expires_at is not None and expires_at <= now:
        raise InvalidInput(
            "expires_at must be in the future (or null: no expiry)", field="expires_at"
        )
    return {
        "phone_e164": phone_e164,
        "kind": kind,
        "reason": optional_text(body, "reason", max_length=500),
        "expires_at": expires_at,
    }


async def add_rule(
    tx: Executor,
    clock: Clock,
    *,
    tenant_id: int,
    defaults: TenantDefaults,
    body: dict[str, Any],
    created_by: int | None,
) -> Row:
    now = clock.now()
    values = rule_values(body, defaults=defaults, now=now)
    await tx.stop_lock(tenant_id)  # a suppression is a stop too (pack §7)
    row = await tx.one(
        "suppression.insert",
        tenant_id=tenant_id,
        contact_id=None,
        created_by=created_by,
        now=now,
        **values,
    )
    assert row is not None
    return row


async def delete_rule(tx: Executor, *, tenant_id: int, rule_id: int) -> Row:
    row = await tx.one("suppression.delete", tenant_id=tenant_id, id=rule_id)
    if row is None:
        raise NotFound("suppression rule")
    return row


async def list_active_rules(
    db: Executor, *, tenant_id: int, now: datetime, limit: int, offset: int
) -> tuple[list[Row], int]:
    """One page of the active rules, newest first, and how many are active."""
    rows = await db.all(
        "suppression.list_active", tenant_id=tenant_id, now=now, limit=limit, offset=offset
    )
    total = await db.val("suppression.count_active", tenant_id=tenant_id, now=now)
    return rows, int(total)


async def active_suppressed_numbers(
    db: Executor, tenant_id: int, phones: list[str], now: datetime
) -> set[str]:
    """The subset of `phones` (E.164) under an active rule, whether the rule names the number
    or the contact that has it, in one query."""
    if not phones:
        return set()
    rows = await db.all("suppression.active_numbers", tenant_id=tenant_id, phones=phones, now=now)
    return {r["phone_e164"] for r in rows}
