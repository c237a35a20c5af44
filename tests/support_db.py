"""Test doubles around the real database."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from smsapp.db import Database, Executor
from smsapp.db.sqlite import SqliteDatabase, SyncWriter

T = TypeVar("T")
R = TypeVar("R")


class GatedDatabase:
    """The real database, but every transaction waits at its end, before its commit, until
    `gate` is open; `fail` makes the next transaction raise there instead. For group-commit
    writers: nothing may be answered before its batch commits. (SQLite's transactions on its
    writer's thread too: `on_writer_thread`.)"""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.dialect = db.dialect
        self.gate = asyncio.Event()
        self.at_commit = asyncio.Event()
        self.transactions = 0
        self.trips = 0  # SQLite: calls of on_writer_thread
        self.fail = False

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Executor]:
        async with self.db.transaction() as tx:
            yield tx
            self.transactions += 1
            self.at_commit.set()
            await self.gate.wait()
            if self.fail:
                self.fail = False
                raise RuntimeError("the database went away")

    async def on_writer_thread(self, fn: Callable[[SyncWriter], T]) -> T:
        """SQLite's writes on the writer's thread, each of their transactions gated the same
        way: the thread waits for `gate` before the commit (or raises there when `fail`)."""
        assert isinstance(self.db, SqliteDatabase)
        self.trips += 1
        loop = asyncio.get_running_loop()
        opened = threading.Event()
        gated = self

        class GatedWriter(SyncWriter):
            def transaction(self, work: Callable[[sqlite3.Connection], R]) -> R:
                def gated_work(conn: sqlite3.Connection) -> R:
                    result = work(conn)
                    gated.transactions += 1
                    loop.call_soon_threadsafe(gated.at_commit.set)
                    if not opened.wait(10):
                        raise TimeoutError("the gate was never opened")
                    if gated.fail:
                        gated.fail = False
                        raise RuntimeError("the database went away")
                    return result

                return super().transaction(gated_work)

        async def open_with_the_gate() -> None:
            await self.gate.wait()
            opened.set()

        opener = asyncio.create_task(open_with_the_gate())
        try:
            return await self.db.on_writer_thread(lambda writer: fn(GatedWriter(writer.conn)))
        finally:
            opener.cancel()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.db, name)
