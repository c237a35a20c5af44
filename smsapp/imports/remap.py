"""Mapping an upload for the admin pages: the first guess, and re-running a dry-run with a
changed mapping from the cells stored at upload (the browser never sends the file twice).

`redo_dry_run` makes a new batch, exactly as `service.dry_run` would for the same file and
mapping; the earlier batch stays, uncommitted, in the list of past imports.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from smsapp.clock import Clock
from smsapp.db import Database
from smsapp.imports.reading import ImportInputError, ParsedCsv, parse_csv
from smsapp.imports.rows import guess_mapping, validate_mapping
from smsapp.imports.service import PREVIEW_DEFAULT, Actor, DryRun, store_dry_run
from smsapp.phones import normalise_phone

SAMPLE_ROWS = 100  # rows read to recognise the phone column by its contents
PHONE_SHARE = 0.5  # … at least this share of its non-empty cells must be valid mobile numbers


@dataclass(frozen=True)
class FileHead:
    """What the upload page needs of a file before its dry-run: its columns and first rows."""

    headers: list[str]
    sample: list[Sequence[str]]


def read_head(data: bytes) -> FileHead:
    """Reads the whole file (so that every error `parse_csv` finds is reported before anything
    is stored) but keeps only the header and the first rows. CPU-bound: run it in a thread."""
    parsed: ParsedCsv = parse_csv(data)
    return FileHead(parsed.headers, [cells for _, cells in parsed.rows[:SAMPLE_ROWS]])


def phone_column_by_content(
    head: FileHead, default_country: str, taken: set[str] | None = None
) -> str | None:
    """The column whose cells are most often valid mobile numbers (at least half of its
    non-empty cells in the first rows), for files whose phone header has an unusual name."""
    best: tuple[int, str] | None = None
    for index, header in enumerate(head.headers):
        if not header or header in (taken or set()):
            continue
        cells = [
            row[index].strip() for row in head.sample if index < len(row) and row[index].strip()
        ]
        valid = sum(1 for cell in cells if normalise_phone(cell, default_country).ok)
        if valid and valid >= PHONE_SHARE * len(cells) and (best is None or valid > best[0]):
            best = (valid, header)
    return best[1] if best else None


def first_guess(head: FileHead, default_country: str) -> tuple[dict[str, str], str | None]:
    """`guess_mapping` by header names; when no header names the phone, the column that holds
    phone numbers. Returns the mapping and how the phone column was found: "header",
    "content", or None (the person must choose it)."""
    mapping = guess_mapping(head.headers)
    if "phone" in mapping:
        return mapping, "header"
    column = phone_column_by_content(head, default_country, set(mapping.values()))
    if column is None:
        return mapping, None
    return {"phone": column, **mapping}, "content"


async def redo_dry_run(
    db: Database,
    clock: Clock,
    tenant_id: int,
    import_id: int,
    mapping: object,
    actor: Actor,
    *,
    limit: int = PREVIEW_DEFAULT,
) -> DryRun:
    """A new dry-run batch from import `import_id`'s stored rows with `mapping`: the same
    normalisation and decisions as an upload of the same file, the original cells and row
    numbers kept. A committed import is not re-read (409): upload the file again instead."""
    batch = await db.one("imports.batch", id=import_id, tenant_id=tenant_id)
    if batch is None:
        raise ImportInputError(404, "not_found", "no such import")
    if batch["status"] != "dry_run":
        raise ImportInputError(
            409,
            "already_committed",
            "this import is committed; upload the file again to import it with another mapping",
        )
    headers: list[str] = batch["headers"]
    if not headers:
        raise ImportInputError(
            409, "no_headers", "this import kept no column names; upload the file again"
        )
    columns_by_field = validate_mapping(mapping, headers)
    stored = await db.all("import_remap.raw_rows", id=import_id)
    return await store_dry_run(
        db,
        clock,
        tenant_id=tenant_id,
        actor=actor,
        cells=[(r["row_number"], tuple(r["raw"])) for r in stored],
        headers=headers,
        columns_by_field=columns_by_field,
        filename=batch["filename"],
        sha256=batch["sha256"],
        idempotency_key=None,
        encoding=None,
        delimiter=None,
        limit=limit,
    )
