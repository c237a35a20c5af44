"""`smsapp bench send --jobs N [--backend sqlite|postgresql]`: the send loop draining one
campaign of N queued jobs through every gate (pause, budget, DNC, suppression, quiet hours,
rate limits, warm-up), with an in-process provider that answers at once and limits lifted
(pack §16 target: ≥ 2,000 messages/s).

Its ceiling, measured in the same run on a second campaign of N jobs: the bare claim loop —
take a batch of due jobs (SKIP LOCKED on PostgreSQL) and mark them sent, one transaction a
batch, with no gate, no reservation, no provider and no events.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from datetime import datetime
from typing import Any

from smsapp.bench.scratch import DEFAULT_PG_URL, scratch_database
from smsapp.campaigns import create_campaign, create_template
from smsapp.clock import SystemClock
from smsapp.config import DatabaseUrl, Settings
from smsapp.db import Database, Sql, open_database
from smsapp.engine.providers import Accepted, Outgoing
from smsapp.engine.sender import Sender, SenderConfig
from smsapp.numbers import add_sending_number
from smsapp.queue_builder import queue_campaign
from smsapp.tenancy import create_tenant

ALL_DAY = {d: [["00:00", "24:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
BATCH = 500


class InstantProvider:
    """Answers every send at once, as a provider with no latency would."""

    name = "instant"
    can_reconcile = True

    async def send(self, outgoing: Outgoing) -> Accepted:
        return Accepted(provider_message_id="SM" + uuid.uuid4().hex, status="queued")

    async def find(self, outgoing: Outgoing, since: datetime) -> Accepted | None:
        return None


async def _campaign(
    db: Database, clock: SystemClock, settings: Settings, tenant_id: int, name: str
) -> int:
    template = await create_template(
        db, clock, tenant_id=tenant_id, body={"name": name, "body": "Hi {first_name}, sale on now"}
    )
    campaign_id = await create_campaign(
        db,
        clock,
        tenant_id=tenant_id,
        created_by=None,
        body={"name": name, "template_ids": [template["id"]]},
    )
    await queue_campaign(db, clock, settings, tenant_id=tenant_id, campaign_id=campaign_id)
    return campaign_id


async def _tenant(db: Database, clock: SystemClock, slug: str, jobs: int) -> int:
    tenant_id = await create_tenant(db, clock, name=slug.title(), slug=slug)
    await db.run(
        Sql(
            "UPDATE tenants SET send_window = :w, respect_public_holidays = FALSE, "
            "rate_limit_per_minute = 100000, cooldown_hours = 0 WHERE id = :t"
        ),
        w=ALL_DAY,
        t=tenant_id,
    )
    # A budget far above the campaign's cost: the gate is checked, never the one that holds.
    await db.run(
        Sql(
            "INSERT INTO budgets (tenant_id, daily_limit, monthly_limit, created_at, "
            "updated_at) VALUES (:t, 10000000000000, 10000000000000, :now, :now)"
        ),
        t=tenant_id,
        now=clock.now(),
    )
    for n in range(2):
        await add_sending_number(
            db, clock, tenant_id=tenant_id, value=f"+6140000{tenant_id:03d}{n}"
        )
    await db.run(
        Sql(
            "UPDATE sending_numbers SET per_minute_limit = 10000, daily_cap = 1000000, "
            "warmup_started_on = NULL WHERE tenant_id = :t"
        ),
        t=tenant_id,
    )
    now = clock.now()
    await db.run_many(
        Sql(
            "INSERT INTO contacts (tenant_id, phone_e164, first_name, country, state, tags, "
            "consent_source, consent_at, created_at, updated_at) "
            "VALUES (:t, :p, 'Pat', 'AU', 'NSW', '[]', 'bench', :now, :now, :now)"
        ),
        [{"t": tenant_id, "p": f"+614{tenant_id:02d}{n:06d}", "now": now} for n in range(jobs)],
    )
    # A few on the DNC list and under suppression, so those gates find something.
    await db.run(
        Sql(
            "INSERT INTO do_not_contact (tenant_id, phone_e164, source, created_at) "
            "SELECT tenant_id, phone_e164, 'manual', created_at FROM contacts "
            "WHERE tenant_id = :t AND id % 101 = 0"
        ),
        t=tenant_id,
    )
    return tenant_id


async def _measure(url: DatabaseUrl, settings: Settings, jobs: int) -> dict[str, Any]:
    db = await open_database(url)
    clock = SystemClock()
    try:
        tenant_id = await _tenant(db, clock, "bench", jobs)
        await _campaign(db, clock, settings, tenant_id, "Bench")
        # DNC'd after enqueue: the send-time gate skips them (not the queue builder).
        await db.run(
            Sql(
                "INSERT INTO do_not_contact (tenant_id, phone_e164, source, created_at) "
                "SELECT tenant_id, phone_e164, 'manual', created_at FROM contacts "
                "WHERE tenant_id = :t AND id % 103 = 0 "
                "ON CONFLICT DO NOTHING"
            ),
            t=tenant_id,
        )
        sender = Sender(db, clock, InstantProvider(), config=SenderConfig(batch_size=BATCH))
        started = time.perf_counter()
        sent = skipped = 0
        while True:
            done = await sender.run_once()
            sent += done.sent
            skipped += done.skipped
            if not done.claimed and not done.skipped and not done.deferred:
                break
        ours = time.perf_counter() - started

        ceiling_tenant = await _tenant(db, clock, "ceiling", jobs)
        ceiling_campaign = await _campaign(db, clock, settings, ceiling_tenant, "Ceiling")
        claim = Sql(
            "UPDATE send_jobs SET status = 'sent', attempt_id = id, sent_at = :now, "
            "updated_at = :now WHERE id IN (SELECT id FROM send_jobs WHERE campaign_id = :c "
            "AND status = 'queued' AND next_attempt_at <= :now ORDER BY next_attempt_at, id "
            f"LIMIT {BATCH}"
            + (" FOR UPDATE SKIP LOCKED" if db.dialect == "postgresql" else "")
            + ")"
        )
        started = time.perf_counter()
        claimed = 0
        while True:
            async with db.transaction() as tx:
                n = await tx.run(claim, c=ceiling_campaign, now=clock.now())
            claimed += n
            if n == 0:
                break
        ceiling = time.perf_counter() - started
        statuses = {
            r["status"]: r["n"]
            for r in await db.all(
                Sql(
                    "SELECT j.status, count(*) AS n FROM send_jobs j JOIN campaigns c "
                    "ON c.id = j.campaign_id WHERE c.tenant_id = :t GROUP BY j.status"
                ),
                t=tenant_id,
            )
        }
    finally:
        await db.close()
    return {
        "sent": sent,
        "skipped": skipped,
        "statuses": statuses,
        "seconds": round(ours, 3),
        "messages_per_second": round(sent / ours, 1),
        "ceiling_claim_loop_seconds": round(ceiling, 3),
        "ceiling_per_second": round(claimed / ceiling, 1),
        "ratio": round(ceiling / ours, 3),
        "target_per_second": 2000,
    }


def run(settings: Settings, argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="smsapp bench send")
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    args = parser.parse_args(argv)
    if args.jobs < 1:
        raise ValueError("--jobs must be at least 1")
    with scratch_database(args.backend, args.pg_url) as url:
        figures = asyncio.run(_measure(url, settings, args.jobs))
    return {"benchmark": "send", "backend": args.backend, "jobs": args.jobs, **figures}
