"""The redirect's hit writer (smsapp/hit_writer.py): group commit of short-link hits. The pure
decisions of a batch are table-tested; on both backends: no hit is answered before its batch
has committed, a failed batch answers an error and writes nothing, a burst spread over one batch
counts once, a link deleted since it was cached is answered None, and closing drains."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from smsapp.clock import ManualClock
from smsapp.config import DatabaseUrl
from smsapp.db import Database, Sql, open_database
from smsapp.hit_writer import (
    Decision,
    HitWriter,
    LinkState,
    PendingHit,
    WriterClosed,
    decide_batch,
)
from smsapp.short_links import Link, ip_hash
from smsapp.tenancy import create_tenant
from tests.conftest import FreshDatabases
from tests.support_db import GatedDatabase

PHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1_2 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.1.2 Mobile/15E148 Safari/604.1"
)
PREVIEW = "facebookexternalhit/1.1 Facebot Twitterbot/1.0"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def link(link_id: int = 1) -> Link:
    return Link(link_id, 7, None, None, None, "https://shop.example/", T0 + timedelta(days=60))


def pending(
    at: datetime, target: Link | int = 1, agent: str = PHONE, method: str = "GET"
) -> PendingHit:
    """A hit on `target`: a link, or the id of a made-up one (the pure tests)."""
    of = link(target) if isinstance(target, int) else target
    return PendingHit(of, at, method, agent, {"User-Agent": agent}, "ab" * 32)


def seconds(s: float) -> datetime:
    return T0 + timedelta(seconds=s)


FRESH = LinkState(sent_at=None, first_clicked_at=None, last_hit_at=None)


# --- The decisions of one batch (pure) -------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "hits", "expected"),
    [
        # A burst inside one batch: the first hit is the person, the rest within 1 s are bursts.
        (FRESH, [0, 0, 0.5, 0.99], [(False, None, True), (True, "burst", False),
                                    (True, "burst", False), (True, "burst", False)]),
        # Each hit is compared with the one before it, not with the first of the batch.
        (FRESH, [0, 0.9, 1.8, 3.0], [(False, None, True), (True, "burst", False),
                                     (True, "burst", False), (False, None, False)]),
        # The stored previous hit counts: a batch's first hit within 1 s of it is a burst.
        (LinkState(None, seconds(-10), seconds(-0.5)), [0, 2],
         [(True, "burst", False), (False, None, False)]),
        # A link already clicked by a person gets no second first click.
        (LinkState(None, seconds(-60), seconds(-60)), [0], [(False, None, False)]),
        # Within 2 s of sending: a scanner; the next hit 1.5 s later is a person, the first one.
        (LinkState(seconds(-1), None, None), [0, 1.5],
         [(True, "too_soon", False), (False, None, True)]),
        # A hit stamped earlier than the stored one (another process's clock) is still a burst.
        (LinkState(None, None, seconds(0.3)), [0], [(True, "burst", False)]),
    ],
)  # fmt: skip
def test_it_decides_a_batch_in_arrival_order(
    state: LinkState, hits: list[float], expected: list[tuple[bool, str | None, bool]]
) -> None:
    decisions, totals = decide_batch([pending(seconds(s)) for s in hits], {1: state})
    assert decisions == [Decision(*e) for e in expected]
    humans = sum(1 for e in expected if not e[0])
    assert (totals[1].total, totals[1].human) == (len(hits), humans)
    firsts = [seconds(s) for s, e in zip(hits, expected, strict=True) if e[2]]
    assert totals[1].first_human_at == (firsts[0] if firsts else None)
    assert totals[1].last_at == max(seconds(s) for s in hits)


def test_links_of_one_batch_are_decided_apart_and_a_gone_link_gets_none() -> None:
    hits = [pending(T0, 1), pending(T0, 2), pending(T0, 3), pending(seconds(0.1), 1),
            pending(seconds(0.2), 2, agent=PREVIEW)]  # fmt: skip
    decisions, totals = decide_batch(hits, {1: FRESH, 2: FRESH})
    assert decisions == [
        Decision(False, None, True),
        Decision(False, None, True),
        None,  # link 3 is gone: nothing is written for it
        Decision(True, "burst", False),
        Decision(True, "link_preview", False),
    ]
    assert set(totals) == {1, 2}
    assert (totals[2].total, totals[2].human) == (2, 1)


def test_the_ip_hash_is_hmac_sha256_of_the_address() -> None:
    # RFC 4231, test case 2: key "Jefe", data "what do ya want for nothing?".
    assert ip_hash("Jefe", "what do ya want for nothing?") == (
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    )
    assert ip_hash("k" * 40, None) == ip_hash("k" * 40, "")
    assert ip_hash("k" * 40, "127.0.0.1") != ip_hash("j" * 40, "127.0.0.1")


# --- The writer, on both backends ------------------------------------------------------------


async def make_links(db: Database, clock: ManualClock, count: int) -> list[Link]:
    tenant_id = await create_tenant(db, clock, name="Acme", slug="acme")
    links = []
    for n in range(count):
        row = await db.one(
            Sql(
                "INSERT INTO short_links (token, tenant_id, target_url, expires_at, created_at,"
                " updated_at) VALUES (:token, :t, 'https://shop.example/', :e, :now, :now)"
                " RETURNING id, tenant_id, campaign_id, contact_id, send_job_id, target_url,"
                " expires_at"
            ),
            token=f"Tok{n:07d}",
            t=tenant_id,
            e=clock.now() + timedelta(days=60),
            now=clock.now(),
        )
        assert row is not None
        links.append(Link(**row))
    return links


async def stored(db: Database, link_id: int) -> tuple[int, int, int, int]:
    """(clicks_total, clicks_human, hit rows, CLICKED events) of one link."""
    row = await db.one(
        Sql(
            "SELECT clicks_total, clicks_human,"
            " (SELECT count(*) FROM short_link_hits WHERE short_link_id = :id) AS hits,"
            " (SELECT count(*) FROM events WHERE type = 'CLICKED') AS clicked"
            " FROM short_links WHERE id = :id"
        ),
        id=link_id,
    )
    assert row is not None
    return row["clicks_total"], row["clicks_human"], int(row["hits"]), int(row["clicked"])


@asynccontextmanager
async def running(writer: HitWriter) -> AsyncIterator[HitWriter]:
    task = asyncio.create_task(writer.run())
    try:
        yield writer
    finally:
        await writer.close()
        await asyncio.wait_for(task, 10)


async def test_no_hit_is_answered_before_its_batch_has_committed(
    db: Database, clock: ManualClock
) -> None:
    [one] = await make_links(db, clock, 1)
    gated = GatedDatabase(db)
    async with running(HitWriter(gated)) as writer:
        answer = asyncio.create_task(writer.record(pending(clock.now(), one)))
        await asyncio.wait_for(gated.at_commit.wait(), 10)
        for _ in range(20):
            await asyncio.sleep(0)  # let anything that would answer early run
        assert not answer.done()
        gated.gate.set()
        decision = await asyncio.wait_for(answer, 10)
        # Answered: the hit is already there for anyone who looks.
        assert decision == Decision(False, None, True)
        assert await stored(db, one.id) == (1, 1, 1, 1)


async def test_a_failed_batch_answers_its_error_and_writes_nothing(
    db: Database, clock: ManualClock
) -> None:
    [one] = await make_links(db, clock, 1)
    gated = GatedDatabase(db)
    gated.fail = True
    gated.gate.set()
    async with running(HitWriter(gated)) as writer:
        with pytest.raises(RuntimeError, match="went away"):
            await asyncio.wait_for(writer.record(pending(clock.now(), one)), 10)
        assert await stored(db, one.id) == (0, 0, 0, 0)
        # The writer goes on: the next hit is written.
        clock.advance(seconds=5)
        assert await writer.record(pending(clock.now(), one)) == Decision(False, None, True)
    assert await stored(db, one.id) == (1, 1, 1, 1)


async def test_when_a_batch_fails_its_hits_are_written_one_by_one(
    db: Database, clock: ManualClock
) -> None:
    links = await make_links(db, clock, 3)
    gated = GatedDatabase(db)
    gated.fail = True  # the batch's transaction fails; each hit alone then succeeds
    gated.gate.set()
    writer = HitWriter(gated)
    answers = [asyncio.create_task(writer.record(pending(clock.now(), one))) for one in links]
    async with running(writer):
        decisions = await asyncio.wait_for(asyncio.gather(*answers), 10)
    assert decisions == [Decision(False, None, True)] * 3
    assert gated.transactions == 4  # the failed batch, then one per hit
    for one in links:
        assert (await stored(db, one.id))[:3] == (1, 1, 1)


async def test_hits_waiting_together_are_one_transaction_and_a_burst_in_it_counts_once(
    db: Database, clock: ManualClock
) -> None:
    links = await make_links(db, clock, 3)
    gated = GatedDatabase(db)
    gated.gate.set()
    writer = HitWriter(gated)
    # 60 hits, 20 per link, all waiting before the writer runs: one batch, one transaction.
    hits = [pending(clock.now(), links[n % 3]) for n in range(60)]
    answers = [asyncio.create_task(writer.record(hit)) for hit in hits]
    async with running(writer):
        decisions = await asyncio.wait_for(asyncio.gather(*answers), 10)
    assert gated.transactions == 1
    assert (writer.batches, writer.hits) == (1, 60)
    assert [d is not None and not d.is_bot for d in decisions[:3]] == [True] * 3
    assert all(d is not None and d.reason == "burst" for d in decisions[3:])
    for one in links:
        assert (await stored(db, one.id))[:3] == (20, 1, 20)
    assert (await stored(db, links[0].id))[3] == 3  # one CLICKED event per link

    # The next batch, 0.5 s later, is decided against the stored hits: bursts again.
    clock.advance(seconds=0.5)
    async with running(HitWriter(db)) as again:
        later = await again.record(pending(clock.now(), links[0]))
    assert later == Decision(True, "burst", False)
    assert await stored(db, links[0].id) == (21, 1, 21, 3)


async def test_a_link_deleted_since_it_was_cached_is_answered_none_and_others_are_written(
    db: Database, clock: ManualClock
) -> None:
    kept, deleted = await make_links(db, clock, 2)
    await db.run(Sql("DELETE FROM short_links WHERE id = :id"), id=deleted.id)
    writer = HitWriter(db)
    answers = [
        asyncio.create_task(writer.record(pending(clock.now(), target)))
        for target in (kept, deleted, kept)
    ]
    async with running(writer):
        decisions = await asyncio.wait_for(asyncio.gather(*answers), 10)
    assert decisions == [Decision(False, None, True), None, Decision(True, "burst", False)]
    assert await stored(db, kept.id) == (2, 1, 2, 1)


async def test_closing_writes_every_waiting_hit_then_refuses_more(
    db: Database, clock: ManualClock
) -> None:
    [one] = await make_links(db, clock, 1)
    writer = HitWriter(db, max_batch=7)
    answers = [asyncio.create_task(writer.record(pending(clock.now(), one))) for _ in range(30)]
    await asyncio.sleep(0)  # every hit is waiting
    task = asyncio.create_task(writer.run())
    await writer.close()
    await asyncio.wait_for(task, 10)
    assert all(answer.done() for answer in answers)
    assert writer.batches == 5  # 30 hits, at most 7 a transaction
    assert await stored(db, one.id) == (30, 1, 30, 1)
    with pytest.raises(WriterClosed):
        await writer.record(pending(clock.now(), one))


async def test_a_links_last_hit_time_is_kept_and_never_goes_back(
    db: Database, clock: ManualClock
) -> None:
    """The burst rule reads short_links.last_hit_at: each batch moves it to its latest hit,
    and a batch whose hits are older (another process's clock behind ours) leaves it."""
    [one] = await make_links(db, clock, 1)
    last = Sql("SELECT last_hit_at FROM short_links WHERE id = :id")
    assert await db.val(last, id=one.id) is None
    async with running(HitWriter(db)) as writer:
        await writer.record(pending(clock.now(), one))
        assert await db.val(last, id=one.id) == clock.now()
        await writer.record(pending(clock.now() - timedelta(seconds=30), one))
        assert await db.val(last, id=one.id) == clock.now()
        # 0.5 s after the latest hit: a burst, decided against the stored time.
        assert await writer.record(pending(clock.now() + timedelta(seconds=0.5), one)) == (
            Decision(True, "burst", False)
        )
    assert await db.val(last, id=one.id) == clock.now() + timedelta(seconds=0.5)


@pytest.fixture
async def sqlite_db(
    fresh_databases: FreshDatabases, sqlite_template: Path
) -> AsyncIterator[Database]:
    database = await open_database(fresh_databases.make("sqlite", sqlite_template=sqlite_template))
    yield database
    await database.close()


async def test_sqlite_writes_the_hits_that_arrive_meanwhile_in_the_same_trip(
    sqlite_db: Database, clock: ManualClock
) -> None:
    """On SQLite, the writer's thread takes the next batch as soon as one commits, without a
    trip back to the event loop; each batch is answered at its own commit."""
    links = await make_links(sqlite_db, clock, 4)
    gated = GatedDatabase(sqlite_db)
    async with running(HitWriter(gated)) as writer:
        first = asyncio.create_task(writer.record(pending(clock.now(), links[0])))
        await asyncio.wait_for(gated.at_commit.wait(), 10)  # the first batch, at its commit
        later = [asyncio.create_task(writer.record(pending(clock.now(), one))) for one in links[1:]]
        for _ in range(20):
            await asyncio.sleep(0)  # the later hits are waiting
        assert not first.done()
        gated.gate.set()
        decisions = await asyncio.wait_for(asyncio.gather(first, *later), 10)
    assert decisions == [Decision(False, None, True)] * 4
    assert (gated.trips, gated.transactions, writer.batches) == (1, 2, 2)


async def test_each_backend_decides_a_batch_as_decide_batch_does(
    db: Database, clock: ManualClock
) -> None:
    """PostgreSQL decides a batch's time rules and first clicks in SQL
    (`short_links.record_batch`), SQLite with `decide_batch`: the same mixed batch, against the
    same stored state, gets the same decisions from both."""
    fresh, clicked, busy = await make_links(db, clock, 3)
    now = clock.now()
    await db.run(
        Sql(
            "UPDATE short_links SET first_clicked_at = :at, last_hit_at = :at, clicks_total = 1,"
            " clicks_human = 1 WHERE id = :id"
        ),
        at=now - timedelta(seconds=30),
        id=clicked.id,
    )
    await db.run(
        Sql("UPDATE short_links SET last_hit_at = :at WHERE id = :id"),
        at=now - timedelta(seconds=0.5),
        id=busy.id,
    )
    at = [now + timedelta(seconds=s) for s in (0, 0.2, 1.5, 0.3, 3, 3.1, 5, 9, 9.5)]
    hits = [
        pending(at[0], fresh, method="HEAD"),  # head
        pending(at[1], fresh, agent=PREVIEW),  # link_preview (still the link's last hit)
        pending(at[2], fresh),  # human, its first: 1.3 s after the preview
        pending(at[3], busy),  # 0.8 s after its stored last hit: burst
        pending(at[4], clicked),  # human, not its first (clicked before)
        pending(at[5], clicked),  # burst
        pending(at[6], busy, agent=""),  # empty_agent
        pending(at[7], fresh),  # human again, not first
        pending(at[8], fresh),  # burst of the one before
    ]
    expected, _ = decide_batch(
        hits,
        {
            fresh.id: LinkState(None, None, None),
            clicked.id: LinkState(None, now - timedelta(seconds=30), now - timedelta(seconds=30)),
            busy.id: LinkState(None, None, now - timedelta(seconds=0.5)),
        },
    )
    writer = HitWriter(db)
    answers = [asyncio.create_task(writer.record(hit)) for hit in hits]
    async with running(writer):
        decisions = await asyncio.wait_for(asyncio.gather(*answers), 10)
    assert writer.batches == 1
    assert decisions == expected
    assert [d.reason if d else "gone" for d in decisions] == [
        "head", "link_preview", None, "burst", None, "burst", "empty_agent", None, "burst"
    ]  # fmt: skip
    assert [d.first_human if d else None for d in decisions] == [
        False, False, True, False, False, False, False, False, False
    ]  # fmt: skip


async def test_two_processes_writers_on_the_same_links_keep_the_counters_exact(
    db: Database, database_url: DatabaseUrl, clock: ManualClock
) -> None:
    """Two writers with a database each (as two processes have) race on the same links: every
    hit counted once, and each link still gets exactly one CLICKED event."""
    links = await make_links(db, clock, 4)
    other = await open_database(database_url)
    try:
        writers = [HitWriter(db, max_batch=7), HitWriter(other, max_batch=7)]
        answers = [
            asyncio.create_task(
                writers[n % 2].record(
                    pending(clock.now() + timedelta(seconds=n * 0.3), links[n % 4])
                )
            )
            for n in range(200)
        ]
        async with running(writers[0]), running(writers[1]):
            decisions = await asyncio.wait_for(asyncio.gather(*answers), 30)
    finally:
        await other.close()
    assert all(d is not None for d in decisions)
    assert sum(1 for d in decisions if d is not None and d.first_human) == 4
    totals = await db.one(
        Sql(
            "SELECT sum(clicks_total) AS total, sum(clicks_human) AS human,"
            " (SELECT count(*) FROM short_link_hits) AS hits,"
            " (SELECT count(*) FROM events WHERE type = 'CLICKED') AS clicked FROM short_links"
        )
    )
    assert totals is not None
    human = sum(1 for d in decisions if d is not None and not d.is_bot)
    assert (int(totals["total"]), int(totals["human"]), int(totals["hits"])) == (200, human, 200)
    assert int(totals["clicked"]) == 4
