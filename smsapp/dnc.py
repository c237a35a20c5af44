"""The do-not-contact list (pack §3, §10): numbers never sent a campaign message again.

Every single write goes through `add_to_dnc` and `remove_from_dnc`, whatever the source (API,
admin page, unsubscribe link, provider error), so that the stop rule of pack §7 has one place to
hold its lock. Call them inside `db.transaction()`, with the caller's audit entry. The one
exception is inbound STOP/START texts, written set-based per batch by `smsapp.inbound`
(`inbound.sql`), which takes every batch tenant's stop lock first, the same rule.
"""

from __future__ import annotations

import csv
import io
from typing import Any, Literal

from smsapp.clock import Clock
from smsapp.csv_safety import neutralise
from smsapp.db import Executor, Row
from smsapp.fields import TenantDefaults, check_fields, iso, optional_text, require_phone

Source = Literal["stop_keyword", "unsubscribe_link", "provider", "manual", "api"]
SOURCES: tuple[Source, ...] = ("stop_keyword", "unsubscribe_link", "provider", "manual", "api")
CSV_COLUMNS = ("phone_e164", "source", "reason", "created_at")
MAX_REASON = 500


def dnc_json(row: Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "phone_e164": row["phone_e164"],
        "source": row["source"],
        "reason": row["reason"],
        "created_at": iso(row["created_at"]),
    }


def entry_values(body: dict[str, Any], defaults: TenantDefaults) -> tuple[str, str | None]:
    """(phone_e164, reason) from {"phone", "reason"?}: the number normalised as an import
    would, in the tenant's default country."""
    check_fields(body, ("phone", "reason"))
    phone_e164 = require_phone(body.get("phone"), defaults.country)
    return phone_e164, optional_text(body, "reason", max_length=MAX_REASON)


async def add_to_dnc(
    db: Executor,
    clock: Clock,
    *,
    tenant_id: int,
    phone_e164: str,
    source: Source,
    reason: str | None,
    created_by: int | None,
) -> tuple[Row, bool]:
    """Put a number on the list: (its entry, True) when new, (the existing entry, False) when
    it was already there (the first entry's source and reason are kept)."""
    # The stop rule (pack §7): no provider call checked before this write may still start
    # once it has answered. Taken before any other lock (see smsapp.db.stop_lock).
    await db.stop_lock(tenant_id)
    row = await db.one(
        "dnc.insert",
        tenant_id=tenant_id,
        phone_e164=phone_e164,
        source=source,
        reason=reason,
        created_by=created_by,
        now=clock.now(),
    )
    if row is not None:
        return row, True
    existing = await db.one("dnc.get", tenant_id=tenant_id, phone_e164=phone_e164)
    assert existing is not None, "the conflicting entry vanished: removed concurrently"
    return existing, False


async def remove_from_dnc(db: Executor, *, tenant_id: int, phone_e164: str) -> Row | None:
    """Take a number off the list (re-subscribes the person): the removed entry, or None."""
    # A later issue takes the per-tenant stop lock here too (pack §7).
    return await db.one("dnc.delete", tenant_id=tenant_id, phone_e164=phone_e164)


async def get_entry(db: Executor, *, tenant_id: int, phone_e164: str) -> Row | None:
    return await db.one("dnc.get", tenant_id=tenant_id, phone_e164=phone_e164)


async def list_entries(
    db: Executor, *, tenant_id: int, limit: int, offset: int
) -> tuple[list[Row], int]:
    """One page of the list, newest first, and its length."""
    rows = await db.all("dnc.list", tenant_id=tenant_id, limit=limit, offset=offset)
    total = await db.val("dnc.count", tenant_id=tenant_id)
    return rows, int(total)


async def numbers_on_dnc(db: Executor, *, tenant_id: int, phones: list[str]) -> set[str]:
    """The subset of `phones` (E.164) on the tenant's list, in one query."""
    rows = await db.all("dnc.numbers_on_list", tenant_id=tenant_id, phones=phones)
    return {r["phone_e164"] for r in rows}


def export_csv(rows: list[Row]) -> str:
    """The list as CSV. The phone column holds validated E.164 numbers and is written as is;
    every other cell is neutralised against formula injection (see `smsapp.csv_safety`)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for r in rows:
        writer.writerow(
            [
                r["phone_e164"],
                neutralise(r["source"]),
                neutralise(r["reason"] or ""),
                neutralise(iso(r["created_at"]) or ""),
            ]
        )
    return out.getvalue()
