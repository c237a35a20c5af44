"""Dry-run and commit of a contacts import, in bulk (pack §6, §16).

Each phone number is parsed once, at dry-run; the normalised rows are stored with the batch,
so any process can commit it. Commit recomputes the decisions inside its transaction (a number
put on DNC since the dry-run is not imported) and applies the batch at most once.

For speed (docs/imports.md, Performance): rows are normalised in worker processes, which also
serialise each row's lineage JSON; the main process keeps only what the decisions need per row
(`RowKey`). Commit reads back only what the decisions need, in a few JSON documents built by
the database, and creates contacts with one INSERT … SELECT from the stored rows.
"""

from __future__ import annotations

import asyncio
import csv
import gc
import hashlib
import io
from collections import Counter
from collections.abc import AsyncGenerator, Iterable, Iterator, Sequence
from contextlib import aclosing, contextmanager
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from typing import Any
from zoneinfo import ZoneInfo

from smsapp.clock import Clock
from smsapp.csv_safety import neutralise
from smsapp.db import Database, Executor, Row, json_dumps, json_loads
from smsapp.dnc import numbers_on_dnc
from smsapp.imports.reading import ImportInputError, NumberedRow, open_csv
from smsapp.imports.rows import (
    DECISIONS,
    Decidable,
    Decider,
    Decision,
    Existing,
    Lookups,
    NormalisedRow,
    RowKey,
    normalise_row,
    validate_mapping,
)
from smsapp.suppression import active_suppressed_numbers
from smsapp.workers import get_pool

PARALLEL_MIN_ROWS = 5_000  # below this, worker processes cost more than they save
CHUNK_ROWS = 5_000  # rows per worker task: small, so that reading, normalising and writing overlap
PREVIEW_DEFAULT = 50
PREVIEW_MAX = 200
LOOKUP_CHUNK = 50_000  # list parameters are split so no statement carries an unbounded array
WRITE_CHUNK = 20_000  # lineage rows per INSERT statement
READ_CHUNK = 20_000  # lineage rows per JSON document read back at commit
# Decisions that depend on the file alone, never on the database: commit keeps them.
FILE_DECISIONS = ("invalid_phone", "duplicate")


