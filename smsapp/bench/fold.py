"""`smsapp bench fold [--backend sqlite|postgresql] [--links 1000] [--hits 12000] [--folds 12]
[--gap-us 70]`: the hit writer's fold alone, what each recorded hit costs the database once the
redirect has journaled it (docs/click-integrity.md).

Each round journals `--hits` hits over `--links` links through the real `HitWriter.record` (a
phone browser's User-Agent, one hit every `--gap-us` microseconds of hit time, links chosen at
random: at the default, each link is hit about a dozen times a second, as in `bench redirect`,
so most hits are bursts), then times `HitWriter.fold`, which decides, writes and counts them.
Its ceiling, the same round: the same hits written by one bare `INSERT … SELECT` from the same
JSON array, nothing decided, no counters, no events, in a transaction of its own. Both write
into the same table, so it grows alike for both.

It reports, per hit and as medians over the rounds: the fold's wall time, the CPU time of the
benchmark's process (all its threads: on SQLite, the database's work itself, on the writer
connection's thread), and on PostgreSQL the CPU time of the server's processes (read from
Linux's /proc; PostgreSQL on this machine), and the same of the ceiling. On a two-core machine
this CPU is what the fold takes from the redirect while a load goes on. Afterwards the counters
must equal the fold's hits (`counters_exact`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import tempfile
import time
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from smsapp.bench.redirect import UA, seed
from smsapp.bench.scratch import DEFAULT_PG_URL, scratch_database
from smsapp.clock import SystemClock
from smsapp.config import DatabaseUrl, Settings
from smsapp.db import Database, Sql, open_database
from smsapp.hit_writer import HitWriter, PendingHit, journal_line

# The ceiling: the hits as the journal has them, inserted with nothing decided.
CEILING = {
    "sqlite": Sql(
        "INSERT INTO short_link_hits (short_link_id, tenant_id, at, is_bot, reason, user_agent, "
        "ip_hash, method, created_at) "
        "SELECT e.value ->> 1, :tenant_id, e.value ->> 2, false, e.value ->> 6, e.value ->> 4, "
        "e.value ->> 5, e.value ->> 3, e.value ->> 2 FROM json_each(:hits) e"
    ),
    "postgresql": Sql(
        "INSERT INTO short_link_hits (short_link_id, tenant_id, at, is_bot, reason, user_agent, "
        "ip_hash, method, created_at) "
        "SELECT CAST(e.v ->> 1 AS bigint), :tenant_id, CAST(e.v ->> 2 AS timestamptz), false, "
        "e.v ->> 6, e.v ->> 4, e.v ->> 5, e.v ->> 3, CAST(e.v ->> 2 AS timestamptz) "
        "FROM jsonb_array_elements(CAST(CAST(:hits AS text) AS jsonb)) AS e(v)"
    ),
}


def postgres_cpu_seconds() -> float | None:
    """The CPU time PostgreSQL's processes on this machine have used so far (their backends,
    WAL writer and checkpointer alike); None where /proc does not show them."""
    total, seen = 0, False
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        if "(postgres)" not in stat:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
        seen = True
    return total / os.sysconf("SC_CLK_TCK") if seen else None


class Meter:
    """Wall time, this process's CPU time and PostgreSQL's, over one measured step."""

    def __init__(self, postgresql: bool) -> None:
        self._postgresql = postgresql
        self.wall: list[float] = []
        self.cpu: list[float] = []
        self.database_cpu: list[float] = []

    async def measure(self, step: Awaitable[object], hits: int) -> None:
        pg_before = postgres_cpu_seconds() if self._postgresql else None
        cpu_before, wall_before = time.process_time(), time.perf_counter()
        await step
        self.wall.append((time.perf_counter() - wall_before) / hits)
        self.cpu.append((time.process_time() - cpu_before) / hits)
        pg_after = postgres_cpu_seconds() if self._postgresql else None
        if pg_before is not None and pg_after is not None:
            self.database_cpu.append((pg_after - pg_before) / hits)

    def figures(self) -> dict[str, float]:
        def us(values: list[float]) -> float:
            return round(statistics.median(values) * 1e6, 2)

        figures = {"wall_us_per_hit": us(self.wall), "process_cpu_us_per_hit": us(self.cpu)}
        if self.database_cpu:
            figures["postgresql_cpu_us_per_hit"] = us(self.database_cpu)
        return figures


async def _measure(url: DatabaseUrl, data_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    tokens = await seed(url, args.links)
    db: Database = await open_database(url)
    try:
        links = await db.all(Sql("SELECT id, token, tenant_id FROM short_links ORDER BY id"))
        tenant_id = links[0]["tenant_id"]
        assert {row["token"] for row in links} == set(tokens)
        writer = HitWriter(db, data_dir, SystemClock())
        pick = random.Random(7)
        at = datetime.now(UTC)
        gap = timedelta(microseconds=args.gap_us)
        postgresql = url.dialect == "postgresql"
        ours, ceiling = Meter(postgresql), Meter(postgresql)

        async def insert_bare(hits_json: str) -> None:
            async with db.transaction() as tx:
                await tx.run(CEILING[url.dialect], tenant_id=tenant_id, hits=hits_json)

        for _ in range(args.folds):
            hits = []
            for _ in range(args.hits):
                at += gap
                link = pick.choice(links)
                hits.append(PendingHit(link["token"], link["id"], at, "GET", UA, "ab" * 32, None))
            await asyncio.gather(*(writer.record(hit) for hit in hits))
            await ours.measure(writer.fold(), len(hits))
            as_json = "[" + ",".join(journal_line(hit).decode() for hit in hits) + "]"
            await ceiling.measure(insert_bare(as_json), len(hits))
        writer.journal.close(folded=True)
        counted = await db.one(
            Sql(
                "SELECT (SELECT coalesce(sum(clicks_total), 0) FROM short_links) AS clicks, "
                "(SELECT count(*) FROM short_link_hits) AS rows"
            )
        )
    finally:
        await db.close()
    assert counted is not None
    folded = args.hits * args.folds
    ours_figures, ceiling_figures = ours.figures(), ceiling.figures()
    return {
        "ours": ours_figures,
        "ceiling": ceiling_figures,
        "ratio": round(ceiling_figures["wall_us_per_hit"] / ours_figures["wall_us_per_hit"], 3),
        "hits_folded": writer.hits,
        # Every hit folded once, and the counters equal them (the ceiling's rows count no click).
        "counters_exact": writer.hits == folded
        and int(counted["clicks"]) == folded
        and int(counted["rows"]) == 2 * folded,
    }


def run(settings: Settings, argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="smsapp bench fold")
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    parser.add_argument("--links", type=int, default=1000)
    parser.add_argument("--hits", type=int, default=12_000)
    parser.add_argument("--folds", type=int, default=12)
    parser.add_argument("--gap-us", type=int, default=70)
    args = parser.parse_args(argv)
    for name in ("links", "hits", "folds", "gap_us"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be at least 1")
    with (
        scratch_database(args.backend, args.pg_url) as url,
        tempfile.TemporaryDirectory(prefix="smsapp-bench-fold-") as data,
    ):
        figures = asyncio.run(_measure(url, Path(data), args))
    return {
        "benchmark": "fold",
        "backend": args.backend,
        "links": args.links,
        "hits_per_fold": args.hits,
        "folds": args.folds,
        "gap_us": args.gap_us,
        **figures,
    }
