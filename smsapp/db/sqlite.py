"""SQLite: one writer connection (every write goes through it), a few readers that never wait
on it (WAL), foreign keys on every connection. One process per file: see `ProcessLock`."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import logging
import os
import re
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TextIO

import aiosqlite

from smsapp.db import (
    BULK_CHUNK,
    DatabaseError,
    Dialect,
    Query,
    Row,
    chunked,
    compiled,
    json_dumps,
    json_loads,
    resolve,
)
from smsapp.db.stop_lock import ReadWriteLock, TenantLocks

log = logging.getLogger("smsapp.db.sqlite")
READERS = 4
BUSY_TIMEOUT_MS = 5000


NAIVE_DATETIME = "naive datetime passed to the database: use timezone-aware UTC times"


def _adapt_datetime(value: datetime) -> str:
    if value.tzinfo is None:
        # sqlite3 adapters are process-wide, so other libraries' statements come here too: yoyo
        # writes naive UTC times in its own tables. They keep sqlite3's former default format;
        # our own statements are refused naive times earlier, by `_checked`.
        return value.isoformat(" ")
    # One fixed format, so that times compare correctly as text.
    return value.astimezone(UTC).isoformat(timespec="microseconds")


_PLAIN = frozenset({str, int, float, bool, type(None), bytes})


def _sql_value(value: Any) -> Any:
    if type(value) in _PLAIN:  # the common case first: bulk writes pass hundreds of thousands
        return value
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(NAIVE_DATETIME)
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict | list):
        return json_dumps(value)
    return value


stored_value = _sql_value  # a time in the form SQLite stores it (the hit journal writes it so)


def _checked(params: Mapping[str, Any]) -> dict[str, Any]:
    """Our statements' parameters in their stored form, converted here rather than by sqlite3's
    process-wide adapters: yoyo registers its own datetime adapter when it migrates in-process
    and leaves it behind, which would change the text format of our times (and their order)."""
    return {name: _sql_value(value) for name, value in params.items()}


def _convert_timestamp(raw: bytes) -> datetime:
    value = datetime.fromisoformat(raw.decode())
    return value if value.tzinfo else value.replace(tzinfo=UTC)


sqlite3.register_adapter(datetime, _adapt_datetime)
sqlite3.register_adapter(date, lambda d: d.isoformat())
sqlite3.register_adapter(dict, json_dumps)
sqlite3.register_adapter(list, json_dumps)
sqlite3.register_converter("TIMESTAMPTZ", _convert_timestamp)
sqlite3.register_converter("DATE", lambda b: date.fromisoformat(b.decode()))
sqlite3.register_converter("BOOLEAN", lambda b: bool(int(b)))
sqlite3.register_converter("JSONB", json_loads)


_WRITE_WORD = re.compile(r"\b(INSERT|UPDATE|DELETE|REPLACE|CREATE|DROP|ALTER)\b", re.IGNORECASE)


@functools.cache
def _reads_only(sql: str) -> bool:
    """True when a statement cannot write, so a (query_only) reader may run it. `INSERT …
    RETURNING` through `one`/`val` must go to the writer, as it does on PostgreSQL."""
    lines = [ln for ln in sql.splitlines() if ln.strip() and not ln.strip().startswith("--")]
    first = " ".join(lines).split(None, 1)[0].upper() if lines else ""
    if first in ("SELECT", "VALUES"):
        return True
    return first == "WITH" and not _WRITE_WORD.search(sql)


def _dict_row(cursor: sqlite3.Cursor, row: tuple[Any, ...]) -> Row:
    return {d[0]: v for d, v in zip(cursor.description, row, strict=True)}


class ProcessLock:
    """An exclusive lock file beside the database: SQLite is for one serving process."""

    def __init__(self, db_path: Path) -> None:
        self.path = db_path.with_name(db_path.name + ".lock")
        self._fh: TextIO | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a+", encoding="utf-8")  # held for the process life
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "unknown"
            fh.close()
            raise DatabaseError(
                f"another smsapp process (pid {holder}) is already serving "
                f"{self.path.parent / self.path.stem}. "
                "SQLite is for one process; to run several, use PostgreSQL: "
                "set DATABASE_URL=postgresql://user:password@host:5432/dbname"
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        self._fh = fh

    def release(self) -> None:
        if self._fh is not None:
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None


async def _connect(path: Path, *, writer: bool, query_only: bool = True) -> aiosqlite.Connection:
    conn = await aiosqlite.connect(
        path,
        isolation_level=None,  # we issue BEGIN/COMMIT ourselves
        # Column types convert values; an expression (min(t)) has none, so such a column
        # names its type in its alias: `min(t) AS "until [TIMESTAMPTZ]"` (SQLite variant).
        detect_types=sqlite3.PARSE_DECLTYPES | sqlite3.PARSE_COLNAMES,
    )
    try:
        conn.row_factory = _dict_row  # type: ignore[assignment]
        await conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        await conn.execute("PRAGMA foreign_keys = ON")
        if writer:
            await conn.execute("PRAGMA journal_mode = WAL")
            await conn.execute("PRAGMA synchronous = NORMAL")
            # Checkpoints are the checkpointer's (below), not a commit's: a commit that
            # checkpoints copies pages back and syncs the file while every writer waits for it.
            await conn.execute("PRAGMA wal_autocheckpoint = 0")
        elif query_only:
            await conn.execute("PRAGMA query_only = ON")
    except BaseException:
        # Closed, or its thread (not a daemon) would keep the process from ever exiting.
        await conn.close()
        raise
    return conn


class _Conn:
    """Query methods over one aiosqlite connection."""

    dialect: Dialect = "sqlite"

    def __init__(
        self,
        conn: aiosqlite.Connection,
        locks: TenantLocks | None = None,
        releases: list[Callable[[], Awaitable[None]]] | None = None,
    ) -> None:
        self._conn = conn
        self._locks = locks  # set in a write transaction
        self._releases = releases  # stop locks to release when the transaction ends
        self._stop_locked: set[int] = set()  # tenants whose stop lock this transaction holds

    async def all(self, query: Query, /, **params: Any) -> list[Row]:
        # execute_fetchall is one trip to the connection's thread; execute + fetch + close
        # would be three, which dominates a point read.
        sql, _ = compiled(query, "sqlite")
        return list(await self._conn.execute_fetchall(sql, _checked(params)))  # type: ignore[arg-type]

    async def one(self, query: Query, /, **params: Any) -> Row | None:
        rows = await self.all(query, **params)
        return rows[0] if rows else None

    async def val(self, query: Query, /, **params: Any) -> Any:
        row = await self.one(query, **params)
        return None if row is None else next(iter(row.values()))

    async def run(self, query: Query, /, **params: Any) -> int:
        sql, _ = compiled(query, "sqlite")
        async with self._conn.execute(sql, _checked(params)) as cur:
            return cur.rowcount

    async def run_many(self, query: Query, rows: Sequence[Mapping[str, Any]], /) -> None:
        sql, _ = compiled(query, "sqlite")
        await self._conn.executemany(sql, [_checked(row) for row in rows])

    async def bulk(self, query: Query, rows: Iterable[Mapping[str, Any]], /) -> int:
        # SQLite's executemany is the bulk path: one prepared statement, no round trips. Rows
        # go in chunks, so a generator of 100k rows is never all in memory at once.
        sql, _ = compiled(query, "sqlite")
        changed = 0
        for chunk in chunked(rows, BULK_CHUNK):
            async with self._conn.executemany(sql, [_checked(row) for row in chunk]) as cur:
                changed += cur.rowcount
        return changed

    async def stop_lock(self, tenant_id: int) -> None:
        if self._locks is None or self._releases is None:
            raise RuntimeError("stop_lock is taken inside a transaction")
        if tenant_id in self._stop_locked:  # re-entrant, as PostgreSQL's advisory locks are
            return
        lock = self._locks[tenant_id]
        await lock.acquire_exclusive()
        self._stop_locked.add(tenant_id)
        self._releases.append(lock.release_exclusive)

    async def _stop_lock_shared(self, tenant_id: int) -> ReadWriteLock:
        assert self._locks is not None
        lock = self._locks[tenant_id]
        await lock.acquire_shared()
        return lock


class _SenderSession:
    """Takes the tenant's lock shared inside its one transaction (after the writer, the lock
    order of `smsapp.db.stop_lock`) and holds it until the session ends."""

    def __init__(self, db: SqliteDatabase, tenant_id: int) -> None:
        self._db = db
        self._tenant_id = tenant_id
        self._used = False
        self.held: ReadWriteLock | None = None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[_Conn]:
        if self._used:
            raise RuntimeError("a sender session runs one transaction")
        self._used = True
        async with self._db.transaction() as tx:
            self.held = await tx._stop_lock_shared(self._tenant_id)
            yield tx


async def _to_its_end(statement: Awaitable[Any]) -> Any:
    """Await a transaction's BEGIN, COMMIT or ROLLBACK to its end even when the caller is
    cancelled meanwhile, then let the cancellation go on. The statement runs on aiosqlite's
    thread all the same; were the caller to let go of the writer before it ends, a BEGIN would
    leave a transaction open that every later BEGIN on the one writer fails on."""
    task = asyncio.ensure_future(statement)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        await asyncio.wait([task])
        if not task.cancelled():
            task.exception()  # retrieved: what goes on is the cancellation
        raise


CHECKPOINT_SECONDS = 1.0


class Checkpointer:
    """Copies the write-ahead log back into the database file once a second, on a connection
    of its own, so that no writer waits for it (the writer's automatic checkpoints are off).
    PASSIVE: it never blocks a writer or a reader; frames a reader still needs are copied by a
    later round. Closing the database's last connection checkpoints what is left."""

    def __init__(self, conn: aiosqlite.Connection, every: float = CHECKPOINT_SECONDS) -> None:
        self._conn = conn
        self._every = every
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="sqlite checkpointer")

    async def checkpoint(self) -> tuple[int, int]:
        """One round: (frames in the log, frames copied back so far)."""
        [row] = await self._conn.execute_fetchall("PRAGMA wal_checkpoint(PASSIVE)")
        values = list(row.values()) if isinstance(row, dict) else list(row)
        return int(values[1]), int(values[2])

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._every)
            try:
                await self.checkpoint()
            except sqlite3.Error:
                log.warning("a WAL checkpoint failed; the next round tries again", exc_info=True)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._conn.close()


