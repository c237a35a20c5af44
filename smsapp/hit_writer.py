"""The redirect's hit writer (pack §9, §16): group commit of short-link hits.

Each `GET /s/{token}` hands its hit to `HitWriter.record` and waits; one task writes the hits
waiting at that moment as one batch, in one transaction, and only when that transaction has
committed does each request get its answer (and so its 302). A crash can lose hits still
waiting, but never one already answered. The next batch starts as soon as the previous one
commits, with whatever arrived meanwhile: there is no timer, so an idle server writes a lone
hit at once, and a busy one writes many per transaction.

One batch is one transaction:

1. read the batch's links (PostgreSQL: and lock them, in id order) with their first human
   click so far, their latest hit's time and their message's send time; links gone since they
   were cached are dropped;
2. decide every hit in arrival order (`decide_batch`, pure): the bot rules of
   `smsapp.click_rules`, the burst rule against the link's previous hit — the stored one, then
   the batch's own hits before it — and the first human click of a link that had none;
3. insert the hits, update each link's counters and latest hit time with one statement, and
   write one `CLICKED` event per link whose first human click is in the batch.

On SQLite the transaction runs on the writer's thread (`_record_sqlite`), and one trip there
writes batch after batch while hits wait, each answered at its own commit. On PostgreSQL the
three steps are one statement (`_record_postgresql`, `short_links.record_batch`), which applies
the rules that need the database as `decide_batch` does: each round trip of a batch waits for
the busy event loop, so a batch makes as few as it can.

So the counters always equal the stored hits, a burst spread over a batch counts once, and a
link gets exactly one CLICKED event however its hits are batched, across processes too
(PostgreSQL's row locks serialise two processes' batches that share a link).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple, cast

from aiohttp import web

from smsapp.click_rules import classify, request_reason
from smsapp.db import Database, compiled, json_dumps
from smsapp.db.sqlite import SyncWriter, stored_value
from smsapp.keys import DB
from smsapp.short_links import USER_AGENT_KEPT, Link

if TYPE_CHECKING:
    from smsapp.db.sqlite import SqliteDatabase

log = logging.getLogger("smsapp.hit_writer")

MAX_BATCH = 1000  # hits in one transaction; more wait for the next


class PendingHit(NamedTuple):
    """One hit as the redirect saw it, waiting to be decided and written. (Named tuples: one
    is made per hit, and they are the cheapest to make.)"""

    link: Link
    at: datetime
    method: str
    user_agent: str | None
    headers: Mapping[str, str]
    ip_hash: str


class Decision(NamedTuple):
    is_bot: bool
    reason: str | None
    first_human: bool  # this hit is its link's first human click: it wrote the CLICKED event


class LinkState(NamedTuple):
    """What the batch's transaction read of a link before deciding its hits."""

    sent_at: datetime | None
    first_clicked_at: datetime | None
    last_hit_at: datetime | None


@dataclass
class LinkTotals:
    total: int = 0
    human: int = 0
    first_human_at: datetime | None = None  # set only when the link had no human click before
    last_at: datetime | None = None


def decide_batch(
    hits: Sequence[PendingHit], links: Mapping[int, LinkState]
) -> tuple[list[Decision | None], dict[int, LinkTotals]]:
    """Each hit's decision, in order (None for a hit whose link is not in `links`: it is gone),
    and each link's totals for the batch. Pure."""
    previous = {link_id: state.last_hit_at for link_id, state in links.items()}
    clicked = {link_id for link_id, state in links.items() if state.first_clicked_at is not None}
    decisions: list[Decision | None] = []
    totals: dict[int, LinkTotals] = {}
    for hit in hits:
        link_id = hit.link.id
        state = links.get(link_id)
        if state is None:
            decisions.append(None)
            continue
        is_bot, reason = classify(
            hit.user_agent, hit.method, hit.headers, state.sent_at, hit.at, previous[link_id]
        )
        last = previous[link_id]
        previous[link_id] = hit.at if last is None or hit.at > last else last
        first = not is_bot and link_id not in clicked
        sums = totals.setdefault(link_id, LinkTotals())
        sums.total += 1
        if sums.last_at is None or hit.at > sums.last_at:
            sums.last_at = hit.at
        if not is_bot:
            sums.human += 1
        if first:
            clicked.add(link_id)
            sums.first_human_at = hit.at
        decisions.append(Decision(is_bot, reason, first))
    return decisions, totals


