"""The per-tenant stop lock of pack §7, the one rule for every stop.

Once a STOP webhook, a DNC call, a pause or a budget change has answered, no provider call it
forbids may start. Senders hold the tenant's lock *shared* from their last gate check until the
provider calls of their batch have returned; stops take it *exclusively* inside their
transaction, before they write, and keep it until they commit. So a stop waits for the calls
already checked, and every call checked after it sees its write.

PostgreSQL: an advisory lock keyed (STOP_LOCK_CLASS, tenant_id), shared at session level on the
sender's own connection, exclusive at transaction level in the stop's transaction. PostgreSQL
queues a new shared request behind a waiting exclusive one, so a stop is never starved.

SQLite (one process): `ReadWriteLock` below, one per tenant, with the same writer preference.

Lock order, the same everywhere so nothing deadlocks: the SQLite writer, then the stop lock,
then rows. A stop takes the stop lock as its transaction's first statement.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict

# The first key of the two-int advisory lock; any constant no other lock of ours uses.
STOP_LOCK_CLASS = 7_001


class ReadWriteLock:
    """Many readers or one writer; a waiting writer blocks new readers (no starvation)."""

    def __init__(self) -> None:
        self._readers = 0
        self._writer = False
        self._writers_waiting = 0
        self._changed = asyncio.Condition()

    async def acquire_shared(self) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: not self._writer and not self._writers_waiting)
            self._readers += 1

    async def release_shared(self) -> None:
        async with self._changed:
            self._readers -= 1
            self._changed.notify_all()

    async def acquire_exclusive(self) -> None:
        async with self._changed:
            self._writers_waiting += 1
            try:
                await self._changed.wait_for(lambda: not self._writer and self._readers == 0)
            finally:
                self._writers_waiting -= 1
            self._writer = True

    async def release_exclusive(self) -> None:
        async with self._changed:
            self._writer = False
            self._changed.notify_all()

    @property
    def writers_waiting(self) -> int:
        return self._writers_waiting

    @property
    def idle(self) -> bool:
        return not self._readers and not self._writer and not self._writers_waiting


class TenantLocks:
    """One ReadWriteLock per tenant, made on first use (SQLite's single process)."""

    def __init__(self) -> None:
        self._locks: defaultdict[int, ReadWriteLock] = defaultdict(ReadWriteLock)

    def __getitem__(self, tenant_id: int) -> ReadWriteLock:
        return self._locks[tenant_id]
