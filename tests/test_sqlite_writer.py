"""SQLite's writer (smsapp/db/sqlite.py): a failed COMMIT rolled back, and the checkpointer.
SQLite only, by nature: PostgreSQL has neither. (Cancelled transactions: test_transactions.py,
on both backends.)"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from smsapp.db import Sql
from smsapp.db import sqlite as sqlite_module
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


def _threads_left_by(before: set[threading.Thread]) -> list[threading.Thread]:
    """The threads started since `before` that are still alive once given 5 s to end (a
    connection's thread told to stop ends at once; one never told stays, and fails the test)."""
    new = [t for t in threading.enumerate() if t not in before]
    for thread in new:
        thread.join(timeout=5)
    return [t for t in new if t.is_alive()]


async def test_a_database_that_cannot_open_leaves_no_connection_thread_behind(
    tmp_path: Path,
) -> None:
    """Its threads are not daemons: one left open would keep the process from ever exiting (a
    benchmark sat idle after its traceback until killed)."""
    path = tmp_path / "not-a-database.db"
    path.write_bytes(b"this is not an SQLite file\n" * 400)
    before = set(threading.enumerate())
    with pytest.raises(sqlite3.DatabaseError):
        await SqliteDatabase.open(path)
    assert _threads_left_by(before) == []


async def test_connections_already_open_are_closed_when_a_later_one_fails(
    fresh_databases: FreshDatabases, sqlite_template: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = fresh_databases.make("sqlite", sqlite_template=sqlite_template)
    assert url.sqlite_path is not None
    real_connect = sqlite_module._connect
    opened: list[Any] = []  # held here, so that none is closed by being collected

    async def third_fails(path: Path, **kwargs: Any) -> Any:
        if len(opened) == 2:
            raise sqlite3.OperationalError("unable to open database file")
        opened.append(await real_connect(path, **kwargs))
        return opened[-1]

    monkeypatch.setattr(sqlite_module, "_connect", third_fails)
    before = set(threading.enumerate())
    with pytest.raises(sqlite3.OperationalError):
        await SqliteDatabase.open(url.sqlite_path)
    assert len(opened) == 2
    assert _threads_left_by(before) == []
