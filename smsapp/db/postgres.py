"""PostgreSQL through an asyncpg pool. Several app processes may share one server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from smsapp.db import BULK_CHUNK, Dialect, Query, Row, chunked, compiled, json_dumps, json_loads
from smsapp.db.stop_lock import STOP_LOCK_CLASS

POOL_MIN = 2
POOL_MAX = 10


async def _init_connection(conn: asyncpg.Connection) -> None:
    for kind in ("json", "jsonb"):
        await conn.set_type_codec(
            kind,
            encoder=json_dumps,
            decoder=json_loads,
            schema="pg_catalog",
        )


def _args(names: tuple[str, ...], params: Mapping[str, Any]) -> list[Any]:
    try:
        return [params[n] for n in names]
    except KeyError as exc:
        raise KeyError(f"query parameter {exc.args[0]!r} was not given") from None


def _rowcount(status: str) -> int:
    tail = status.rsplit(" ", 1)[-1]
    return int(tail) if tail.isdigit() else 0


class _Conn:
    dialect: Dialect = "postgresql"

    def __init__(self, conn: asyncpg.Connection | asyncpg.Pool) -> None:
        self._conn = conn

    async def all(self, query: Query, /, **params: Any) -> list[Row]:
        sql, names = compiled(query, "postgresql")
        return [dict(r) for r in await self._conn.fetch(sql, *_args(names, params))]

    async def one(self, query: Query, /, **params: Any) -> Row | None:
        sql, names = compiled(query, "postgresql")
        row = await self._conn.fetchrow(sql, *_args(names, params))
        return None if row is None else dict(row)

    async def val(self, query: Query, /, **params: Any) -> Any:
        sql, names = compiled(query, "postgresql")
        return await self._conn.fetchval(sql, *_args(names, params))

    async def run(self, query: Query, /, **params: Any) -> int:
        sql, names = compiled(query, "postgresql")
        return _rowcount(await self._conn.execute(sql, *_args(names, params)))

    async def run_many(self, query: Query, rows: Sequence[Mapping[str, Any]], /) -> None:
        sql, names = compiled(query, "postgresql")
        if rows:
            await self._conn.executemany(sql, [_args(names, r) for r in rows])

    async def bulk(self, query: Query, rows: Iterable[Mapping[str, Any]], /) -> int:
        """One statement per chunk, each parameter bound as the array of that column's values
        (the query's PostgreSQL text reads them with unnest)."""
        sql, names = compiled(query, "postgresql")
        changed = 0
        for chunk in chunked(rows, BULK_CHUNK):
            changed += _rowcount(
                await self._conn.execute(sql, *[[r[n] for r in chunk] for n in names])
            )
        return changed

    async def stop_lock(self, tenant_id: int) -> None:
        if not isinstance(self._conn, asyncpg.Connection) or not self._conn.is_in_transaction():
            raise RuntimeError("stop_lock is taken inside a transaction")
        await self._conn.execute(
            "SELECT pg_advisory_xact_lock($1, $2::int)", STOP_LOCK_CLASS, tenant_id
        )


class _SenderSession:
    """A dedicated connection holding the tenant's stop lock shared, at session level."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn
        self._used = False

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[_Conn]:
        if self._used:
            raise RuntimeError("a sender session runs one transaction")
        self._used = True
        async with self._conn.transaction():
            yield _Conn(self._conn)


class PostgresDatabase(_Conn):
    def __init__(self, pool: asyncpg.Pool) -> None:
        super().__init__(pool)
        self.pool = pool

    @classmethod
    async def open(cls, dsn: str) -> PostgresDatabase:
        pool = await asyncpg.create_pool(
            dsn, min_size=POOL_MIN, max_size=POOL_MAX, init=_init_connection
        )
        return cls(pool)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[_Conn]:
        async with self.pool.acquire() as conn, conn.transaction():
            yield _Conn(conn)

    @asynccontextmanager
    async def sender_session(self, tenant_id: int) -> AsyncIterator[_SenderSession]:
        async with self.pool.acquire() as conn:
            await conn.execute(
                "SELECT pg_advisory_lock_shared($1, $2::int)", STOP_LOCK_CLASS, tenant_id
            )
            try:
                yield _SenderSession(conn)
            finally:
                await conn.execute(
                    "SELECT pg_advisory_unlock_shared($1, $2::int)", STOP_LOCK_CLASS, tenant_id
                )

    async def close(self) -> None:
        await self.pool.close()
