"""A scratch database for a benchmark: a temp SQLite file, or a fresh PostgreSQL database
created on a server and dropped afterwards. Migrated like a real one."""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg

from smsapp.config import DatabaseUrl, parse_database_url
from smsapp.db.migrate import apply_migrations

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


async def _admin(server_url: str, sql: str) -> None:
    conn = await asyncpg.connect(server_url, timeout=10)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextmanager
def scratch_database(backend: str, pg_url: str = DEFAULT_PG_URL) -> Iterator[DatabaseUrl]:
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="smsapp-bench-") as tmp:
            path = Path(tmp) / "bench.db"
            url = parse_database_url(f"sqlite:///{path}", path.parent)
            apply_migrations(url)
            yield url
        return
    name = f"smsapp_bench_{uuid.uuid4().hex[:10]}"
    asyncio.run(_admin(pg_url, f'CREATE DATABASE "{name}"'))
    try:
        url = parse_database_url(pg_url.rsplit("/", 1)[0] + f"/{name}", Path("."))
        apply_migrations(url)
        yield url
    finally:
        asyncio.run(_admin(pg_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
