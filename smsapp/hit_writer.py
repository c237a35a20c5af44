"""The redirect's hit writer (pack §9, §16): each hit journaled before its 302, then folded
into the database.

`HitWriter.record` appends the hit to this process's hit journal (smsapp/hit_journal.py) and
returns once the line is written; only then does the redirect answer. The hits of one turn of
the event loop are written together, with one `write` into the file. The request's own rules
(HEAD, prefetch, robots: `click_rules.request_reason`) are decided then, since they read only
the request.

The writer's task (`run`) folds the journal into the database a moment later (FOLD_SECONDS),
one transaction per chunk of a segment: it reads (and on PostgreSQL locks) how far the segment
is folded, reads the whole lines from there, and passes them to the database as one JSON array,
which SQL parses, decides and writes (`short_links.fold…` in smsapp/queries/short_links.sql):
the hits, the links' counters and latest hit times, one CLICKED event per link's first human
click, and the segment's new position. The app's process does no work per hit in a fold: on
SQLite, Python work per hit would take the interpreter lock from the redirect, while SQLite
gives it up as it executes. The time rules (too_soon, burst) and the first human click are decided
there, in the segment's order, from the links' stored state; hits of links gone since they were
cached are dropped, and the link cache forgets their tokens.

So a hit answered is a hit kept: a crash of the app loses nothing answered, and the next start
(of this process, or of another on the same data directory) folds what the crashed one had not.
Each hit is folded exactly once, since a segment's position moves in the transaction that
writes its hits. The counters always equal the stored hits, a burst counts once however it is
folded, and a link gets exactly one CLICKED event, across processes too (PostgreSQL's row locks
serialise two processes' folds that share a link). Counters and reports trail the redirects by
a fold: `fold()` brings them up to date at once; the short-link API and the links page call it
through `fold_before_read`, which waits for it a quarter of a second at most.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

import orjson
from aiohttp import web
from multidict import MultiMapping

from smsapp.click_rules import request_reason
from smsapp.clock import Clock
from smsapp.db import Database, Executor
from smsapp.db.sqlite import stored_value
from smsapp.hit_journal import SEGMENT_BYTES, Chunk, HitJournal, Orphan, orphans, read_chunk
from smsapp.keys import CLOCK, DB, LINK_CACHE, SETTINGS
from smsapp.short_links import USER_AGENT_KEPT, Link

log = logging.getLogger("smsapp.hit_writer")

FOLD_SECONDS = 0.5  # how long journaled hits wait to be folded (and the counters trail)
RETRY_SECONDS = 5.0  # after a fold failed (the database unreachable, say)
FOLD_STALE_SECONDS = 60  # folds failing this long: /readyz says the writer is stalled
READ_FOLD_SECONDS = 0.25  # the longest a read of the counters waits for a fold (API p99 300 ms)


class PendingHit(NamedTuple):
    """One hit as the redirect saw it: a line of the journal, waiting to be folded. (Named
    tuples: one is made per hit, and they are the cheapest to make.)"""

    token: str
    link_id: int
    at: datetime
    method: str
    user_agent: str  # cut to USER_AGENT_KEPT
    ip_hash: str
    request_reason: str | None  # the rules that read the request alone (`request_reason`)


def pending_hit(
    token: str,
    link: Link,
    at: datetime,
    method: str,
    user_agent: str | None,
    headers: MultiMapping[str],
    ip_hash: str,
) -> PendingHit:
    return PendingHit(
        token,
        link.id,
        at,
        method,
        (user_agent or "")[:USER_AGENT_KEPT],
        ip_hash,
        request_reason(user_agent, method, headers),
    )


def journal_line(hit: PendingHit) -> bytes:
    """The hit as one line of the journal: a JSON array of PendingHit's fields in order, its
    time in the stored form of times (`stored_value`), which the fold's SQL reads."""
    at = hit.at
    # orjson writes a UTC time in the stored form several times faster than isoformat does,
    # except that it leaves out a fraction of a second that is zero (tests/test_hit_writer.py).
    when = at if at.tzinfo is UTC and at.microsecond else stored_value(at)
    return orjson.dumps((hit.token, hit.link_id, when, *hit[3:])) + b"\n"


def parse_line(line: bytes) -> PendingHit:
    """A journal line back into its hit; ValueError when it is not one."""
    fields = orjson.loads(line)
    if not isinstance(fields, list) or len(fields) != len(PendingHit._fields):
        raise ValueError("not a journaled hit")
    at = datetime.fromisoformat(fields[2])
    if at.tzinfo is None:
        raise ValueError("a journaled hit's time has no time zone")
    return PendingHit._make([*fields[:2], at, *fields[3:]])