async def _record_postgresql(db: Database, hits: Sequence[PendingHit]) -> list[Decision | None]:
    """PostgreSQL's batch: one statement (`short_links.record_batch`) in its transaction, which
    decides the rules that need the database as `decide_batch` does. Each hit's decision, None
    for a hit whose link no longer exists (nothing is written for it)."""
    reasons = [request_reason(hit.user_agent, hit.method, hit.headers) for hit in hits]
    async with db.transaction() as tx:
        rows = await tx.all(
            "short_links.record_batch",
            ids=sorted({hit.link.id for hit in hits}),
            ord=list(range(len(hits))),
            short_link_id=[hit.link.id for hit in hits],
            at=[hit.at for hit in hits],
            request_reason=reasons,
            user_agent=[(hit.user_agent or "")[:USER_AGENT_KEPT] for hit in hits],
            ip_hash=[hit.ip_hash for hit in hits],
            method=[hit.method for hit in hits],
        )
    decisions: list[Decision | None] = [None] * len(hits)
    for row in rows:
        reason = row["reason"]
        decisions[row["ord"]] = Decision(reason is not None, reason, row["first_human"])
    return decisions


def _record_sqlite(
    hits: Sequence[PendingHit], ids: list[int], conn: sqlite3.Connection
) -> list[Decision | None]:
    """SQLite's batch, on the writer's thread inside its transaction: the read, then one
    executemany per table written. As `_record_postgresql` answers."""
    rows = conn.execute(_sqlite_sql("short_links.batch_links"), {"ids": json_dumps(ids)})
    decisions, totals = decide_batch(hits, _link_states(rows.fetchall()))
    conn.executemany(_sqlite_sql("short_links.insert_hits"), _hit_rows(hits, decisions))
    conn.executemany(_sqlite_sql("short_links.count_hits"), _count_rows(totals))
    clicked = _clicked_rows(hits, decisions)
    if clicked:
        conn.executemany(_sqlite_sql("short_links.insert_clicked"), clicked)
    return decisions


def _sqlite_sql(name: str) -> str:
    return compiled(name, "sqlite")[0]


def _link_states(rows: Iterable[Mapping[str, Any]]) -> dict[int, LinkState]:
    return {
        row["id"]: LinkState(row["sent_at"], row["first_clicked_at"], row["last_hit_at"])
        for row in rows
    }


# SQLite's rows, with times in their stored form (`stored_value`).


def _hit_rows(
    hits: Iterable[PendingHit], decisions: Iterable[Decision | None]
) -> list[dict[str, Any]]:
    return [
        {
            "short_link_id": hit.link.id,
            "tenant_id": hit.link.tenant_id,
            "at": stored_value(hit.at),
            "is_bot": decision.is_bot,
            "reason": decision.reason,
            "user_agent": (hit.user_agent or "")[:USER_AGENT_KEPT],
            "ip_hash": hit.ip_hash,
            "method": hit.method,
        }
        for hit, decision in zip(hits, decisions, strict=True)
        if decision is not None
    ]


def _count_rows(totals: Mapping[int, LinkTotals]) -> list[dict[str, Any]]:
    return [
        {"id": link_id, "total": t.total, "human": t.human,
         "first_human_at": stored_value(t.first_human_at), "last_at": stored_value(t.last_at)}
        for link_id, t in totals.items()
    ]  # fmt: skip


def _clicked_rows(
    hits: Iterable[PendingHit], decisions: Iterable[Decision | None]
) -> list[dict[str, Any]]:
    return [
        {
            "tenant_id": hit.link.tenant_id,
            "campaign_id": hit.link.campaign_id,
            "contact_id": hit.link.contact_id,
            "send_job_id": hit.link.send_job_id,
            "at": stored_value(hit.at),
            "data": json_dumps({"short_link_id": hit.link.id, "reason": None}),
        }
        for hit, decision in zip(hits, decisions, strict=True)
        if decision is not None and decision.first_human
    ]


class WriterClosed(RuntimeError):
    """The app is shutting down: no more hits are taken."""


Waiting = tuple[PendingHit, "asyncio.Future[Decision | None]"]
Outcome = list[Decision | None] | Exception  # a batch's decisions, or why it failed

DRAIN_SECONDS = 0.02  # SQLite: how long one trip to the writer's thread may go on writing


