"""A scratch database for a benchmark: a temp SQLite file, or a fresh PostgreSQL database
created on a server and dropped afterwards. Migrated like a real one."""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg

from smsapp.config import ConfigError, DatabaseUrl, parse_database_url
from smsapp.db.migrate import apply_migrations

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def scratch_database_name() -> str:
    return f"smsapp_bench_{uuid.uuid4().hex[:12]}"


async def _admin(server_url: str, sql: str) -> None:
    conn = await asyncpg.connect(server_url, timeout=10)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextmanager
def scratch_database(backend: str, pg_url: str = DEFAULT_PG_URL) -> Iterator[DatabaseUrl]:
    """A migrated scratch database of `backend`; a PostgreSQL one is created on the `pg_url`
    server (a ValueError names --pg-url when it is not a usable URL) and dropped afterwards."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="smsapp-bench-") as tmp:
            path = Path(tmp) / "bench.db"
            url = parse_database_url(f"sqlite:///{path}", path.parent)
            apply_migrations(url)
            yield url
        return
    try:
        server = parse_database_url(pg_url, Path("."))
    except ConfigError as exc:
        raise ValueError(f"--pg-url: {exc}") from None
    name = scratch_database_name()
    scratch_url = urlsplit(server.url)._replace(path=f"/{name}").geturl()
    asyncio.run(_admin(server.url, f'CREATE DATABASE "{name}"'))
    try:
        url = parse_database_url(scratch_url, Path("."))
        apply_migrations(url)
        yield url
    finally:
        asyncio.run(_admin(server.url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