_json = json_dumps
_gc_pauses = 0
_gc_was_enabled = True


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off while a large import runs, back on after the last
    one ends. It rescans every live container each time the heap grows by a quarter, and an
    import's per-row tuples and lists grow it steadily: that rescanning cost 2 s of a 100k-row
    import. Imports make no reference cycles worth collecting; reference counting still frees
    everything as usual, and the few cycles other requests make meanwhile wait until after."""
    global _gc_pauses, _gc_was_enabled
    if _gc_pauses == 0:
        _gc_was_enabled = gc.isenabled()
        gc.disable()
    _gc_pauses += 1
    try:
        yield
    finally:
        _gc_pauses -= 1
        if _gc_pauses == 0 and _gc_was_enabled:
            gc.enable()


@dataclass(frozen=True)
class Actor:
    user_id: int | None
    api_key_id: int | None


@dataclass(frozen=True)
class DryRun:
    import_id: int
    counts: dict[str, int]
    decisions: list[dict[str, Any]]
    rows: int
    encoding: str | None
    delimiter: str | None
    existing: bool = False  # an idempotency key returned an earlier batch


@dataclass(frozen=True)
class NormalisedChunk:
    """A slice of the file, normalised: per row, what the decisions need, and the lineage JSON
    (import_rows.data and .raw), serialised where the row was normalised."""

    keys: list[RowKey]
    data: list[str]
    raw: list[str]


def normalise_chunk(
    rows: Sequence[NumberedRow], columns: dict[str, int], default_country: str, tz_name: str
) -> NormalisedChunk:
    tz = ZoneInfo(tz_name)
    chunk = NormalisedChunk([], [], [])
    for number, cells in rows:
        row = normalise_row(number, cells, columns, default_country=default_country, tenant_tz=tz)
        chunk.keys.append(RowKey.of(row))
        chunk.data.append(_json(row.to_json()))
        chunk.raw.append(_json(cells))
    return chunk


async def normalise_in_order(
    rows: Iterable[NumberedRow], columns: dict[str, int], default_country: str, tz_name: str
) -> AsyncGenerator[NormalisedChunk, None]:
    """Normalise every row once, off the event loop, and yield the chunks in file order: in a
    thread for a small file; for a large one, spread over the worker processes (phone parsing
    is CPU-bound pure Python), each chunk handed to them as soon as it is read, and yielded as
    soon as it and those before it are done, so that reading the file, normalising it and the
    caller's work on the chunks all overlap. A file that turns out unreadable part way (rows
    raise ImportInputError) raises before the first chunk is yielded."""
    rows = iter(rows)
    head = list(islice(rows, PARALLEL_MIN_ROWS))
    if len(head) < PARALLEL_MIN_ROWS:
        yield await asyncio.to_thread(normalise_chunk, head, columns, default_country, tz_name)
        return
    loop, pool = asyncio.get_running_loop(), get_pool()
    pending = [loop.run_in_executor(pool, normalise_chunk, head, columns, default_country, tz_name)]
    try:
        while part := list(islice(rows, CHUNK_ROWS)):
            pending.append(
                loop.run_in_executor(pool, normalise_chunk, part, columns, default_country, tz_name)
            )
        for future in pending:
            yield await future
    finally:
        for future in pending:
            future.cancel()


def _chunks(values: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(values), LOOKUP_CHUNK):
        yield values[start : start + LOOKUP_CHUNK]


async def load_lookups(
    db: Executor, tenant_id: int, rows: Sequence[Decidable], now: datetime
) -> Lookups:
    """Everything the decisions of `rows` (a chunk of the file) consult: a few set queries."""
    phones = sorted({r.phone_e164 for r in rows if r.phone_e164})
    emails = sorted({r.email for r in rows if r.email})
    dnc: set[str] = set()
    suppressed: set[str] = set()
    by_phone: dict[str, Existing] = {}
    by_email: dict[str, Existing] = {}
    for chunk in _chunks(phones):
        dnc |= await numbers_on_dnc(db, tenant_id=tenant_id, phones=chunk)
        suppressed |= await active_suppressed_numbers(db, tenant_id, chunk, now)
        for c in await db.all("imports.contacts_by_phone", tenant_id=tenant_id, phones=chunk):
            by_phone[c["phone_e164"]] = Existing(c["id"], c["phone_e164"], c["email"])
    for chunk in _chunks(emails):
        for c in await db.all("imports.contacts_by_email", tenant_id=tenant_id, emails=chunk):
            by_email.setdefault(c["email"], Existing(c["id"], c["phone_e164"], c["email"]))
    return Lookups(frozenset(dnc), frozenset(suppressed), by_phone, by_email)


def _decision_json(d: Decision) -> dict[str, Any]:
    return {"row": d.row, "decision": d.decision, "reasons": d.reasons, "phone_e164": d.phone_e164}


async def _insert_lineage(
    tx: Executor, batch_id: int, chunk: NormalisedChunk, decisions: list[Decision], now: datetime
) -> None:
    """The chunk's import_rows, WRITE_CHUNK rows a statement: on SQLite one JSON document that
    the statement unpacks (json_each), on PostgreSQL one array per column (unnest)."""
    for start in range(0, len(decisions), WRITE_CHUNK):
        part = range(start, min(start + WRITE_CHUNK, len(decisions)))
        if tx.dialect == "sqlite":
            rows = [
                (d.row, chunk.data[i], chunk.raw[i], d.decision, _json(d.reasons), d.contact_id,
                 d.previous_phone_e164)
                for i, d in zip(part, decisions[part.start : part.stop], strict=True)
            ]  # fmt: skip
            await tx.run("imports.insert_rows", import_batch_id=batch_id, now=now, rows=_json(rows))
        else:
            ds = decisions[part.start : part.stop]
            await tx.run(
                "imports.insert_rows",
                import_batch_id=batch_id,
                now=now,
                row_number=[d.row for d in ds],
                data=chunk.data[part.start : part.stop],
                raw=chunk.raw[part.start : part.stop],
                decision=[d.decision for d in ds],
                reasons=[_json(d.reasons) for d in ds],
                contact_id=[d.contact_id for d in ds],
                previous_phone_e164=[d.previous_phone_e164 for d in ds],
            )


async def dry_run(
    db: Database,
    clock: Clock,
    *,
    tenant_id: int,
    actor: Actor,
    filename: str,
    data: bytes,
    mapping: object,
    idempotency_key: str | None = None,
    limit: int = PREVIEW_DEFAULT,
) -> DryRun:
    sha256 = hashlib.sha256(data).hexdigest()
    if idempotency_key:
        earlier = await db.one("imports.batch_by_key", tenant_id=tenant_id, key=idempotency_key)
        if earlier is not None:
            if earlier["sha256"] != sha256:
                raise ImportInputError(
                    409,
                    "idempotency_key_reused",
                    "this idempotency_key was used for a different file",
                )
            return await existing_dry_run(db, earlier, limit)
    file = open_csv(data)  # the rows are read as store_dry_run goes; nothing is written before
    return await store_dry_run(
        db,
        clock,
        tenant_id=tenant_id,
        actor=actor,
        cells=file.rows,
        headers=file.headers,
        columns_by_field=validate_mapping(mapping, file.headers),
        filename=filename[:255],
        sha256=sha256,
        idempotency_key=idempotency_key,
        encoding=file.encoding,
        delimiter=file.delimiter,
        limit=limit,
    )


async def store_dry_run(
    db: Database,
    clock: Clock,
    *,
    tenant_id: int,
    actor: Actor,
    cells: Iterable[NumberedRow],
    headers: list[str],
    columns_by_field: dict[str, str],
    filename: str,
    sha256: str,
    idempotency_key: str | None,
    encoding: str | None,
    delimiter: str | None,
    limit: int,
) -> DryRun:
    """Normalises `cells` (row number, original cells) with the validated mapping, decides
    every row and stores a new dry-run batch with its rows; for an upload and for a re-run of
    an earlier upload's stored cells with another mapping."""
    index = {h: i for i, h in enumerate(headers)}
    columns = {name: index[header] for name, header in columns_by_field.items()}
    tenant = await db.one("imports.tenant", tenant_id=tenant_id)
    assert tenant is not None
    limit = _preview_limit(limit)
    now = clock.now()
    decider = Decider()
    tally: Counter[str] = Counter()
    preview: list[dict[str, Any]] = []
    rows = 0
    with cyclic_gc_paused():
        # The batch is written first (once the file has been read whole without error) and its
        # counts last, so that each chunk of rows is decided and written while the workers
        # normalise the next ones.
        async with aclosing(
            normalise_in_order(cells, columns, tenant["default_country"], tenant["timezone"])
        ) as chunks:
            chunk: NormalisedChunk | None = await anext(chunks)
            async with db.transaction() as tx:
                batch_id: int = await tx.val(
                    "imports.insert_batch",
                    tenant_id=tenant_id,
                    filename=filename,
                    sha256=sha256,
                    mapping=columns_by_field,
                    headers=headers,
                    idempotency_key=idempotency_key,
                    row_count=0,
                    counts={},
                    created_by=actor.user_id,
                    api_key_id=actor.api_key_id,
                    now=now,
                )
                # Each chunk's rows are written while the next one is normalised, looked up and
                # decided: the lookups read on another connection (a SQLite reader, or another
                # PostgreSQL session), so the database writes and this process decides at once.
                writing: asyncio.Future[None] | None = None
                try:
                    while chunk is not None:
                        lookups = await load_lookups(db, tenant_id, chunk.keys, now)
                        decisions = decider.decide(chunk.keys, lookups)
                        tally.update(d.decision for d in decisions)
                        rows += len(decisions)
                        preview += [_decision_json(d) for d in decisions[: limit - len(preview)]]
                        if writing is not None:
                            await writing
                        writing = asyncio.ensure_future(
                            _insert_lineage(tx, batch_id, chunk, decisions, now)
                        )
                        chunk = await anext(chunks, None)
                    if writing is not None:
                        await writing
                finally:
                    if writing is not None and not writing.done():
                        await asyncio.wait([writing])  # never leave a write running on a rollback
                counts = {name: tally.get(name, 0) for name in DECISIONS}
                await tx.run("imports.set_counts", id=batch_id, counts=counts, row_count=rows)
    return DryRun(batch_id, counts, preview, rows, encoding, delimiter)


