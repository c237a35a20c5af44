"""`smsapp bench queue --contacts N [--backend sqlite|postgresql]`: the queue builder over N
consented contacts, every one rendered with its own short link (pack §16 target for issue 5:
100k contacts queued in < 10 s).

Its ceiling is writing the same number of job rows alone, already rendered, through the same
bulk statement in the same run: what queueing would cost with no reading, no lists, no
rendering and no short links.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from smsapp.bench.scratch import DEFAULT_PG_URL, scratch_database
from smsapp.campaigns import create_campaign, create_template
from smsapp.clock import SystemClock
from smsapp.config import DatabaseUrl, Settings
from smsapp.db import Sql, open_database
from smsapp.queue_builder import queue_campaign
from smsapp.tenancy import create_tenant


async def _measure(url: DatabaseUrl, settings: Settings, contacts: int) -> dict[str, Any]:
    db = await open_database(url)
    clock = SystemClock()
    try:
        tenant_id = await create_tenant(db, clock, name="Bench", slug="bench")
        now = clock.now()
        await db.run_many(
            Sql(
                "INSERT INTO contacts (tenant_id, phone_e164, first_name, country, tags, "
                "consent_source, consent_at, created_at, updated_at) "
                "VALUES (:t, :p, :f, 'AU', :tags, 'bench', :now, :now, :now)"
            ),
            [
                {
                    "t": tenant_id,
                    "p": f"+614{n:08d}",
                    "f": f"Person{n}",
                    "tags": ["vip"] if n % 2 else [],
                    "now": now,
                }
                for n in range(contacts)
            ],
        )
        # A few on the DNC list, so the lists are consulted for real.
        await db.run(
            Sql(
                "INSERT INTO do_not_contact (tenant_id, phone_e164, source, created_at) "
                "SELECT tenant_id, phone_e164, 'manual', created_at FROM contacts WHERE id % 97 = 0"
            )
        )
        template = await create_template(
            db, clock, tenant_id=tenant_id,
            body={"name": "Bench", "body": "Hi {first_name}, our sale starts now: {link}"},
        )  # fmt: skip
        campaign_id = await create_campaign(
            db, clock, tenant_id=tenant_id, created_by=None,
            body={"name": "Bench", "template_ids": [template["id"]],
                  "link_url": "https://shop.example/sale"},
        )  # fmt: skip
        started = time.perf_counter()
        result = await queue_campaign(db, clock, settings, tenant_id=tenant_id,
                                      campaign_id=campaign_id)  # fmt: skip
        ours = time.perf_counter() - started

        ceiling_campaign = await create_campaign(
            db, clock, tenant_id=tenant_id, created_by=None,
            body={"name": "Ceiling", "template_ids": [template["id"]],
                  "link_url": "https://shop.example/sale"},
        )  # fmt: skip
        ids = [r["id"] for r in await db.all(Sql("SELECT id FROM contacts ORDER BY id"))]
        rows = [
            {"tenant_id": tenant_id, "campaign_id": ceiling_campaign, "contact_id": c,
             "template_id": template["id"], "body": f"Hi Person{c}, our sale starts now: "
             "https://go.example/s/abcdefghij\nBench: reply STOP to opt out", "parts": 1,
             "encoding": "GSM-7", "status": "queued", "reason": None, "unit_price": 55000,
             "cost_estimate": 55000, "now": now}
            for c in ids
        ]  # fmt: skip
        started = time.perf_counter()
        async with db.transaction() as tx:
            await tx.bulk("campaigns.insert_jobs", rows)
        ceiling = time.perf_counter() - started
    finally:
        await db.close()
    return {
        "jobs_created": result.added,
        "seconds": round(ours, 3),
        "per_second": round(contacts / ours, 1),
        "ceiling_bulk_insert_seconds": round(ceiling, 3),
        "ceiling_per_second": round(contacts / ceiling, 1),
        "ratio": round(ceiling / ours, 3),
    }


def run(settings: Settings, argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="smsapp bench queue")
    parser.add_argument("--contacts", type=int, default=10_000)
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    args = parser.parse_args(argv)
    if args.contacts < 1:
        raise ValueError("--contacts must be at least 1")
    with scratch_database(args.backend, args.pg_url) as url:
        figures = asyncio.run(_measure(url, settings, args.contacts))
    return {"benchmark": "queue", "backend": args.backend, "contacts": args.contacts, **figures}
