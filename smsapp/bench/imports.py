"""`smsapp bench import --rows N [--backend sqlite|postgresql]`: a contacts import, dry-run
then commit, through the same service functions the API calls (pack §16 targets: 1k rows
dry-run < 1 s and commit < 2 s; 100k rows both < 12 s in < 300 MB).

Its ceiling is the phone parsing that every import must do once per row: `phonenumbers`
parse + validate of the same numbers, timed in the same run. A tenth of the rows already
exist (updates), a few are invalid, duplicated, on the DNC list or under a cooldown, so every
decision is taken. The worker processes that parse the phones are started before timing, as
`smsapp serve` starts them with the app. `peak_rss_mb` is this process's peak (the app's, in
which the import runs); `worker_peak_rss_mb` that of the largest worker process.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import random
import resource
import time
from typing import Any

import phonenumbers

from smsapp.bench.scratch import DEFAULT_PG_URL, scratch_database
from smsapp.clock import SystemClock
from smsapp.config import DatabaseUrl, Settings
from smsapp.db import Sql, open_database
from smsapp.imports.service import Actor, commit, dry_run
from smsapp.tenancy import create_tenant
from smsapp.workers import shutdown_pool, warm_up, worker_count

MAPPING = {"phone": "Mobile", "email": "Email", "first_name": "First Name",
           "last_name": "Last Name", "state": "State", "tags": "Tags", "tier": "Tier"}  # fmt: skip
STATES = ("NSW", "VIC", "QLD", "WA", "SA", "TAS", "ACT", "NT", "")


def make_csv(rows: int, seed: int = 7) -> tuple[bytes, list[str]]:
    rng = random.Random(seed)
    numbers = rng.sample(range(10_000_000, 99_999_999), rows)
    out = io.StringIO()
    out.write("Mobile,Email,First Name,Last Name,State,Tags,Tier\n")
    phones: list[str] = []
    for n, number in enumerate(numbers):
        phone = f"04{number:08d}"
        if n % 97 == 0:
            phone = "not a phone"
        elif n % 101 == 0 and phones:
            phone = phones[-1]  # a duplicate of the row before
        phones.append(phone)
        email = f"person{n}@example.com" if n % 3 else ""
        out.write(
            f"{phone},{email},Person{n},Surname{n % 50},{STATES[n % len(STATES)]},"
            f"tag{n % 5},tier{n % 3}\n"
        )
    return out.getvalue().encode(), phones


def _parse_ceiling(phones: list[str]) -> float:
    started = time.perf_counter()
    for raw in phones:
        try:
            number = phonenumbers.parse(raw, "AU")
            phonenumbers.is_valid_number(number)
            phonenumbers.number_type(number)
        except phonenumbers.NumberParseException:
            pass
    return len(phones) / (time.perf_counter() - started)


async def _measure(url: DatabaseUrl, rows: int) -> dict[str, Any]:
    data, phones = make_csv(rows)
    db = await open_database(url)
    clock = SystemClock()
    try:
        tenant_id = await create_tenant(db, clock, name="Bench", slug="bench")
        now = clock.now()
        # A tenth of the numbers exist already (updates) and a few are on the DNC list.
        existing = [p for p in phones[: rows // 10] if p.startswith("04")]
        await db.run_many(
            Sql(
                "INSERT INTO contacts (tenant_id, phone_e164, created_at, updated_at) "
                "VALUES (:t, :p, :now, :now)"
            ),
            [{"t": tenant_id, "p": "+61" + p[1:], "now": now} for p in dict.fromkeys(existing)],
        )
        for p in phones[rows // 2 : rows // 2 + 20]:
            if p.startswith("04"):
                await db.run(
                    Sql(
                        "INSERT INTO do_not_contact (tenant_id, phone_e164, source, created_at) "
                        "VALUES (:t, :p, 'manual', :now) ON CONFLICT DO NOTHING"
                    ),
                    t=tenant_id,
                    p="+61" + p[1:],
                    now=now,
                )
        # And a few are under a cooldown (a rule by number), so every decision is taken.
        await db.run_many(
            Sql(
                "INSERT INTO suppression_rules (tenant_id, phone_e164, kind, expires_at, "
                "created_at) VALUES (:t, :p, 'cooldown', NULL, :now)"
            ),
            [
                {"t": tenant_id, "p": "+61" + p[1:], "now": now}
                for p in dict.fromkeys(phones[rows // 3 : rows // 3 + 20])
                if p.startswith("04")
            ],
        )
        # As in `smsapp serve`, which starts its worker processes with the app.
        for ready in warm_up():
            ready.result()
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        actor = Actor(user_id=None, api_key_id=None)
        started = time.perf_counter()
        result = await dry_run(
            db,
            clock,
            tenant_id=tenant_id,
            actor=actor,
            filename="bench.csv",
            data=data,
            mapping=MAPPING,
        )
        dry_seconds = time.perf_counter() - started
        started = time.perf_counter()
        committed = await commit(
            db,
            clock,
            tenant_id=tenant_id,
            import_id=result.import_id,
            actor=actor,
            confirmed_by_email=None,
        )
        commit_seconds = time.perf_counter() - started
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    finally:
        await db.close()
    return {
        "dry_run_seconds": round(dry_seconds, 3),
        "commit_seconds": round(commit_seconds, 3),
        "total_seconds": round(dry_seconds + commit_seconds, 3),
        "counts": committed.counts,
        "peak_rss_mb": round(rss_after / 1024, 1),
        "rss_growth_mb": round((rss_after - rss_before) / 1024, 1),
        "ceiling_phone_parse_per_second": round(_parse_ceiling(phones), 1),
    }


def run(settings: Settings, argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="smsapp bench import")
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    args = parser.parse_args(argv)
    if args.rows < 10:
        raise ValueError("--rows must be at least 10")
    try:
        with scratch_database(args.backend, args.pg_url) as url:
            figures = asyncio.run(_measure(url, args.rows))
    finally:
        shutdown_pool()
    # The worker processes have ended (shutdown waits for them): the largest one's peak.
    workers_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    parse_floor = args.rows / figures["ceiling_phone_parse_per_second"]
    return {
        "benchmark": "import",
        "backend": args.backend,
        "rows": args.rows,
        **figures,
        "worker_peak_rss_mb": round(workers_peak / 1024, 1),
        "workers": worker_count(),
        # The import's processes together, at most: this one's peak plus every worker's.
        "all_processes_peak_rss_mb": round(
            (figures["peak_rss_mb"] * 1024 + worker_count() * workers_peak) / 1024, 1
        ),
        "phone_parsing_alone_seconds": round(parse_floor, 3),
        "ratio_to_parsing_floor": round(figures["total_seconds"] / parse_floor, 2),
    }