def _preview_limit(limit: int) -> int:
    return max(0, min(limit, PREVIEW_MAX))


async def existing_dry_run(db: Database, batch: Row, limit: int) -> DryRun:
    preview = await db.all("imports.first_decisions", id=batch["id"], limit=_preview_limit(limit))
    decisions = [
        {
            "row": p["row"],
            "decision": p["decision"],
            "reasons": p["reasons"],
            "phone_e164": p["data"]["phone_e164"],
        }
        for p in preview
    ]
    return DryRun(
        batch["id"], batch["counts"], decisions, batch["row_count"], None, None, existing=True
    )


@dataclass(frozen=True)
class CommitResult:
    import_id: int
    status: str
    counts: dict[str, int]
    already_committed: bool


def _merged(
    row: NormalisedRow,
    old: Row | None,
    *,
    default_country: str,
    consent_at: datetime,
    consent_source: str,
) -> dict[str, Any]:
    """The contact's new values: empty cells never blank a field, tags and attributes merge,
    consent already given is kept."""
    old = old or {}
    tags = list(old.get("tags") or [])
    tags += [t for t in row.tags if t not in tags]
    row_consent = datetime.fromisoformat(row.consent_at) if row.consent_at else None
    keep_consent = old.get("consent_at") is not None
    return {
        "phone_e164": row.phone_e164,
        "email": row.email or old.get("email"),
        "first_name": row.first_name or old.get("first_name"),
        "last_name": row.last_name or old.get("last_name"),
        "country": row.country or old.get("country") or default_country,
        "state": row.state or old.get("state"),
        "postcode": row.postcode or old.get("postcode"),
        "timezone": row.timezone or old.get("timezone"),
        "tags": _json(tags),
        "attributes": _json({**(old.get("attributes") or {}), **row.attributes}),
        "consent_source": old.get("consent_source")
        if keep_consent
        else (row.consent_source or consent_source),
        "consent_at": old.get("consent_at") if keep_consent else (row_consent or consent_at),
    }


