"""The redirect's link cache (smsapp/short_links.py `LinkCache`): token → link, each token read
from the database once however many hits wait for it. On both backends."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any, cast

import pytest

from smsapp.clock import ManualClock
from smsapp.db import Database, Executor, Sql
from smsapp.short_links import Link, LinkCache
from smsapp.tenancy import create_tenant

CACHED = "Cachelink1"  # the one link's token


class GatedReads:
    """The real database, but each read waits until `gate` is open; `fail` makes the next one
    raise instead."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.gate = asyncio.Event()
        self.waiting = 0
        self.fail = False

    async def one(self, query: Any, /, **params: Any) -> Any:
        self.waiting += 1
        await self.gate.wait()
        if self.fail:
            self.fail = False
            raise ConnectionError("the database went away")
        return await self.db.one(query, **params)


async def load(cache: LinkCache, reads: GatedReads, token: str = CACHED) -> Link | None:
    return await cache.load(cast(Executor, reads), token)


async def make_link(db: Database, clock: ManualClock) -> int:
    tenant_id = await create_tenant(db, clock, name="Acme", slug="acme")
    link_id = await db.val(
        Sql(
            "INSERT INTO short_links (token, tenant_id, target_url, expires_at, created_at,"
            " updated_at) VALUES (:token, :t, 'https://shop.example/', :e, :now, :now)"
            " RETURNING id"
        ),
        token=CACHED, t=tenant_id, e=clock.now() + timedelta(days=60), now=clock.now(),
    )  # fmt: skip
    return int(link_id)


async def loads_held_at_the_read(
    cache: LinkCache, reads: GatedReads, count: int
) -> list[asyncio.Task[Link | None]]:
    """`count` hits' loads of the link, started together, once the first has reached the read's
    gate (the event loop runs; no time passes)."""
    loads = [asyncio.create_task(load(cache, reads)) for _ in range(count)]
    for _ in range(100):
        if reads.waiting:
            return loads
        await asyncio.sleep(0)
    raise AssertionError("no read reached the gate")


async def test_it_reads_a_token_once_however_many_hits_wait_for_it(
    db: Database, clock: ManualClock
) -> None:
    link_id = await make_link(db, clock)
    cache, reads = LinkCache(), GatedReads(db)
    loads = await loads_held_at_the_read(cache, reads, 20)
    for _ in range(10):
        await asyncio.sleep(0)
    assert reads.waiting == 1 and not any(load.done() for load in loads)
    reads.gate.set()
    links = await asyncio.gather(*loads)
    assert {link.id for link in links if link is not None} == {link_id}
    assert all(isinstance(link, Link) for link in links)
    assert cache.reads == 1
    assert cache.cached(CACHED) == links[0]
    # Once cached, no read at all; a later miss (the link forgotten) reads again.
    cache.forget(CACHED)
    assert await load(cache, reads) == links[0]
    assert cache.reads == 2


async def test_an_unknown_token_is_not_cached_and_is_read_again_next_time(
    db: Database, clock: ManualClock
) -> None:
    await make_link(db, clock)
    cache, reads = LinkCache(), GatedReads(db)
    reads.gate.set()
    found = await asyncio.gather(*(load(cache, reads, "Nosuchlink") for _ in range(5)))
    assert found == [None] * 5
    assert cache.reads == 1 and len(cache) == 0
    assert await load(cache, reads, "Nosuchlink") is None
    assert cache.reads == 2


async def test_a_failed_read_is_every_waiters_error_and_the_next_hit_reads_again(
    db: Database, clock: ManualClock
) -> None:
    link_id = await make_link(db, clock)
    cache, reads = LinkCache(), GatedReads(db)
    reads.fail = True
    loads = await loads_held_at_the_read(cache, reads, 3)
    reads.gate.set()
    outcomes = await asyncio.gather(*loads, return_exceptions=True)
    assert [type(outcome) for outcome in outcomes] == [ConnectionError] * 3
    assert len(cache) == 0
    link = await load(cache, reads)
    assert link is not None and link.id == link_id
    assert cache.reads == 2


async def test_a_hit_that_goes_away_does_not_cancel_the_others_read(
    db: Database, clock: ManualClock
) -> None:
    link_id = await make_link(db, clock)
    cache, reads = LinkCache(), GatedReads(db)
    first, second = await loads_held_at_the_read(cache, reads, 2)
    first.cancel()  # its client went away
    with pytest.raises(asyncio.CancelledError):
        await first
    reads.gate.set()
    link = await second
    assert link is not None and link.id == link_id
    assert cache.cached(CACHED) == link and cache.reads == 1