class SqliteDatabase:
    dialect: Dialect = "sqlite"

    def __init__(
        self,
        path: Path,
        writer: aiosqlite.Connection,
        readers: list[aiosqlite.Connection],
        checkpointer: Checkpointer | None = None,
    ) -> None:
        self.path = path
        self._checkpointer = checkpointer
        self._writer = writer
        self._write_lock = asyncio.Lock()
        self.stop_locks = TenantLocks()
        self._readers: asyncio.Queue[aiosqlite.Connection] = asyncio.Queue()
        self._all_readers = readers
        for reader in readers:
            self._readers.put_nowait(reader)

    @classmethod
    async def open(cls, path: Path) -> SqliteDatabase:
        path.parent.mkdir(parents=True, exist_ok=True)
        opened: list[aiosqlite.Connection] = []
        try:
            opened.append(await _connect(path, writer=True))
            for _ in range(READERS):
                opened.append(await _connect(path, writer=False))
            opened.append(await _connect(path, writer=False, query_only=False))
        except BaseException:
            for conn in opened:  # a database that cannot open leaves no thread behind
                await conn.close()
            raise
        writer, *readers, checkpointing = opened
        checkpointer = Checkpointer(checkpointing)
        checkpointer.start()
        return cls(path, writer, readers, checkpointer)

    @asynccontextmanager
    async def _reader(self) -> AsyncIterator[_Conn]:
        conn = await self._readers.get()
        try:
            yield _Conn(conn)
        finally:
            self._readers.put_nowait(conn)

    def _executor(self, query: Query) -> AbstractAsyncContextManager[_Conn]:
        """A reader for a pure read, else the writer in a transaction."""
        return self._reader() if _reads_only(resolve(query, "sqlite")) else self.transaction()

    async def all(self, query: Query, /, **params: Any) -> list[Row]:
        async with self._executor(query) as conn:
            return await conn.all(query, **params)

    async def one(self, query: Query, /, **params: Any) -> Row | None:
        async with self._executor(query) as conn:
            return await conn.one(query, **params)

    async def val(self, query: Query, /, **params: Any) -> Any:
        async with self._executor(query) as conn:
            return await conn.val(query, **params)

    async def run(self, query: Query, /, **params: Any) -> int:
        async with self.transaction() as tx:
            return await tx.run(query, **params)

    async def run_many(self, query: Query, rows: Sequence[Mapping[str, Any]], /) -> None:
        async with self.transaction() as tx:
            await tx.run_many(query, rows)

    async def bulk(self, query: Query, rows: Iterable[Mapping[str, Any]], /) -> int:
        async with self.transaction() as tx:
            return await tx.bulk(query, rows)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[_Conn]:
        releases: list[Callable[[], Awaitable[None]]] = []
        async with self._write_lock:
            try:
                try:
                    await _to_its_end(self._writer.execute("BEGIN IMMEDIATE"))
                except asyncio.CancelledError:
                    if self._writer.in_transaction:  # it began: end it before letting go
                        await _to_its_end(self._writer.execute("ROLLBACK"))
                    raise
                try:
                    yield _Conn(self._writer, self.stop_locks, releases)
                except BaseException:
                    await _to_its_end(self._writer.execute("ROLLBACK"))
                    raise
                else:
                    try:
                        await _to_its_end(self._writer.execute("COMMIT"))
                    except BaseException:
                        # A failed COMMIT (a full disk) leaves the transaction open: end it,
                        # or every later BEGIN on the one writer would fail.
                        if self._writer.in_transaction:
                            await _to_its_end(self._writer.execute("ROLLBACK"))
                        raise
            finally:
                for release in reversed(releases):
                    await release()

    async def stop_lock(self, tenant_id: int) -> None:
        raise RuntimeError("stop_lock is taken inside a transaction")

    @asynccontextmanager
    async def sender_session(self, tenant_id: int) -> AsyncIterator[_SenderSession]:
        session = _SenderSession(self, tenant_id)
        try:
            yield session
        finally:
            if session.held is not None:
                await session.held.release_shared()

    async def close(self) -> None:
        if self._checkpointer is not None:
            await self._checkpointer.close()
        for conn in [*self._all_readers, self._writer]:  # the writer last: it checkpoints
            await conn.close()
