"""The redirect's hit writer (smsapp/hit_writer.py): hits journaled before their 302, then
folded into the database. On both backends: the rules decided in journal order, exactly once
per hit through failed folds, crashed processes and two processes at once; a gone link's hits
dropped and its token forgotten; closing folds everything."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest
from multidict import CIMultiDict

from smsapp import hit_journal, hit_writer
from smsapp.clock import ManualClock
from smsapp.config import DatabaseUrl
from smsapp.db import Database, Sql, open_database
from smsapp.db.sqlite import stored_value
from smsapp.hit_journal import HitJournal
from smsapp.hit_writer import (
    FOLD_STALE_SECONDS,
    HitWriter,
    PendingHit,
    WriterClosed,
    journal_directory,
    journal_line,
    parse_line,
    pending_hit,
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


def pending(
    at: datetime, target: Link, agent: str = PHONE, method: str = "GET", key: str = "Tok"
) -> PendingHit:
    """A hit on `target`, whose token is `key` (only a gone link's matters)."""
    headers = CIMultiDict({"User-Agent": agent})
    return pending_hit(key, target, at, method, agent, headers, "ab" * 32)


def seconds(s: float) -> datetime:
    return T0 + timedelta(seconds=s)


# --- Journal lines (pure) --------------------------------------------------------------------


def test_a_hit_goes_into_one_journal_line_and_comes_back_the_same() -> None:
    link = Link(5, 7, 8, 9, None, "https://shop.example/", T0 + timedelta(days=60))
    for at in (T0, T0 + timedelta(microseconds=1), T0.astimezone(timezone(timedelta(hours=10)))):
        hit = pending(at, link, method="HEAD")
        line = journal_line(hit)
        assert line.endswith(b"\n") and line.count(b"\n") == 1
        assert parse_line(line) == hit
        assert parse_line(line).request_reason == "head"


@pytest.mark.parametrize(
    "at",
    [
        T0,  # no fraction of a second
        T0 + timedelta(microseconds=1),
        T0 + timedelta(microseconds=120_000),
        T0 + timedelta(microseconds=999_999),
        T0.astimezone(timezone(timedelta(hours=10))) + timedelta(microseconds=5),
        T0.astimezone(timezone(timedelta(hours=-3, minutes=-30))),
    ],
)
def test_a_lines_time_is_in_the_stored_form_that_the_folds_sql_reads(at: datetime) -> None:
    link = Link(5, 7, 8, 9, None, "https://shop.example/", T0 + timedelta(days=60))
    fields = orjson.loads(journal_line(pending(at, link)))
    assert fields[2] == stored_value(at)
    assert len(fields[2]) == len("2026-03-01T12:00:00.000000+00:00")


@pytest.mark.parametrize(
    "line",
    [b"not json", b"{}", b"[1, 2, 3]", b'["t", 1, "2026-03-01T12:00:00", "GET", "", "ab", null]'],
)  # fmt: skip
def test_a_line_that_is_not_a_hit_is_refused(line: bytes) -> None:
    with pytest.raises(ValueError):
        parse_line(line)


def test_the_ip_hash_is_hmac_sha256_of_the_address() -> None:
    # RFC 4231, test case 2: key "Jefe", data "what do ya want for nothing?".
    assert ip_hash("Jefe", "what do ya want for nothing?") == (
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    )
    assert ip_hash("k" * 40, None) == ip_hash("k" * 40, "")
    assert ip_hash("k" * 40, "127.0.0.1") != ip_hash("j" * 40, "127.0.0.1")


def test_the_folds_hits_are_the_lines_as_one_json_array() -> None:
    from smsapp.hit_writer import _hits_json

    assert json.loads(_hits_json(b'["a",1]\n["b",2]\n')) == [["a", 1], ["b", 2]]
    assert json.loads(_hits_json(b'["a",1]\n')) == [["a", 1]]


# --- The journal's files (pure) --------------------------------------------------------------


def test_a_chunk_holds_whole_lines_only_and_stops_at_until(tmp_path: Path) -> None:
    path = tmp_path / "segment.jsonl"
    path.write_bytes(b"one\ntwo\nthr")  # the last line is torn: never answered, never read
    assert hit_journal.read_chunk(path, 0).lines == [b"one", b"two"]
    assert hit_journal.read_chunk(path, 0).data == b"one\ntwo\n"
    assert hit_journal.read_chunk(path, 0).count == 2
    assert hit_journal.read_chunk(path, 0).end == 8
    assert hit_journal.read_chunk(path, 4).lines == [b"two"]
    assert hit_journal.read_chunk(path, 0, until=4).lines == [b"one"]
    assert hit_journal.read_chunk(path, 8).lines == []
    assert hit_journal.read_chunk(tmp_path / "missing", 0).lines == []


def test_a_journal_holds_its_lock_until_closed_and_leaves_nothing_once_folded(
    tmp_path: Path,
) -> None:
    journal = HitJournal(tmp_path)
    journal.write(b"a\n")
    with hit_journal.Orphan(tmp_path / f"{journal.owner}.lock") as segments:
        assert segments is None  # its owner lives
    journal.close(folded=False)
    with hit_journal.Orphan(tmp_path / f"{journal.owner}.lock") as segments:
        assert segments == [journal.active]  # left for the next process
    other = HitJournal(tmp_path)
    other.write(b"b\n")
    other.close(folded=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [journal.active.name, f"{journal.owner}.lock"]
    )


# --- The writer, on both backends ------------------------------------------------------------


async def make_link(
    db: Database,
    clock: ManualClock,
    *,
    sent_at: datetime | None = None,
    first_clicked_at: datetime | None = None,
    last_hit_at: datetime | None = None,
    n: int = 0,
) -> Link:
    tenant_id = await db.val(Sql("SELECT id FROM tenants WHERE slug = 'acme'"))
    if tenant_id is None:
        tenant_id = await create_tenant(db, clock, name="Acme", slug="acme")
    now = clock.now()
    job_id = None
    if sent_at is not None:
        campaign_id = await db.val(
            Sql("INSERT INTO campaigns (tenant_id, name, created_at, updated_at)"
                " VALUES (:t, :name, :now, :now) RETURNING id"),
            t=tenant_id, name=f"C{n}", now=now,
        )  # fmt: skip
        contact_id = await db.val(
            Sql("INSERT INTO contacts (tenant_id, phone_e164, created_at, updated_at)"
                " VALUES (:t, :p, :now, :now) RETURNING id"),
            t=tenant_id, p=f"+6141234{n:04d}", now=now,
        )  # fmt: skip
        job_id = await db.val(
            Sql("INSERT INTO send_jobs (tenant_id, campaign_id, contact_id, body, parts, encoding,"
                " status, next_attempt_at, sent_at, created_at, updated_at) VALUES (:t, :c, :p,"
                " 'hi', 1, 'GSM-7', 'sent', :now, :sent, :now, :now) RETURNING id"),
            t=tenant_id, c=campaign_id, p=contact_id, now=now, sent=sent_at,
        )  # fmt: skip
    row = await db.one(
        Sql(
            "INSERT INTO short_links (token, tenant_id, send_job_id, target_url, expires_at,"
            " first_clicked_at, last_hit_at, clicks_total, clicks_human, created_at, updated_at)"
            " VALUES (:token, :t, :job, 'https://shop.example/', :e, :first, :last, :human, :human,"
            " :now, :now)"
            " RETURNING id, tenant_id, campaign_id, contact_id, send_job_id, target_url, expires_at"
        ),
        token=f"Tok{n:07d}",
        t=tenant_id,
        job=job_id,
        e=now + timedelta(days=60),
        first=first_clicked_at,
        last=last_hit_at,
        human=0 if first_clicked_at is None else 1,
        now=now,
    )
    assert row is not None
    return Link(**row)


async def make_links(db: Database, clock: ManualClock, count: int) -> list[Link]:
    return [await make_link(db, clock, n=n) for n in range(count)]


async def stored(db: Database, link_id: int) -> tuple[int, int, int, int]:
    """(clicks_total, clicks_human, hit rows, CLICKED events) of one link."""
    row = await db.one(
        Sql(
            "SELECT clicks_total, clicks_human,"
            " (SELECT count(*) FROM short_link_hits WHERE short_link_id = :id) AS hits"
            " FROM short_links WHERE id = :id"
        ),
        id=link_id,
    )
    assert row is not None
    events = await db.all(Sql("SELECT data FROM events WHERE type = 'CLICKED'"))
    data = [e["data"] if isinstance(e["data"], dict) else orjson.loads(e["data"]) for e in events]
    clicked = sum(1 for d in data if d["short_link_id"] == link_id)
    return row["clicks_total"], row["clicks_human"], int(row["hits"]), clicked


async def reasons(db: Database, link_id: int | None = None) -> list[str | None]:
    """The stored hits' reasons in the order they were written (None: a person). A fold writes
    the hits link by link, each link's in the journal's order."""
    rows = await db.all(
        Sql("SELECT reason, is_bot FROM short_link_hits"
            " WHERE short_link_id = :id OR :id IS NULL ORDER BY id"),
        id=link_id,
    )  # fmt: skip
    assert all(bool(r["is_bot"]) == (r["reason"] is not None) for r in rows)
    return [r["reason"] for r in rows]


def files(directory: Path) -> list[str]:
    return sorted(os.listdir(directory))


@pytest.fixture
def journal_dir(tmp_path: Path) -> Path:
    return tmp_path / "hits"


@pytest.fixture
def writer(db: Database, journal_dir: Path, clock: ManualClock) -> Iterator[HitWriter]:
    writer = HitWriter(db, HitJournal(journal_dir), clock)
    yield writer
    if not writer.journal.closed:
        writer.journal.close(folded=False)


async def journal(writer: HitWriter, hits: list[PendingHit]) -> None:
    """Record `hits` one after another, in order."""
    for hit in hits:
        await writer.record(hit)


@asynccontextmanager
async def running(writer: HitWriter) -> AsyncIterator[HitWriter]:
    """`writer`'s own task, as the app runs it: closed (and so drained) on the way out."""
    task = asyncio.create_task(writer.run())
    try:
        yield writer
    finally:
        writer.close()
        await asyncio.wait_for(task, 10)


async def until_folded(writer: HitWriter, hits: int) -> None:
    """Wait, at the task's own pace (real time, at most 10 s), until it has folded `hits`."""
    for _ in range(1000):
        if writer.hits >= hits:
            return
        await asyncio.sleep(0.01)


@pytest.mark.parametrize(
    ("state", "hits", "expected", "first"),
    [
        # A burst inside one fold: the first hit is the person, the rest within 1 s are bursts.
        ({}, [0, 0, 0.5, 0.99], [None, "burst", "burst", "burst"], 0),
        # Each hit is compared with the one before it, not with the first of the fold.
        ({}, [0, 0.9, 1.8, 3.0], [None, "burst", "burst", None], 0),
        # The stored previous hit counts: a fold's first hit within 1 s of it is a burst.
        ({"first_clicked_at": seconds(-10), "last_hit_at": seconds(-0.5)}, [0, 2],
         ["burst", None], None),
        # A link already clicked by a person gets no second first click.
        ({"first_clicked_at": seconds(-60), "last_hit_at": seconds(-60)}, [0], [None], None),
        # Within 2 s of sending: a scanner; the next hit 1.5 s later is a person, the first one.
        ({"sent_at": seconds(-1)}, [0, 1.5], ["too_soon", None], 1),
        # Exactly 2 s after sending is not too soon; exactly 1 s after a hit is not a burst.
        ({"sent_at": seconds(-2)}, [0, 1, 1.999999], [None, None, "burst"], 0),
        # Too soon comes before burst; a hit stamped before the sending is too soon.
        ({"sent_at": seconds(-1)}, [0, 0.5, -3], ["too_soon", "too_soon", "too_soon"], None),
        ({"sent_at": seconds(-1.999)}, [0], ["too_soon"], None),
        # A hit stamped earlier than the stored one (another process's clock) is still a burst.
        ({"last_hit_at": seconds(0.3)}, [0], ["burst"], None),
        # A clock that went back within the fold: still a burst, and the first click is the
        # first hit journaled.
        ({}, [2, 0, 3.5], [None, "burst", None], 0),
    ],
)  # fmt: skip
async def test_it_decides_hits_in_journal_order(
    db: Database,
    writer: HitWriter,
    clock: ManualClock,
    state: dict[str, datetime],
    hits: list[float],
    expected: list[str | None],
    first: int | None,
) -> None:
    link = await make_link(
        db,
        clock,
        sent_at=state.get("sent_at"),
        first_clicked_at=state.get("first_clicked_at"),
        last_hit_at=state.get("last_hit_at"),
    )
    await journal(writer, [pending(seconds(s), link) for s in hits])
    assert await writer.fold() == len(hits)
    assert await reasons(db, link.id) == expected
    humans = expected.count(None)
    already = "first_clicked_at" in state
    assert await stored(db, link.id) == (
        len(hits) + already, humans + already, len(hits), 0 if first is None else 1
    )  # fmt: skip
    row = await db.one(
        Sql("SELECT first_clicked_at, last_hit_at FROM short_links WHERE id = :id"), id=link.id
    )
    assert row is not None
    if first is not None:
        assert row["first_clicked_at"] == seconds(hits[first])
    else:
        assert row["first_clicked_at"] == state.get("first_clicked_at")
    stored_last = [state["last_hit_at"]] if "last_hit_at" in state else []
    assert row["last_hit_at"] == max([*stored_last, *(seconds(s) for s in hits)])


async def test_the_request_reasons_come_with_the_hit_and_every_rule_has_its_code(
    db: Database, writer: HitWriter, clock: ManualClock
) -> None:
    fresh, clicked, busy = await make_links(db, clock, 3)
    now = clock.now()
    await db.run(
        Sql("UPDATE short_links SET first_clicked_at = :at, last_hit_at = :at, clicks_total = 1,"
            " clicks_human = 1 WHERE id = :id"),
        at=now - timedelta(seconds=30), id=clicked.id,
    )  # fmt: skip
    await db.run(
        Sql("UPDATE short_links SET last_hit_at = :at WHERE id = :id"),
        at=now - timedelta(seconds=0.5),
        id=busy.id,
    )
    at = [now + timedelta(seconds=s) for s in (0, 0.2, 1.5, 0.3, 3, 3.1, 5, 9, 9.5)]
    prefetch = pending_hit(
        "T", fresh, at[0], "GET", PHONE, CIMultiDict({"Sec-Purpose": "prefetch"}), "ab"
    )
    await journal(writer, [
        prefetch,  # prefetch
        pending(at[1], fresh, agent=PREVIEW),  # link_preview (still the link's last hit)
        pending(at[2], fresh),  # human, its first: 1.3 s after the preview
        pending(at[3], busy),  # 0.8 s after its stored last hit: burst
        pending(at[4], clicked),  # human, not its first (clicked before)
        pending(at[5], clicked, method="HEAD"),  # head
        pending(at[6], busy, agent=""),  # empty_agent
        pending(at[7], fresh, agent="Googlebot/2.1 (+http://www.google.com/bot.html)"),
        pending(at[8], fresh),  # 0.5 s after the crawler: a burst (robots' hits count too)
    ])  # fmt: skip
    assert await writer.fold() == 9
    assert await reasons(db, fresh.id) == ["prefetch", "link_preview", None, "crawler", "burst"]
    assert await reasons(db, busy.id) == ["burst", "empty_agent"]
    assert await reasons(db, clicked.id) == [None, "head"]
    assert await stored(db, fresh.id) == (5, 1, 5, 1)
    assert await stored(db, clicked.id) == (3, 2, 2, 0)
    assert await stored(db, busy.id) == (2, 0, 2, 0)


async def test_it_writes_the_clicked_events_of_one_fold_in_the_order_of_their_times(
    db: Database, writer: HitWriter, clock: ManualClock
) -> None:
    """The hits are written link by link; the events still come in the order they happened."""
    first, second, third = await make_links(db, clock, 3)
    now = clock.now()
    await journal(writer, [
        pending(now, third),
        pending(now + timedelta(seconds=0.5), third),  # a burst
        pending(now + timedelta(seconds=1), first),
        pending(now + timedelta(seconds=2), second),
    ])  # fmt: skip
    assert await writer.fold() == 4
    events = await db.all(
        Sql("SELECT data, occurred_at FROM events WHERE type = 'CLICKED' ORDER BY id")
    )
    data = [e["data"] if isinstance(e["data"], dict) else orjson.loads(e["data"]) for e in events]
    assert [d["short_link_id"] for d in data] == [
        third.id, first.id, second.id
    ]  # fmt: skip
    assert await reasons(db, third.id) == [None, "burst"]


async def test_a_hit_is_answered_once_its_line_is_in_the_journal_and_folded_later(
    db: Database, writer: HitWriter, clock: ManualClock
) -> None:
    [link] = await make_links(db, clock, 1)
    hit = pending(clock.now(), link)
    await writer.record(hit)
    assert writer.journal.active.read_bytes() == journal_line(hit)
    assert await stored(db, link.id) == (0, 0, 0, 0)  # not folded yet
    assert await writer.fold() == 1
    assert await stored(db, link.id) == (1, 1, 1, 1)
    event = await db.one(Sql("SELECT * FROM events WHERE type = 'CLICKED'"))
    assert event is not None
    assert event["occurred_at"] == clock.now()
    assert event["tenant_id"] == link.tenant_id
    assert await writer.fold() == 0  # each hit once


async def test_the_hits_of_one_turn_of_the_event_loop_are_one_write(
    db: Database, writer: HitWriter, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    links = await make_links(db, clock, 3)
    writes: list[bytes] = []
    real_write = writer.journal.write

    def counted(data: bytes) -> None:
        writes.append(data)
        real_write(data)

    monkeypatch.setattr(writer.journal, "write", counted)
    await asyncio.gather(*(writer.record(pending(clock.now(), links[n % 3])) for n in range(60)))
    assert len(writes) == 1 and writes[0].count(b"\n") == 60
    assert await writer.fold() == 60
    for link in links:
        assert await stored(db, link.id) == (20, 1, 20, 1)  # a burst in one fold counts once
    assert writer.folds == 1


async def test_a_failed_write_answers_its_error_and_the_next_goes_to_a_new_segment(
    db: Database, writer: HitWriter, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    [link] = await make_links(db, clock, 1)
    real_write = os.write
    calls = 0

    def disk_full(fd: int, data: Any) -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            return real_write(fd, bytes(data)[:10])  # part of the line
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("smsapp.hit_journal.os.write", disk_full)
    with pytest.raises(OSError, match="No space"):
        await writer.record(pending(clock.now(), link))
    monkeypatch.setattr("smsapp.hit_journal.os.write", real_write)
    torn = writer.journal.active
    clock.advance(seconds=5)
    await writer.record(pending(clock.now(), link))
    assert writer.journal.active != torn
    assert await writer.fold() == 1  # the torn line was never answered: never folded
    assert await stored(db, link.id) == (1, 1, 1, 1)
    assert not torn.exists()  # folded as far as it goes and written no more: deleted
    assert await db.val(Sql("SELECT count(*) FROM hit_journal_segments")) == 1


async def test_a_read_folds_first_when_that_is_quick(
    db: Database, writer: HitWriter, clock: ManualClock
) -> None:
    [link] = await make_links(db, clock, 1)
    await writer.record(pending(clock.now(), link))
    assert await writer.fold_before_read() is True
    assert await stored(db, link.id) == (1, 1, 1, 1)


async def test_a_read_waits_for_a_slow_fold_at_most_its_bound_and_the_fold_goes_on(
    db: Database, journal_dir: Path, clock: ManualClock
) -> None:
    """A backlog (here a commit held back) does not hold the read: it answers with the
    counters as they are, and the fold, not cancelled, commits once it can, each hit once."""
    links = await make_links(db, clock, 2)
    gated = GatedDatabase(db)  # its gate closed: the fold waits before its commit
    writer = HitWriter(gated, HitJournal(journal_dir), clock)
    await journal(writer, [pending(clock.now(), links[n % 2]) for n in range(6)])
    assert await writer.fold_before_read(wait_seconds=0.05) is False  # a real 50 ms
    await asyncio.wait_for(gated.at_commit.wait(), 10)  # the fold goes on, to its commit
    for link in links:
        assert await stored(db, link.id) == (0, 0, 0, 0)
    gated.gate.set()
    assert await writer.fold() == 0  # after the read's fold, which folded them all
    assert gated.transactions == 1
    for link in links:
        assert await stored(db, link.id) == (3, 1, 3, 1)
    writer.journal.close(folded=True)


async def test_a_read_does_not_fold_once_the_writer_is_closing(
    db: Database, writer: HitWriter, clock: ManualClock
) -> None:
    [link] = await make_links(db, clock, 1)
    await writer.record(pending(clock.now(), link))
    writer.close()
    assert await writer.fold_before_read() is False
    assert await stored(db, link.id) == (0, 0, 0, 0)  # the writer's own last fold takes them


async def test_it_is_not_ready_after_a_failed_write_until_a_write_succeeds(
    db: Database, writer: HitWriter, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    [link] = await make_links(db, clock, 1)
    assert await writer.readiness() == "ok"

    def disk_full(fd: int, data: Any) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("smsapp.hit_journal.os.write", disk_full)
    with pytest.raises(OSError):
        await writer.record(pending(clock.now(), link))
    assert await writer.readiness() == (
        "failing: the last write failed (OSError: [Errno 28] No space left on device)"
    )
    monkeypatch.undo()
    await writer.record(pending(clock.now(), link))
    assert await writer.readiness() == "ok"


async def test_it_is_not_ready_when_its_segment_was_deleted_under_it(
    writer: HitWriter, journal_dir: Path
) -> None:
    assert await writer.readiness() == "ok"
    shutil.rmtree(journal_dir)  # the data directory cleaned while the app runs
    assert (await writer.readiness()).startswith("missing: ")


async def test_it_is_stalled_once_folds_have_failed_for_a_minute(
    db: Database, writer: HitWriter, clock: ManualClock
) -> None:
    [link] = await make_links(db, clock, 1)
    await writer.record(pending(clock.now(), link))

    class SometimesUnreachable(GatedDatabase):
        down = True

        def transaction(self) -> Any:
            if self.down:
                raise ConnectionError("the database is unreachable")
            return self.db.transaction()

    database = SometimesUnreachable(db)
    folding = HitWriter(database, writer.journal, clock)
    with pytest.raises(ConnectionError):
        await folding.fold()
    clock.advance(seconds=FOLD_STALE_SECONDS - 1)
    with pytest.raises(ConnectionError):
        await folding.fold()
    assert await folding.readiness() == "ok"  # failing, but not for long yet
    clock.advance(seconds=1)
    assert await folding.readiness() == (
        f"stalled: no fold has succeeded for {FOLD_STALE_SECONDS} s"
    )
    database.down = False
    assert await folding.fold() == 1
    assert await folding.readiness() == "ok"


async def test_a_fold_that_fails_writes_nothing_and_the_next_folds_each_hit_once(
    db: Database, journal_dir: Path, clock: ManualClock
) -> None:
    links = await make_links(db, clock, 2)
    gated = GatedDatabase(db)
    gated.gate.set()
    writer = HitWriter(gated, HitJournal(journal_dir), clock)
    await journal(writer, [pending(clock.now(), links[n % 2]) for n in range(10)])
    gated.fail = True  # the fold's transaction fails at its commit; it is tried again
    assert await writer.fold() == 10
    assert gated.transactions == 2
    for link in links:
        assert await stored(db, link.id) == (5, 1, 5, 1)

    class Unreachable(GatedDatabase):
        def transaction(self) -> Any:
            raise ConnectionError("the database is unreachable")

    down = HitWriter(Unreachable(db), writer.journal, clock)
    clock.advance(seconds=5)
    await journal(down, [pending(clock.now(), links[0])])
    with pytest.raises(ConnectionError):
        await down.fold()
    assert await stored(db, links[0].id) == (5, 1, 5, 1)
    assert await writer.fold() == 1  # once the database is back
    assert await stored(db, links[0].id) == (6, 2, 6, 1)
    writer.journal.close(folded=True)


async def test_a_gone_links_hits_are_dropped_and_its_token_forgotten(
    db: Database, journal_dir: Path, clock: ManualClock
) -> None:
    kept, deleted = await make_links(db, clock, 2)
    forgotten: list[str] = []
    writer = HitWriter(db, HitJournal(journal_dir), clock, forget=forgotten.append)
    await journal(writer, [
        pending(clock.now(), kept, key="kept"),
        pending(clock.now(), deleted, key="deleted"),
        pending(clock.now(), kept, key="kept"),
        pending(clock.now(), deleted, key="deleted"),
    ])  # fmt: skip
    await db.run(Sql("DELETE FROM short_links WHERE id = :id"), id=deleted.id)
    assert await writer.fold() == 2  # the gone link's two hits are not folded
    assert forgotten == ["deleted"]
    assert await stored(db, kept.id) == (2, 1, 2, 1)
    assert await reasons(db) == [None, "burst"]
    writer.journal.close(folded=True)


async def test_an_unreadable_line_is_skipped_and_the_others_folded(
    db: Database, writer: HitWriter, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    [link] = await make_links(db, clock, 1)
    await writer.record(pending(clock.now(), link))
    writer.journal.write(b"\x00\x01 damaged\n")
    clock.advance(seconds=5)
    await writer.record(pending(clock.now(), link))
    assert await writer.fold() == 2
    assert writer.unreadable == 1
    assert "unreadable line" in caplog.text
    assert await stored(db, link.id) == (2, 2, 2, 1)


async def test_closing_folds_every_journaled_hit_then_refuses_more(
    db: Database, journal_dir: Path, clock: ManualClock
) -> None:
    [link] = await make_links(db, clock, 1)
    writer = HitWriter(db, HitJournal(journal_dir), clock, fold_seconds=3600)
    task = asyncio.create_task(writer.run())
    await journal(writer, [pending(clock.now(), link) for _ in range(30)])
    writer.close()
    await asyncio.wait_for(task, 10)
    assert await stored(db, link.id) == (30, 1, 30, 1)
    assert files(journal_dir) == []  # folded whole: nothing left behind
    with pytest.raises(WriterClosed):
        await writer.record(pending(clock.now(), link))


async def test_the_task_folds_a_moment_after_hits_are_written(
    db: Database, journal_dir: Path, clock: ManualClock
) -> None:
    [link] = await make_links(db, clock, 1)
    async with running(HitWriter(db, HitJournal(journal_dir), clock, fold_seconds=0)) as writer:
        await writer.record(pending(clock.now(), link))
        await until_folded(writer, 1)
        assert writer.hits == 1
        assert await stored(db, link.id) == (1, 1, 1, 1)


async def test_a_links_last_hit_time_is_kept_and_never_goes_back(
    db: Database, writer: HitWriter, clock: ManualClock
) -> None:
    """The burst rule reads short_links.last_hit_at: each fold moves it to its latest hit, and
    a fold whose hits are older (another process's clock behind ours) leaves it."""
    [link] = await make_links(db, clock, 1)
    last = Sql("SELECT last_hit_at FROM short_links WHERE id = :id")
    assert await db.val(last, id=link.id) is None
    await writer.record(pending(clock.now(), link))
    await writer.fold()
    assert await db.val(last, id=link.id) == clock.now()
    await writer.record(pending(clock.now() - timedelta(seconds=30), link))
    await writer.fold()
    assert await db.val(last, id=link.id) == clock.now()
    # 0.5 s after the latest hit: a burst, decided against the stored time.
    await writer.record(pending(clock.now() + timedelta(seconds=0.5), link))
    await writer.fold()
    assert (await reasons(db, link.id))[-1] == "burst"
    assert await db.val(last, id=link.id) == clock.now() + timedelta(seconds=0.5)


async def test_a_big_segment_folded_whole_is_replaced_by_a_new_one(
    db: Database, writer: HitWriter, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hit_writer, "SEGMENT_BYTES", 1000)
    [link] = await make_links(db, clock, 1)
    first = writer.journal.active
    await journal(writer, [pending(clock.now(), link) for _ in range(10)])
    assert first.stat().st_size > 1000
    await writer.fold()
    assert writer.journal.active != first and not first.exists()
    assert await db.val(Sql("SELECT count(*) FROM hit_journal_segments")) == 0
    await writer.record(pending(clock.now(), link))
    await writer.fold()
    assert await stored(db, link.id) == (11, 1, 11, 1)


async def test_a_fold_with_nothing_new_makes_no_transaction(
    db: Database, journal_dir: Path, clock: ManualClock
) -> None:
    [link] = await make_links(db, clock, 1)
    gated = GatedDatabase(db)
    gated.gate.set()
    writer = HitWriter(gated, HitJournal(journal_dir), clock)
    await writer.record(pending(clock.now(), link))
    await writer.fold()
    assert gated.transactions == 1
    await writer.fold()
    assert gated.transactions == 1
    writer.journal.close(folded=True)


async def test_the_journal_directory_is_the_databases_own(
    db: Database, fresh_databases: FreshDatabases, backend: str, sqlite_template: Path,
    tmp_path: Path,
) -> None:  # fmt: skip
    mine = await journal_directory(db, tmp_path, T0)
    assert await journal_directory(db, tmp_path, T0) == mine
    assert mine.parent == tmp_path / "hits"
    other = await open_database(fresh_databases.make(backend, sqlite_template=sqlite_template))
    try:
        assert await journal_directory(other, tmp_path, T0) != mine
    finally:
        await other.close()


# --- Crashes and several processes -----------------------------------------------------------

JOURNALING_CHILD = """
import sys
from pathlib import Path
from smsapp.hit_journal import HitJournal
journal = HitJournal(Path(sys.argv[1]))
journal.write(sys.stdin.buffer.read())
print(journal.owner, flush=True)
sys.stdin.close()
import time
time.sleep(600)
"""


async def test_a_killed_processs_journal_is_adopted_and_folded_once(
    db: Database, journal_dir: Path, clock: ManualClock
) -> None:
    """A process journals hits (answered) and is killed before it folds them: the next process
    to fold adopts its segments, folds each hit once and deletes them. A live process's
    segments are left to it."""
    links = await make_links(db, clock, 2)
    lines = b"".join(
        journal_line(pending(clock.now() + timedelta(seconds=2 * n), links[n % 2]))
        for n in range(20)
    )
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", JOURNALING_CHILD, str(journal_dir),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert child.stdin is not None and child.stdout is not None
    child.stdin.write(lines)
    child.stdin.close()
    owner = (await asyncio.wait_for(child.stdout.readline(), 30)).decode().strip()
    alive = HitWriter(db, HitJournal(journal_dir), clock)
    try:
        assert await alive.fold() == 0  # its owner lives: not adopted
        child.send_signal(signal.SIGKILL)
        await asyncio.wait_for(child.wait(), 10)
        assert await alive.fold() == 20
        assert not any(name.startswith(owner) for name in files(journal_dir))
        assert await alive.fold() == 0
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
        alive.journal.close(folded=True)
    for link in links:
        assert (await stored(db, link.id))[:3] == (10, 10, 10)


async def test_two_processes_folding_the_same_links_keep_the_counters_exact(
    db: Database, database_url: DatabaseUrl, tmp_path: Path, clock: ManualClock
) -> None:
    """Two writers with a database and a journal each (as two processes have) fold hits on the
    same links at the same time: every hit counted once, one CLICKED event per link."""
    links = await make_links(db, clock, 4)
    other = await open_database(database_url)
    writers = [
        HitWriter(db, HitJournal(tmp_path / "a"), clock),
        HitWriter(other, HitJournal(tmp_path / "b"), clock),
    ]
    try:
        for round_ in range(5):
            await asyncio.gather(*(
                writers[n % 2].record(
                    pending(clock.now() + timedelta(seconds=round_ * 60 + n * 0.3), links[n % 4])
                )
                for n in range(40)
            ))  # fmt: skip
            await asyncio.gather(writers[0].fold(), writers[1].fold())
    finally:
        for writer in writers:
            writer.journal.close(folded=True)
        await other.close()
    totals = await db.one(
        Sql(
            "SELECT sum(clicks_total) AS total, sum(clicks_human) AS human,"
            " (SELECT count(*) FROM short_link_hits) AS hits,"
            " (SELECT count(*) FROM short_link_hits WHERE NOT is_bot) AS human_hits,"
            " (SELECT count(*) FROM events WHERE type = 'CLICKED') AS clicked FROM short_links"
        )
    )
    assert totals is not None
    assert (int(totals["total"]), int(totals["hits"])) == (200, 200)
    assert int(totals["human"]) == int(totals["human_hits"])
    assert int(totals["clicked"]) == 4


async def test_the_running_writer_adopts_what_a_crashed_one_left_at_start(
    db: Database, journal_dir: Path, clock: ManualClock
) -> None:
    [link] = await make_links(db, clock, 1)
    crashed = HitWriter(db, HitJournal(journal_dir), clock)
    await crashed.record(pending(clock.now(), link))
    crashed.journal.close(folded=False)  # as a crash leaves it: lock released, segment kept
    async with running(HitWriter(db, HitJournal(journal_dir), clock, fold_seconds=3600)) as w:
        await until_folded(w, 1)
    assert await stored(db, link.id) == (1, 1, 1, 1)
    assert files(journal_dir) == []


class UpdateCounting:
    """The real database, counting the rows of short_links its transactions updated and how
    many of those updates were heap-only (HOT: no new index entries). PostgreSQL only."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.dialect = db.dialect
        self.updated = 0
        self.heap_only = 0

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Any]:
        # The backend's counts not yet sent to the statistics (earlier transactions' too, until
        # it sends them, which it never does inside a transaction): the difference is this one's.
        counts = Sql(
            "SELECT pg_stat_get_xact_tuples_updated('short_links'::regclass) AS updated,"
            " pg_stat_get_xact_tuples_hot_updated('short_links'::regclass) AS heap_only"
        )
        async with self.db.transaction() as tx:
            before = await tx.one(counts)
            yield tx
            after = await tx.one(counts)
            assert before is not None and after is not None
            self.updated += int(after["updated"]) - int(before["updated"])
            self.heap_only += int(after["heap_only"]) - int(before["heap_only"])

    def __getattr__(self, name: str) -> Any:
        return getattr(self.db, name)


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_on_postgresql_the_counters_updates_mostly_leave_the_links_indexes_alone(
    db: Database, journal_dir: Path, clock: ManualClock
) -> None:
    # Migration 0010: short_links pages are filled to 70 %, so a fold's new version of a link
    # fits on the link's own page (a HOT update) instead of adding an entry to each index.
    # Pages filled to the brim (the default) made 16–23 % of these updates HOT.
    links = await make_links(db, clock, 300)  # several pages of links
    counting = UpdateCounting(db)
    writer = HitWriter(counting, HitJournal(journal_dir), clock)
    for fold in range(4):
        for link in links:
            await writer.record(pending(seconds(10 * fold), link))
        assert await writer.fold() == len(links)
    writer.journal.close(folded=True)
    assert counting.updated == 4 * len(links)
    # A fold's update is heap-only when the page has room, which needs the old versions of
    # earlier folds pruned; a transaction that holds an id anywhere on the server (another
    # database too: a second test run, say) keeps them, and makes about a third HOT.
    holding = await db.all(
        Sql(
            "SELECT datname, state, left(query, 80) AS query FROM pg_stat_activity"
            " WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid()"
        )
    )
    assert counting.heap_only >= 0.6 * counting.updated, (
        counting.heap_only,
        counting.updated,
        f"transactions elsewhere on the server: {holding}",
    )
