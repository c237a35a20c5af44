"""Test doubles around the real database."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from smsapp.db import Database, Executor
from smsapp.db.sqlite import SqliteDatabase

T = TypeVar("T")


class GatedDatabase:
    """The real database, but every transaction waits at its end, before its commit, until
    `gate` is open; `fail` makes the next transaction raise there instead. For group-commit
    writers: nothing may be answered before its batch commits. (SQLite's one-trip transactions
    too: `write_in_one_trip`.)"""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.dialect = db.dialect
        self.gate = asyncio.Event()
        self.at_commit = asyncio.Event()
        self.transactions = 0
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

    async def write_in_one_trip(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """SQLite's one-trip transaction, gated the same way: `work` runs, then the writer's
        thread waits for `gate` before the commit (or raises there when `fail` is set)."""
        assert isinstance(self.db, SqliteDatabase)
        loop = asyncio.get_running_loop()
        opened = threading.Event()

        async def open_with_the_gate() -> None:
            await self.gate.wait()
            opened.set()

        def gated(conn: sqlite3.Connection) -> T:
            result = work(conn)
            self.transactions += 1
            loop.call_soon_threadsafe(self.at_commit.set)
            if not opened.wait(10):
                raise TimeoutError("the gate was never opened")
            if self.fail:
                self.fail = False
                raise RuntimeError("the database went away")
            return result

        opener = asyncio.create_task(open_with_the_gate())
        try:
            return await self.db.write_in_one_trip(gated)
        finally:
            opener.cancel()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.db, name)
