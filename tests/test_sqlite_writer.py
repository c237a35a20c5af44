"""SQLite's writer (smsapp/db/sqlite.py): a failed COMMIT rolled back, and the checkpointer.
SQLite only, by nature: PostgreSQL has neither. (Cancelled transactions: test_transactions.py,
on both backends.)"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from smsapp.db import Sql
from smsapp.db.sqlite import SqliteDatabase
from tests.conftest import FreshDatabases

COUNT = Sql("SELECT count(*) FROM tenants")
INSERT = Sql(
    "INSERT INTO tenants (name, slug, created_at, updated_at) VALUES (:name, :name, :now, :now)"
)


@pytest.fixture
async def sqlite_db(
    fresh_databases: FreshDatabases, sqlite_template: Path
) -> AsyncIterator[SqliteDatabase]:
    url = fresh_databases.make("sqlite", sqlite_template=sqlite_template)
    assert url.sqlite_path is not None
    db = await SqliteDatabase.open(url.sqlite_path)
    yield db
    await db.close()


async def test_commits_leave_the_log_to_the_checkpointer(sqlite_db: SqliteDatabase) -> None:
    rows = list(await sqlite_db._writer.execute_fetchall("PRAGMA wal_autocheckpoint"))
    assert [dict(row) for row in rows] == [{"wal_autocheckpoint": 0}]
    async with sqlite_db.transaction() as tx:
        for n in range(50):
            await tx.run(INSERT, name=f"t{n}", now=datetime.now(UTC))
    assert sqlite_db._checkpointer is not None
    frames, copied = await sqlite_db._checkpointer.checkpoint()
    assert frames > 0 and copied == frames  # no reader in the way: all copied back


async def test_a_transaction_whose_commit_fails_is_rolled_back_and_the_writer_goes_on(
    sqlite_db: SqliteDatabase,
) -> None:
    with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
        async with sqlite_db.transaction() as tx:
            await tx.run(Sql("PRAGMA defer_foreign_keys = ON"))
            await tx.run(
                Sql(
                    "INSERT INTO memberships (tenant_id, user_id, role, created_at, updated_at)"
                    " VALUES (999999, 999999, 'viewer', :now, :now)"
                ),
                now=datetime.now(UTC),
            )
    assert not sqlite_db._writer.in_transaction
    before = await sqlite_db.val(COUNT)
    await sqlite_db.run(INSERT, name="x", now=datetime.now(UTC))
    assert await sqlite_db.val(COUNT) == before + 1
