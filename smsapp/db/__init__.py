"""One small async database interface, two implementations (SQLite, PostgreSQL).

    rows = await db.all("contacts.by_tag", tenant_id=t, tag="vip")
    async with db.transaction() as tx:
        await tx.run("contacts.set_consent", ...)

A query is a name from `smsapp/queries/*.sql` or an `Sql("...")`; parameters are `:name`
keywords on both backends. Rows are plain dicts. Times are timezone-aware `datetime`s in UTC,
JSON columns come back as Python objects, booleans as `bool`, on both backends.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

import orjson

from smsapp.config import DatabaseUrl
from smsapp.db.queries import Dialect, Sql, compile_sql, query_book

Row = dict[str, Any]
Query = str | Sql
BULK_CHUNK = 20_000  # rows per statement (PostgreSQL) or executemany call (SQLite)

__all__ = [
    "Database", "Dialect", "Query", "Row", "SenderSession", "Sql", "open_database", "resolve",
]


class DatabaseError(Exception):
    """A database problem worth a clear message (not an integrity error: those propagate)."""


class Executor(Protocol):
    dialect: Dialect

    async def all(self, query: Query, /, **params: Any) -> list[Row]: ...

    async def one(self, query: Query, /, **params: Any) -> Row | None: ...

    async def val(self, query: Query, /, **params: Any) -> Any: ...

    async def run(self, query: Query, /, **params: Any) -> int:
        """Execute; the number of rows the statement changed."""
        ...

    async def run_many(self, query: Query, rows: Sequence[Mapping[str, Any]], /) -> None: ...

    async def bulk(self, query: Query, rows: Iterable[Mapping[str, Any]], /) -> int:
        """Write many rows fast. The query's SQLite text takes one row's `:params` (run as
        executemany); its PostgreSQL text takes each `:param` as an array of all rows' values
        (`INSERT … SELECT … FROM unnest(CAST(:a AS bigint[]), …)`), one statement per chunk.
        JSON values are passed already serialised (text) on both backends. Answers the number
        of rows the statements changed."""
        ...

    async def stop_lock(self, tenant_id: int) -> None:
        """Take the tenant's stop lock exclusively until this transaction ends (pack §7; see
        `smsapp.db.stop_lock`). Only inside a transaction, as its first statement."""
        ...


class SenderSession(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[Executor]:
        """The session's one transaction: the claim (gate checks and the `sending` commit)."""
        ...


class Database(Executor, Protocol):
    def transaction(self) -> AbstractAsyncContextManager[Executor]:
        """One transaction; on SQLite it holds the single writer until it ends."""
        ...

    def sender_session(self, tenant_id: int) -> AbstractAsyncContextManager[SenderSession]:
        """Hold the tenant's stop lock shared from the claim's gate checks until the session
        ends, which the sender does once its provider calls have returned (pack §7). The
        session runs one transaction; results are written after it ends."""
        ...

    async def close(self) -> None: ...


def json_dumps(value: Any) -> str:
    """JSON text for a JSONB column (orjson: the import writes hundreds of thousands)."""
    return orjson.dumps(value).decode()


json_loads = orjson.loads


def chunked(rows: Iterable[Mapping[str, Any]], size: int) -> Iterator[list[Mapping[str, Any]]]:
    chunk: list[Mapping[str, Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def resolve(query: Query, dialect: Dialect) -> str:
    if isinstance(query, Sql):
        return query.text
    return query_book().text(query, dialect)


def compiled(query: Query, dialect: Dialect) -> tuple[str, tuple[str, ...]]:
    c = compile_sql(resolve(query, dialect), dialect)
    return c.text, c.params


def is_unique_violation(exc: BaseException) -> bool:
    """True for a unique-key violation on either backend."""
    import sqlite3

    import asyncpg

    if isinstance(exc, asyncpg.UniqueViolationError):
        return True
    return isinstance(exc, sqlite3.IntegrityError) and "UNIQUE constraint failed" in str(exc)


def is_integrity_error(exc: BaseException) -> bool:
    import sqlite3

    import asyncpg

    return isinstance(exc, sqlite3.IntegrityError | asyncpg.IntegrityConstraintViolationError)


async def open_database(url: DatabaseUrl) -> Database:
    """Open the configured database (a pool on PostgreSQL; writer + readers on SQLite)."""
    if url.dialect == "sqlite":
        from smsapp.db.sqlite import SqliteDatabase

        assert url.sqlite_path is not None
        return await SqliteDatabase.open(url.sqlite_path)
    from smsapp.db.postgres import PostgresDatabase

    return await PostgresDatabase.open(url.url)
