"""Transactions cancelled part-way, on both backends: all of their writes or none, and the
database goes on. (SQLite's writer runs its statements on aiosqlite's thread whether or not
the caller still waits: smsapp/db/sqlite.py `_to_its_end`.)"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from smsapp.db import Database, Sql

COUNT = Sql("SELECT count(*) FROM tenants")
INSERT = Sql(
    "INSERT INTO tenants (name, slug, created_at, updated_at) VALUES (:name, :name, :now, :now)"
)


@pytest.mark.parametrize("turns", range(8))
async def test_a_transaction_cancelled_anywhere_is_whole_or_absent_and_the_database_goes_on(
    db: Database, turns: int
) -> None:
    """Cancelled after `turns` turns of the event loop: at its BEGIN, in its body, at its
    COMMIT or after. (On SQLite a BEGIN let go of before its end once left the one writer in a
    transaction, and every later BEGIN failed.)"""
    before = await db.val(COUNT)

    async def write_two() -> None:
        async with db.transaction() as tx:
            await tx.run(INSERT, name="a", now=datetime.now(UTC))
            await tx.run(INSERT, name="b", now=datetime.now(UTC))

    task = asyncio.create_task(write_two())
    for _ in range(turns):
        await asyncio.sleep(0)
    task.cancel()
    await asyncio.wait([task])
    assert await db.val(COUNT) in (before, before + 2)  # all of it or none
    await db.run(INSERT, name="c", now=datetime.now(UTC))  # the database goes on
    assert await db.val(COUNT) in (before + 1, before + 3)