class HitWriter:
    """The queue of hits waiting to be written, and the task that writes them (`run`)."""

    def __init__(self, db: Database, *, max_batch: int = MAX_BATCH) -> None:
        self._db = db
        self._max_batch = max_batch
        # Shared with the SQLite writer's thread, which takes batches from it.
        self._waiting: list[Waiting] = []
        self._waiting_lock = threading.Lock()
        self._wake = asyncio.Event()
        self._closing = False
        self.batches = 0  # transactions committed (figures for tests and the benchmark)
        self.hits = 0

    async def record(self, hit: PendingHit) -> Decision | None:
        """Wait until `hit` is committed; its decision, or None when its link is gone. Raises
        what the transaction raised when it could not be written."""
        if self._closing:
            raise WriterClosed("the hit writer is closed")
        future: asyncio.Future[Decision | None] = asyncio.get_running_loop().create_future()
        with self._waiting_lock:
            self._waiting.append((hit, future))
            first = len(self._waiting) == 1
        if first:
            self._wake.set()
        return await future

    async def run(self) -> None:
        """Write batches until closed and drained."""
        while True:
            if not self._waiting:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            if self._db.dialect == "sqlite":
                await self._drain_on_writer_thread()
            else:
                await self._write_postgresql(self._take())

    async def close(self) -> None:
        """Take no more hits; `run` returns once those waiting are written."""
        self._closing = True
        self._wake.set()

    def _take(self) -> list[Waiting]:
        with self._waiting_lock:
            batch = self._waiting[: self._max_batch]
            del self._waiting[: len(batch)]
        return batch

    async def _drain_on_writer_thread(self) -> None:
        """SQLite: one trip to the writer's thread writes batch after batch while hits wait
        (for up to DRAIN_SECONDS, then other writers get their turn), and each batch is
        answered as soon as it commits. So the next batch starts at once, rather than when this
        event loop, busy with requests, next comes round to start it."""
        loop = asyncio.get_running_loop()

        def drain(writer: SyncWriter) -> None:
            started = time.monotonic()
            while batch := self._take():
                for part, outcome in _write_on_writer_thread(writer, batch):
                    loop.call_soon_threadsafe(self._answer, part, outcome)
                if time.monotonic() - started >= DRAIN_SECONDS:
                    return

        await cast("SqliteDatabase", self._db).on_writer_thread(drain)

    async def _write_postgresql(self, batch: list[Waiting]) -> None:
        try:
            decisions: Outcome = await _record_postgresql(self._db, [hit for hit, _ in batch])
        except Exception as exc:
            if len(batch) > 1:
                # One bad hit must not fail the others: write them one by one.
                log.warning("a batch of %d hits failed (%s): one by one", len(batch), exc)
                for one in batch:
                    await self._write_postgresql([one])
                return
            log.exception("a short-link hit could not be recorded")
            decisions = exc
        self._answer(batch, decisions)

    def _answer(self, batch: list[Waiting], outcome: Outcome) -> None:
        if isinstance(outcome, Exception):
            for _, future in batch:
                if not future.done():
                    future.set_exception(outcome)
            return
        self.batches += 1
        self.hits += len(batch)
        for (_, future), decision in zip(batch, outcome, strict=True):
            if not future.done():  # a request cancelled while waiting: its hit is kept anyway
                future.set_result(decision)


def _write_on_writer_thread(
    writer: SyncWriter, batch: list[Waiting]
) -> list[tuple[list[Waiting], Outcome]]:
    """SQLite, on the writer's thread: the batch in one transaction; when that fails, each of
    its hits in a transaction of its own, so one bad hit fails only its own request."""
    hits = [hit for hit, _ in batch]
    ids = sorted({hit.link.id for hit in hits})
    try:
        return [(batch, writer.transaction(functools.partial(_record_sqlite, hits, ids)))]
    except Exception as exc:
        if len(batch) == 1:
            log.exception("a short-link hit could not be recorded")
            return [(batch, exc)]
        log.warning("a batch of %d hits failed (%s): one by one", len(batch), exc)
        return [part for one in batch for part in _write_on_writer_thread(writer, [one])]


HIT_WRITER = web.AppKey("hit_writer", HitWriter)


async def hit_writer(app: web.Application) -> AsyncIterator[None]:
    """The app's hit writer (a cleanup_ctx after the database): started with the app; at
    shutdown it takes no more hits and writes those waiting before the database closes."""
    writer = HitWriter(app[DB])
    app[HIT_WRITER] = writer
    task = asyncio.create_task(writer.run(), name="hit_writer")
    yield
    await writer.close()
    await task
