"""SQLite's writer (smsapp/db/sqlite.py): transactions on its thread in one trip, and the
checkpointer. SQLite
only, by nature: PostgreSQL has neither."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import pytest

from smsapp.db import Sql
from smsapp.db.sqlite import SqliteDatabase, SyncWriter, stored_value
from tests.conftest import FreshDatabases

T = TypeVar("T")
COUNT = Sql("SELECT count(*) FROM tenants")
INSERT = "INSERT INTO tenants (name, slug, created_at, updated_at) VALUES (?, ?, ?, ?)"


@pytest.fixture
async def sqlite_db(
    fresh_databases: FreshDatabases, sqlite_template: Path
) -> AsyncIterator[SqliteDatabase]:
    url = fresh_databases.make("sqlite", sqlite_template=sqlite_template)
    assert url.sqlite_path is not None
    db = await SqliteDatabase.open(url.sqlite_path)
    yield db
    await db.close()


async def one_trip(db: SqliteDatabase, work: Callable[[sqlite3.Connection], T]) -> T:
    return await db.on_writer_thread(lambda writer: writer.transaction(work))


def insert_tenants(names: list[str]) -> Callable[[sqlite3.Connection], int]:
    def work(conn: sqlite3.Connection) -> int:
        now = stored_value(datetime.now(UTC))
        conn.executemany(INSERT, [(n, n, now, now) for n in names])
        return len(names)

    return work


async def test_it_commits_a_one_trip_transaction_and_answers_what_it_returned(
    sqlite_db: SqliteDatabase,
) -> None:
    before = await sqlite_db.val(COUNT)
    assert await one_trip(sqlite_db, insert_tenants(["a", "b"])) == 2
    assert await sqlite_db.val(COUNT) == before + 2


async def test_it_rolls_a_one_trip_transaction_back_when_it_raises(
    sqlite_db: SqliteDatabase,
) -> None:
    before = await sqlite_db.val(COUNT)
    with pytest.raises(sqlite3.IntegrityError):
        # The second row repeats the first's slug: the first must not stay either.
        await one_trip(sqlite_db, insert_tenants(["same", "same"]))
    assert await sqlite_db.val(COUNT) == before
    # The writer is usable afterwards (no transaction left open).
    assert await one_trip(sqlite_db, insert_tenants(["c"])) == 1


async def test_commits_leave_the_log_to_the_checkpointer(sqlite_db: SqliteDatabase) -> None:
    rows = list(await sqlite_db._writer.execute_fetchall("PRAGMA wal_autocheckpoint"))
    assert [dict(row) for row in rows] == [{"wal_autocheckpoint": 0}]
    await one_trip(sqlite_db, insert_tenants([f"t{n}" for n in range(50)]))
    assert sqlite_db._checkpointer is not None
    frames, copied = await sqlite_db._checkpointer.checkpoint()
    assert frames > 0 and copied == frames  # no reader in the way: all copied back


async def test_a_commit_that_fails_is_rolled_back_and_the_writer_goes_on(
    sqlite_db: SqliteDatabase,
) -> None:
    def orphan_membership(conn: sqlite3.Connection) -> None:
        # A deferred foreign key is checked at COMMIT: the COMMIT itself fails.
        conn.execute("PRAGMA defer_foreign_keys = ON")
        now = stored_value(datetime.now(UTC))
        conn.execute(
            "INSERT INTO memberships (tenant_id, user_id, role, created_at, updated_at)"
            " VALUES (999999, 999999, 'viewer', ?, ?)",
            (now, now),
        )

    with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
        await one_trip(sqlite_db, orphan_membership)
    assert not sqlite_db._writer.in_transaction
    assert await one_trip(sqlite_db, insert_tenants(["after"])) == 1


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
    await sqlite_db.run(
        Sql(
            "INSERT INTO tenants (name, slug, created_at, updated_at) VALUES ('x', 'x', :now, :now)"
        ),
        now=datetime.now(UTC),
    )
    assert await sqlite_db.val(COUNT) == before + 1


async def test_one_trip_may_write_several_transactions_each_its_own(
    sqlite_db: SqliteDatabase,
) -> None:
    before = await sqlite_db.val(COUNT)

    def three(writer: SyncWriter) -> list[str]:
        outcomes = []
        for names in (["p"], ["q", "q"], ["r"]):  # the second repeats a slug: it alone fails
            try:
                writer.transaction(insert_tenants(names))
                outcomes.append("committed")
            except sqlite3.IntegrityError:
                outcomes.append("rolled back")
        return outcomes

    assert await sqlite_db.on_writer_thread(three) == ["committed", "rolled back", "committed"]
    assert await sqlite_db.val(COUNT) == before + 2