class WriterClosed(RuntimeError):
    """The app is shutting down: no more hits are taken."""


@dataclass(frozen=True)
class Folded:
    """One fold transaction: how far the segment is folded now, the hits it folded, the tokens
    of those whose link is gone (not written), and the lines it could not read (skipped)."""

    end: int
    hits: int
    gone: list[str]
    unreadable: int


def _readable(segment: Path, chunk: Chunk) -> bytes:
    """The chunk's lines that are journaled hits; the others are logged. Only after a fold
    failed: a segment is written whole lines at a time, so an unreadable one means a damaged
    file."""
    kept = []
    for line in chunk.lines:
        try:
            parse_line(line)
        except ValueError:  # orjson.JSONDecodeError is one
            log.error("skipped an unreadable line of the hit journal %s: %r", segment, line[:200])
        else:
            kept.append(line + b"\n")
    return b"".join(kept)


def _hits_json(lines: bytes) -> str:
    """The fold's `:hits`: whole lines, each a JSON array, as one JSON array (one pass over
    the bytes; no object per line)."""
    return "[" + lines[:-1].replace(b"\n", b",").decode() + "]"


async def _fold_chunk(
    db: Database, segment: Path, until: int | None, now: datetime, check: bool
) -> Folded:
    """One chunk of `segment` folded in one transaction: the segment's row (claimed, and on
    PostgreSQL locked), the chunk's whole lines written by SQL (`_fold_lines`), the row
    advanced. `check`: read each line first and leave out those that are not hits."""
    async with db.transaction() as tx:
        start = int(await tx.val("hit_journal.claim", name=segment.name, now=now))
        chunk = read_chunk(segment, start, until)
        if chunk.end == start:
            return Folded(start, 0, [], 0)
        lines, unreadable = chunk.data, 0
        if check:
            lines = _readable(segment, chunk)
            unreadable = chunk.count - lines.count(b"\n")
        gone, folded = await _fold_lines(tx, db.dialect, lines) if lines else ([], 0)
        await tx.run("hit_journal.advance", name=segment.name, folded=chunk.end, now=now)
    return Folded(chunk.end, folded, gone, unreadable)


async def _fold_lines(tx: Executor, dialect: str, lines: bytes) -> tuple[list[str], int]:
    """Decide and write the journaled hits `lines` (whole lines: `short_links.fold…`): the
    tokens of those whose link is gone, and how many hits were written. PostgreSQL does it in
    one statement; SQLite writes the hits, deciding them as it inserts, then the events and
    counters from the rows it has just written."""
    hits, count = _hits_json(lines), lines.count(b"\n")
    if dialect == "postgresql":
        rows = await tx.all("short_links.fold", hits=hits)
    else:
        before = int(await tx.val("short_links.fold_before"))
        written = await tx.run("short_links.fold_hits", hits=hits)
        await tx.run("short_links.fold_clicked", before=before)  # before fold_counts
        await tx.run("short_links.fold_counts", before=before)
        rows = [] if written == count else await tx.all("short_links.fold_gone", hits=hits)
    return [row["token"] for row in rows], count - sum(int(row["hits"]) for row in rows)