async def _fetch_rows_to_decide(reader: Executor, import_id: int, after: int) -> list[Any]:
    found = await reader.one("imports.rows_to_decide", id=import_id, after=after, limit=READ_CHUNK)
    document = found["rows"] if found else None
    items: list[Any] = (
        json_loads(document) if isinstance(document, str | bytes) else (document or [])
    )
    items.sort(key=lambda item: item[0])
    return items


async def _rows_to_decide(
    reader: Executor, import_id: int
) -> AsyncGenerator[tuple[list[RowKey], list[list[Any]]], None]:
    """The batch's rows whose decision depends on the database, in file order and READ_CHUNK
    rows at a time: what the decisions need, and the stored decision (its decision, reasons,
    contact_id and previous_phone_e164). Rows decided `invalid_phone` or `duplicate` are left
    out: those decisions depend on the file alone (the number, and the rows above), so
    recomputing them gives the same answer, and no other row's decision depends on them.
    Read as JSON documents that the database builds (far cheaper than a result row per row),
    each fetched on `reader` while the caller works on the one before."""
    fetching = asyncio.ensure_future(_fetch_rows_to_decide(reader, import_id, 0))
    try:
        while items := await fetching:
            fetching = asyncio.ensure_future(_fetch_rows_to_decide(reader, import_id, items[-1][0]))
            yield (
                [RowKey(item[0], item[1], None, item[2], tuple(item[3])) for item in items],
                [item[4:] for item in items],
            )
    finally:
        if not fetching.done():
            fetching.cancel()
            await asyncio.wait([fetching])


def _changed(decision: Decision, stored: list[Any]) -> bool:
    return [
        decision.decision,
        decision.reasons,
        decision.contact_id,
        decision.previous_phone_e164,
    ] != stored


