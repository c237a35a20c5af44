"""Test doubles around the real database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from smsapp.db import Database, Executor


class GatedDatabase:
    """The real database, but every transaction waits at its end, before its commit, until
    `gate` is open; `fail` makes the next transaction raise there instead. For group-commit
    writers: nothing may be answered before its batch commits."""

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

    def __getattr__(self, name: str) -> Any:
        return getattr(self.db, name)