class HitWriter:
    """This process's hit journal (`record`), and the task that folds journals into the
    database (`run`, `fold`)."""

    def __init__(
        self,
        db: Database,
        journal: HitJournal | Path,
        clock: Clock,
        *,
        forget: Callable[[str], None] = lambda token: None,
        fold_seconds: float = FOLD_SECONDS,
    ) -> None:
        """`journal`: this process's journal, or the data directory to open it in (in the
        database's journal directory) when it is first needed, so that an app can start, and
        say it is not ready, before its database is migrated."""
        self._db = db
        self._journal = journal if isinstance(journal, HitJournal) else None
        self._data_dir = journal if isinstance(journal, Path) else None
        self._opening = asyncio.Lock()
        self._clock = clock
        self._forget = forget  # a link found gone: the link cache forgets its token
        self._fold_seconds = fold_seconds
        self._lines: list[bytes] = []  # journal lines waiting for this turn's write
        self._waiting: list[asyncio.Future[None]] = []
        self._written = asyncio.Event()  # lines were written since the last fold began
        self._fold_lock = asyncio.Lock()
        self._folded_to: dict[str, int] = {}  # this process's segments: how far folded
        self._closing = False
        self._closed = asyncio.Event()
        self._write_error: str | None = None  # the last write's failure, until one succeeds
        self._failing_since: datetime | None = None  # the first of the folds failing since
        self._read_folds: set[asyncio.Task[int]] = set()  # `fold_before_read`'s, until done
        self.folds = 0  # transactions that folded hits (figures for tests and the benchmark)
        self.hits = 0  # hits folded
        self.unreadable = 0  # journal lines skipped

    @property
    def journal(self) -> HitJournal:
        if self._journal is None:
            raise RuntimeError("the hit journal is not open yet")
        return self._journal

    async def _opened(self) -> HitJournal:
        async with self._opening:
            if self._journal is None:
                assert self._data_dir is not None
                now = self._clock.now()
                self._journal = HitJournal(await journal_directory(self._db, self._data_dir, now))
        return self._journal

    async def record(self, hit: PendingHit) -> None:
        """Return once `hit` is in the journal. Raises OSError when it could not be written."""
        if self._closing:
            raise WriterClosed("the hit writer is closed")
        if self._journal is None:
            await self._opened()
        future = asyncio.get_running_loop().create_future()
        self._lines.append(journal_line(hit))
        self._waiting.append(future)
        if len(self._waiting) == 1:
            asyncio.get_running_loop().call_soon(self._write)
        await future

    def _write(self) -> None:
        """The hits recorded during one turn of the event loop, in one write."""
        lines, waiting = self._lines, self._waiting
        self._lines, self._waiting = [], []
        try:
            self.journal.write(b"".join(lines))
        except OSError as exc:
            log.exception("%d short-link hits could not be journaled", len(lines))
            self._write_error = f"{type(exc).__name__}: {exc}"
            for future in waiting:
                if not future.done():
                    future.set_exception(exc)
            return
        self._write_error = None
        for future in waiting:
            if not future.done():  # a request cancelled while waiting: its hit is kept anyway
                future.set_result(None)
        self._written.set()

    async def readiness(self) -> str:
        """The `hit_journal` check of /readyz: `ok` when hits can be journaled and the journal
        is being folded, else what is wrong. Opens the journal if no hit has yet."""
        try:
            journal = await self._opened()
        except Exception as exc:
            return f"cannot open: {type(exc).__name__}: {exc}"
        if self._write_error is not None:
            return f"failing: the last write failed ({self._write_error})"
        if not journal.active.exists():
            # Deleted under the app (the data directory cleaned, say): writes would still
            # succeed, into a file no fold can find.
            return f"missing: {journal.active} is gone"
        if self._failing_since is not None:
            seconds = (self._clock.now() - self._failing_since).total_seconds()
            if seconds >= FOLD_STALE_SECONDS:
                return f"stalled: no fold has succeeded for {seconds:.0f} s"
        return "ok"

    async def run(self) -> None:
        """Fold until closed: what other processes left first, then this process's hits a
        moment after they are written. Once closed, fold what is left and close the journal
        (its segments are deleted once folded; otherwise the next start adopts them)."""
        while not self._closing:
            try:
                await self.fold()
            except Exception:
                log.exception("could not fold the hit journal; trying again shortly")
                await self._pause(RETRY_SECONDS)
                continue
            await self._written.wait()
            await self._pause(self._fold_seconds)
        folded = False
        try:
            await self.fold()
            folded = True
        except Exception:
            log.exception("could not fold the hit journal at shutdown; the next start will")
        if self._journal is not None:
            self._journal.close(folded=folded)

    async def _pause(self, seconds: float) -> None:
        """Wait `seconds`, or less when the writer closes."""
        closing = asyncio.ensure_future(self._closed.wait())
        try:
            await asyncio.wait([closing], timeout=seconds)
        finally:
            closing.cancel()

    def close(self) -> None:
        """Take no more hits; `run` folds those journaled and returns."""
        self._closing = True
        self._closed.set()
        self._written.set()

    async def fold(self) -> int:
        """Fold every journaled hit into the database, this process's and those left by
        processes that died; the hits folded."""
        async with self._fold_lock:
            try:
                folded = await self._fold_all()
            except Exception:
                if self._failing_since is None:
                    self._failing_since = self._clock.now()
                raise
            self._failing_since = None
            return folded

    async def fold_before_read(self, wait_seconds: float = READ_FOLD_SECONDS) -> bool:
        """Fold before the counters are read (the short-link API, the links page), waiting at
        most `wait_seconds`: True when every hit journaled so far is folded. False when that
        takes longer (a backlog after a database outage, say): the read then shows the counters
        as they are, while the fold goes on in a task of its own. It is not cancelled: a fold
        waited for this way never stops in the middle of a transaction."""
        if self._closing:
            return False
        task = asyncio.create_task(self.fold(), name="hit_writer: fold for a read")
        self._read_folds.add(task)
        task.add_done_callback(self._read_fold_done)
        done, _ = await asyncio.wait({task}, timeout=wait_seconds)
        if task in done:
            task.result()  # a fold that failed fails the read, as before
            return True
        log.info("the counters are read with journaled hits still to fold (a backlog)")
        return False

    def _read_fold_done(self, task: asyncio.Task[int]) -> None:
        self._read_folds.discard(task)
        if not task.cancelled():
            # Retrieved, not logged: a failure is the reader's to report when it waited, and
            # otherwise shows as the writer's own folds fail (they log it; /readyz says stalled).
            task.exception()

    async def _fold_all(self) -> int:
        """What `fold` does, under its lock."""
        self._written.clear()
        folded = 0
        journal = await self._opened()
        for lock in orphans(journal.directory, journal.owner):
            orphan = Orphan(lock)
            with orphan as segments:
                if segments is None:
                    continue  # its owner lives, or another process is adopting it
                for segment in segments:
                    folded += (await self._fold_segment(segment, None))[0]
                    await self._drop(segment)
                orphan.done()
        written = journal.size  # the active segment is folded this far, not what comes after
        for segment in journal.segments():
            until = written if segment == journal.active else None
            hits, end = await self._fold_segment(segment, until)
            folded += hits
            if segment != journal.active:
                await self._drop(segment)
            elif end == journal.size >= SEGMENT_BYTES:
                # Big and folded whole (no await since `size` was read): a new segment.
                await self._drop(journal.roll())
        return folded

    async def _fold_segment(self, segment: Path, until: int | None) -> tuple[int, int]:
        """Fold `segment` from where it was left to its last whole line (or to byte `until`,
        so that a fold under load ends rather than chase new hits), one transaction per chunk
        read: the hits folded, and how far the segment is folded now."""
        if until is not None and self._folded_to.get(segment.name) == until:
            return 0, until  # nothing written since its last fold: no transaction
        folded = 0
        while True:
            done = await self._fold_chunk(segment, until)
            self._folded_to[segment.name] = done.end
            folded += done.hits
            for token in done.gone:
                self._forget(token)
            if done.end == until or not (done.hits or done.gone or done.unreadable):
                return folded, done.end

    async def _fold_chunk(self, segment: Path, until: int | None) -> Folded:
        """One transaction's worth of `segment`. When it fails, the lines are read one by one
        and the fold is tried again without those that are not hits."""
        now = self._clock.now()
        try:
            done = await _fold_chunk(self._db, segment, until, now, check=False)
        except Exception:
            done = await _fold_chunk(self._db, segment, until, now, check=True)
        if done.hits:
            self.folds += 1
            self.hits += done.hits
        self.unreadable += done.unreadable
        return done

    async def _drop(self, segment: Path) -> None:
        """A segment folded whole and written no more: its file, then its position."""
        segment.unlink(missing_ok=True)  # noqa: ASYNC240 (one small unlink, not worth a thread)
        self._folded_to.pop(segment.name, None)
        await self._db.run("hit_journal.forget", name=segment.name)


HIT_WRITER = web.AppKey("hit_writer", HitWriter)

JOURNAL_DIR = "hits"  # under the data directory


async def journal_directory(db: Database, data_dir: Path, now: datetime) -> Path:
    """This database's journal directory: `<data dir>/hits/<name>`, the name kept in the
    database (`hit_journal_home`) by the first process to start."""
    await db.run("hit_journal.claim_home", name=uuid.uuid4().hex, now=now)
    return data_dir / JOURNAL_DIR / str(await db.val("hit_journal.home"))


async def hit_writer(app: web.Application) -> AsyncIterator[None]:
    """The app's hit writer (a cleanup_ctx after the database): started with the app, it first
    folds what a previous process left; at shutdown it takes no more hits and folds those
    journaled before the database closes."""
    data_dir = app[SETTINGS].data_dir
    writer = HitWriter(app[DB], data_dir, app[CLOCK], forget=app[LINK_CACHE].forget)
    app[HIT_WRITER] = writer
    task = asyncio.create_task(writer.run(), name="hit_writer")
    yield
    writer.close()
    await task
