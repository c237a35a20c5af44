"""Releasing jobs a send-time gate holds (pack §7), when what held them changes: a resume
(pause), a budget change (budget, price_unknown), a new price book (price_unknown), a wider
window (quiet_hours), new limits (rate_limit, warmup) or a new or changed sending number.
Held jobs carry `next_attempt_at` = when their gate may open; releasing makes them due now,
and the send loop checks every gate again, in order. Call inside the changing transaction."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from smsapp.db import Executor


async def release_held(
    db: Executor,
    *,
    tenant_id: int,
    gates: Iterable[str],
    now: datetime,
    campaign_id: int | None = None,
    numbers: bool = False,
) -> int:
    """Make due now the tenant's queued jobs held by `gates` (and, with `numbers`, those
    waiting for a sending number of their kind); only one campaign's with `campaign_id`."""
    return await db.run("held_jobs.release", tenant_id=tenant_id, gates=list(gates),
                        numbers=numbers, campaign_id=campaign_id, now=now)  # fmt: skip


async def reprice_waiting_jobs(db: Executor, *, tenant_id: int, now: datetime) -> None:
    """Price the queued jobs whose destination had no price when they were queued."""
    await db.run("held_jobs.reprice", tenant_id=tenant_id, now=now)
    await db.run("held_jobs.reprice_costs", tenant_id=tenant_id)
