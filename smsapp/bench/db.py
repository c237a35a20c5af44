"""`smsapp bench db`: the database interface against the raw driver underneath it.

In a scratch database (a temp SQLite file, or a fresh PostgreSQL database created on the
`--pg-url` server and dropped afterwards), migrated like a real one, it measures

- point reads: one contact by primary key through `db.one`, one call after another;
- bulk insert: `--rows` contacts through `db.run_many` in one call;

and next to each, its ceiling: the same statements, the same rows, run with the bare driver
(`sqlite3` / `asyncpg` on one connection, values already in the driver's native form).
Ours and the ceiling take turns for `--rounds` rounds and each reports its best round, so a
burst of load from elsewhere on the machine moves neither figure much.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sqlite3
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import asyncpg

from smsapp.bench.scratch import DEFAULT_PG_URL, scratch_database
from smsapp.clock import SystemClock
from smsapp.config import DatabaseUrl, Settings
from smsapp.db import Database, Sql, open_database
from smsapp.db.queries import compile_sql
from smsapp.tenancy import create_tenant

DEFAULT_ROWS = 10_000
DEFAULT_READS = 5_000
DEFAULT_ROUNDS = 3
WARMUP_READS = 200

INSERT_CONTACT = (
    "INSERT INTO contacts (tenant_id, phone_e164, first_name, last_name, email, tags, "
    "created_at, updated_at) VALUES (:tenant_id, :phone_e164, :first_name, :last_name, "
    ":email, :tags, :now, :now)"
)
READ_CONTACT = (
    "SELECT id, tenant_id, phone_e164, first_name, last_name, email, tags, created_at "
    "FROM contacts WHERE id = :id"
)


@dataclass(frozen=True)
class Options:
    backend: str
    pg_url: str
    rows: int
    reads: int
    rounds: int


def _parse(argv: list[str]) -> Options:
    parser = argparse.ArgumentParser(
        prog="smsapp bench db",
        description="Point reads and bulk inserts through smsapp.db, against the raw driver.",
    )
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument(
        "--pg-url",
        default=DEFAULT_PG_URL,
        help="server to create the scratch database on (with --backend postgresql)",
    )
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS, help="contacts to insert")
    parser.add_argument("--reads", type=int, default=DEFAULT_READS, help="point reads to time")
    parser.add_argument(
        "--rounds", type=int, default=DEFAULT_ROUNDS, help="turns each; the best one counts"
    )
    args = parser.parse_args(argv)
    if args.rows < 1 or args.reads < 1 or args.rounds < 1:
        raise ValueError("--rows, --reads and --rounds must be at least 1")
    return Options(args.backend, args.pg_url, args.rows, args.reads, args.rounds)


def run(settings: Settings, argv: list[str]) -> dict[str, Any]:
    # `settings` is unused: the benchmark never touches the configured database.
    options = _parse(argv)
    with scratch_database(options.backend, options.pg_url) as url:
        point_reads, bulk_insert = asyncio.run(_measure(url, options))
    return {
        "benchmark": "db",
        "backend": options.backend,
        "rows": options.rows,
        "reads": options.reads,
        "rounds": options.rounds,
        "point_reads": _figure(*point_reads),
        "bulk_insert": _figure(*bulk_insert),
    }


def _figure(ours: float, ceiling: float) -> dict[str, float]:
    return {
        "ours": round(ours, 1),
        "ceiling": round(ceiling, 1),
        "ratio": round(ours / ceiling, 3) if ceiling > 0 else 0.0,
    }


def _contacts(tenant_id: int, rows: int, now: datetime) -> list[dict[str, Any]]:
    return [
        {
            "tenant_id": tenant_id,
            "phone_e164": f"+614{i:08d}",
            "first_name": f"First{i}",
            "last_name": f"Last{i}",
            "email": f"person{i}@example.com",
            "tags": ["bench", f"group{i % 10}"],
            "now": now,
        }
        for i in range(rows)
    ]


async def _measure(
    url: DatabaseUrl, options: Options
) -> tuple[tuple[float, float], tuple[float, float]]:
    """(reads ours, reads ceiling), (inserts ours, inserts ceiling): best rounds, per second.

    In each round the ceiling inserts first, so ours go into the larger table: any bias is
    against us. Every round inserts its own rows, under tenants of its own."""
    clock = SystemClock()
    async with AsyncExitStack() as stack:
        db = await open_database(url)
        stack.push_async_callback(db.close)
        raw = await _open_raw(url)
        stack.push_async_callback(raw.close)

        ours_inserts: list[float] = []
        raw_inserts: list[float] = []
        for round_no in range(options.rounds):
            ours_tenant = await create_tenant(
                db, clock, name="Bench ours", slug=f"bench-ours-{round_no}"
            )
            raw_tenant = await create_tenant(
                db, clock, name="Bench raw", slug=f"bench-raw-{round_no}"
            )
            now = clock.now()
            ours_rows = _contacts(ours_tenant, options.rows, now)
            raw_inserts.append(await raw.insert(_contacts(raw_tenant, options.rows, now)))
            started = time.perf_counter()
            await db.run_many(Sql(INSERT_CONTACT), ours_rows)
            ours_inserts.append(options.rows / (time.perf_counter() - started))

        ids = [
            int(r["id"])
            for r in await db.all(
                Sql("SELECT id FROM contacts WHERE tenant_id = :tenant_id"), tenant_id=ours_tenant
            )
        ]
        sample = _read_sample(ids, options.reads)
        if await db.one(Sql(READ_CONTACT), id=sample[0]) is None:
            raise RuntimeError("bench db: the inserted contacts cannot be read back")
        ours_reads: list[float] = []
        raw_reads: list[float] = []
        for _ in range(options.rounds):
            ours_reads.append(await _our_reads(db, sample))
            raw_reads.append(await raw.reads(sample))
    return (max(ours_reads), max(raw_reads)), (max(ours_inserts), max(raw_inserts))


async def _our_reads(db: Database, sample: list[int]) -> float:
    for contact_id in sample[:WARMUP_READS]:
        await db.one(Sql(READ_CONTACT), id=contact_id)
    started = time.perf_counter()
    for contact_id in sample:
        await db.one(Sql(READ_CONTACT), id=contact_id)
    return len(sample) / (time.perf_counter() - started)


def _read_sample(ids: list[int], reads: int) -> list[int]:
    """`reads` ids in a fixed random order, so each run reads the same way."""
    sample = [ids[i % len(ids)] for i in range(reads)]
    random.Random(42).shuffle(sample)
    return sample


async def _open_raw(url: DatabaseUrl) -> RawDriver:
    if url.sqlite_path is not None:
        return RawSqlite(url.sqlite_path)
    return await RawPostgres.open(url.url)


class RawDriver(Protocol):
    async def insert(self, rows: list[dict[str, Any]]) -> float:
        """Insert `rows` in one executemany; rows per second."""
        ...

    async def reads(self, sample: list[int]) -> float:
        """Read each contact of `sample` by id, one after another; reads per second."""
        ...

    async def close(self) -> None: ...


class RawSqlite:
    """The bare sqlite3 module, on the thread of the event loop: nothing between us and it."""

    def __init__(self, path: Path) -> None:
        self._conn = sqlite3.connect(path, isolation_level=None)
        # The same pragmas as smsapp.db.sqlite's writer, so only the layer above differs.
        self._conn.execute("PRAGMA foreign_keys = ON")
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute("PRAGMA synchronous = NORMAL")

    async def insert(self, rows: list[dict[str, Any]]) -> float:
        # Values in the driver's own form: JSON as text, times as ISO text.
        values = [
            {
                **r,
                "tags": json.dumps(r["tags"], separators=(",", ":")),
                "now": r["now"].astimezone(UTC).isoformat(timespec="microseconds"),
            }
            for r in rows
        ]
        started = time.perf_counter()
        self._conn.execute("BEGIN IMMEDIATE")
        self._conn.executemany(INSERT_CONTACT, values)
        self._conn.execute("COMMIT")
        return len(values) / (time.perf_counter() - started)

    async def reads(self, sample: list[int]) -> float:
        for contact_id in sample[:WARMUP_READS]:
            self._conn.execute(READ_CONTACT, {"id": contact_id}).fetchone()
        started = time.perf_counter()
        for contact_id in sample:
            self._conn.execute(READ_CONTACT, {"id": contact_id}).fetchone()
        return len(sample) / (time.perf_counter() - started)

    async def close(self) -> None:
        self._conn.close()


class RawPostgres:
    """One bare asyncpg connection (no pool, no codecs)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    @classmethod
    async def open(cls, dsn: str) -> RawPostgres:
        return cls(await asyncpg.connect(dsn))

    async def insert(self, rows: list[dict[str, Any]]) -> float:
        insert = compile_sql(INSERT_CONTACT, "postgresql")
        # Values in the driver's own form: jsonb as text (no codec set), times as datetimes.
        values = [
            [
                json.dumps(r[name], separators=(",", ":")) if name == "tags" else r[name]
                for name in insert.params
            ]
            for r in rows
        ]
        started = time.perf_counter()
        await self._conn.executemany(insert.text, values)
        return len(values) / (time.perf_counter() - started)

    async def reads(self, sample: list[int]) -> float:
        read = compile_sql(READ_CONTACT, "postgresql").text
        for contact_id in sample[:WARMUP_READS]:
            await self._conn.fetchrow(read, contact_id)
        started = time.perf_counter()
        for contact_id in sample:
            await self._conn.fetchrow(read, contact_id)
        return len(sample) / (time.perf_counter() - started)

    async def close(self) -> None:
        await self._conn.close()