async def commit(
    db: Database,
    clock: Clock,
    *,
    tenant_id: int,
    import_id: int,
    actor: Actor,
    confirmed_by_email: str | None,
    idempotency_key: str | None = None,
) -> CommitResult:
    now = clock.now()
    with cyclic_gc_paused():
        async with db.transaction() as tx:
            if idempotency_key:
                keyed = await tx.one(
                    "imports.batch_by_key", tenant_id=tenant_id, key=idempotency_key
                )
                if keyed is not None and keyed["status"] == "committed":
                    return CommitResult(keyed["id"], "committed", keyed["counts"], True)
            batch = await tx.one("imports.batch_for_commit", id=import_id, tenant_id=tenant_id)
            if batch is None:
                raise ImportInputError(404, "not_found", "no such import")
            if batch["status"] == "committed":
                return CommitResult(batch["id"], "committed", batch["counts"], True)
            counts = await _redecide(db, tx, batch, now)
            source = f"import #{import_id}" + (
                f", confirmed by {confirmed_by_email}" if confirmed_by_email else ""
            )
            await _apply(tx, batch, source, now)
            await tx.run(
                "imports.mark_committed",
                id=import_id,
                counts=counts,
                user_id=actor.user_id,
                idempotency_key=idempotency_key,
                now=now,
            )
    return CommitResult(import_id, "committed", counts, False)


async def _redecide(db: Database, tx: Executor, batch: Row, now: datetime) -> dict[str, int]:
    """Recompute the decisions that depend on the database and rewrite the lineage rows whose
    decision changed since the dry-run; the counts of all decisions."""
    import_id, tenant_id = batch["id"], batch["tenant_id"]
    decider = Decider()
    tally = Counter({name: batch["counts"].get(name, 0) for name in FILE_DECISIONS})
    # The rows are read on another connection (committed at dry-run; a SQLite reader, or
    # another PostgreSQL session), the next chunk while this one is looked up and decided.
    async with aclosing(_rows_to_decide(db, import_id)) as chunks:
        async for keys, stored in chunks:
            decisions = decider.decide(keys, await load_lookups(tx, tenant_id, keys, now))
            tally.update(d.decision for d in decisions)
            await tx.bulk("imports.update_row_decisions", (
                {"import_batch_id": import_id, "row_number": d.row, "decision": d.decision,
                 "reasons": _json(d.reasons), "contact_id": d.contact_id,
                 "previous_phone_e164": d.previous_phone_e164}
                for d, old in zip(decisions, stored, strict=True) if _changed(d, old)
            ))  # fmt: skip
    return {name: tally.get(name, 0) for name in DECISIONS}


async def _apply(tx: Executor, batch: Row, source: str, now: datetime) -> None:
    """Update and create the contacts of the rows as their lineage rows now decide, link the
    created rows to their contacts, and record an IMPORTED event for each contact."""
    import_id, tenant_id = batch["id"], batch["tenant_id"]
    tenant = await tx.one("imports.tenant", tenant_id=tenant_id)
    assert tenant is not None
    values = {"default_country": tenant["default_country"], "consent_at": now,
              "consent_source": source}  # fmt: skip
    # Updates first: an email match may move a contact off a number a later row creates.
    updates = await tx.all("imports.rows_to_update", id=import_id, tenant_id=tenant_id)
    await tx.bulk("imports.update_contacts", (
        {"id": u["id"], **_merged(NormalisedRow.from_json(u["data"]), u, **values),
         "batch_id": import_id, "now": now}
        for u in updates
    ))  # fmt: skip
    del updates
    await tx.run(
        "imports.insert_created_contacts",
        id=import_id,
        tenant_id=tenant_id,
        default_country=tenant["default_country"],
        consent_source=source,
        now=now,
    )
    await tx.run("imports.link_created_rows", id=import_id, tenant_id=tenant_id)
    await tx.run("imports.insert_events", id=import_id, tenant_id=tenant_id, now=now)


async def rejected_csv(db: Database, *, tenant_id: int, import_id: int) -> str:
    batch = await db.one("imports.batch", id=import_id, tenant_id=tenant_id)
    if batch is None:
        raise ImportInputError(404, "not_found", "no such import")
    rows = await db.all("imports.rejected_rows", id=import_id)
    headers: list[str] = batch["headers"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([neutralise(h) for h in headers] + ["decision", "reason"])
    for r in rows:
        # Ragged rows are padded to the header's width; extra cells are kept.
        cells = list(r["raw"]) + [""] * (len(headers) - len(r["raw"]))
        writer.writerow([neutralise(c) for c in cells] + [r["decision"], ";".join(r["reasons"])])
    return out.getvalue()
