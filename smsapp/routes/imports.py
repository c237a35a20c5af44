"""Contacts import API (pack §6, §17)."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import BodyPartReader, web

from smsapp import audit
from smsapp.access import CALLER, Access, Caller, route
from smsapp.errors import ApiError, path_int, read_json
from smsapp.imports.reading import MAX_BYTES, ImportInputError
from smsapp.imports.service import (
    PREVIEW_DEFAULT,
    Actor,
    CommitResult,
    DryRun,
    commit,
    dry_run,
    rejected_csv,
)
from smsapp.keys import CLOCK, DB

MAX_FIELD_BYTES = 64 * 1024


def actor_of(caller: Caller) -> Actor:
    return Actor(user_id=caller.user_id, api_key_id=caller.api_key_id)


def input_error(exc: ImportInputError) -> ApiError:
    return ApiError(exc.status, exc.code, exc.message)


async def read_upload(request: web.Request) -> tuple[str, bytes, dict[str, str]]:
    """The multipart upload: the file (at most MAX_BYTES, else 413) and the text fields."""
    if not request.content_type.startswith("multipart/"):
        raise ApiError(400, "bad_request", "send multipart/form-data with a 'file' and a 'mapping'")
    reader = await request.multipart()
    filename, data, fields = "", b"", {}
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader) or not part.name:
            continue
        if part.name == "file":
            filename = part.filename or "upload.csv"
            chunks, size = [], 0
            while chunk := await part.read_chunk(256 * 1024):
                size += len(chunk)
                if size > MAX_BYTES:
                    raise ApiError(
                        413, "file_too_large", f"the file is over {MAX_BYTES // 2**20} MB"
                    )
                chunks.append(chunk)
            data = b"".join(chunks)
        else:
            raw = await part.read(decode=True)
            if len(raw) > MAX_FIELD_BYTES:
                raise ApiError(413, "too_large", f"the field {part.name!r} is too large")
            fields[part.name] = raw.decode("utf-8", errors="replace")
    if not filename:
        raise ApiError(400, "missing_file", "attach the CSV as the 'file' field")
    return filename, data, fields


def parse_mapping(fields: dict[str, str]) -> object:
    raw = fields.get("mapping")
    if raw is None:
        raise ApiError(400, "bad_mapping", "send 'mapping': a JSON object of field → CSV header")
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ApiError(400, "bad_mapping", f"mapping is not valid JSON: {exc}") from None


def preview_limit(request: web.Request) -> int:
    raw = request.query.get("limit", "50")
    if not raw.isdigit():
        raise ApiError(400, "bad_request", "limit must be a whole number (at most 200)")
    return int(raw)


async def dry_run_and_audit(
    request: web.Request,
    *,
    tenant_id: int,
    filename: str,
    data: bytes,
    mapping: object,
    key: str | None = None,
    limit: int = PREVIEW_DEFAULT,
) -> DryRun:
    """A dry-run for the caller and, unless an idempotency key returned an earlier batch, its
    audit entry; for the API and the upload page. Errors stay ImportInputError: the API
    answers them, the page shows them beside the form."""
    caller: Caller = request[CALLER]
    db, clock = request.app[DB], request.app[CLOCK]
    result = await dry_run(
        db,
        clock,
        tenant_id=tenant_id,
        actor=actor_of(caller),
        filename=filename,
        data=data,
        mapping=mapping,
        idempotency_key=key,
        limit=limit,
    )
    if not result.existing:
        await audit.record_request(
            request,
            db,
            clock,
            "import.dry_run",
            target_type="import",
            target_id=result.import_id,
            details={"filename": filename, "rows": result.rows},
        )
    return result


async def api_dry_run(request: web.Request) -> web.Response:
    tenant_id = request[CALLER].require_tenant()
    limit = preview_limit(request)
    filename, data, fields = await read_upload(request)
    try:
        result = await dry_run_and_audit(
            request,
            tenant_id=tenant_id,
            filename=filename,
            data=data,
            mapping=parse_mapping(fields),
            key=fields.get("idempotency_key") or None,
            limit=limit,
        )
    except ImportInputError as exc:
        raise input_error(exc) from None
    body: dict[str, Any] = {
        "import_id": result.import_id,
        "status": "dry_run",
        "rows": result.rows,
        "counts": result.counts,
        "decisions": result.decisions,
        "encoding": result.encoding,
        "delimiter": result.delimiter,
    }
    return web.json_response(body, status=200 if result.existing else 201)


async def api_commit(request: web.Request) -> web.Response:
    tenant_id = request[CALLER].require_tenant()
    body = await read_json(request)
    import_id = body.get("import_id")
    if not isinstance(import_id, int) or isinstance(import_id, bool):
        raise ApiError(400, "bad_request", "import_id must be the id a dry-run returned")
    if body.get("consent_confirmed") is not True:
        raise ApiError(
            400,
            "consent_required",
            "confirm that these contacts consented to receive messages: consent_confirmed: true",
        )
    key = body.get("idempotency_key")
    if key is not None and (not isinstance(key, str) or not 1 <= len(key) <= 200):
        raise ApiError(400, "bad_request", "idempotency_key must be a string of 1–200 characters")
    result = await commit_and_audit(request, tenant_id=tenant_id, import_id=import_id, key=key)
    return web.json_response(
        {"import_id": result.import_id, "status": result.status, "counts": result.counts}
    )


async def commit_and_audit(
    request: web.Request, *, tenant_id: int, import_id: int, key: str | None = None
) -> CommitResult:
    """Commits the import for the caller (its errors as ApiError) and, unless it was already
    committed, records it in the audit log; for the API and the admin pages."""
    caller: Caller = request[CALLER]
    db, clock = request.app[DB], request.app[CLOCK]
    try:
        result = await commit(
            db,
            clock,
            tenant_id=tenant_id,
            import_id=import_id,
            actor=actor_of(caller),
            confirmed_by_email=caller.email,
            idempotency_key=key,
        )
    except ImportInputError as exc:
        raise input_error(exc) from None
    if not result.already_committed:
        await audit.record_request(
            request,
            db,
            clock,
            "import.commit",
            target_type="import",
            target_id=result.import_id,
            details={"counts": result.counts},
        )
    return result


def batch_json(batch: dict[str, Any]) -> dict[str, Any]:
    return {
        "import_id": batch["id"],
        "status": batch["status"],
        "filename": batch["filename"],
        "rows": batch["row_count"],
        "counts": batch["counts"],
        "created_at": batch["created_at"].isoformat(),
        "committed_at": batch["committed_at"].isoformat() if batch["committed_at"] else None,
        "consent_confirmed_at": batch["consent_confirmed_at"].isoformat()
        if batch["consent_confirmed_at"]
        else None,
    }


async def api_get(request: web.Request) -> web.Response:
    tenant_id = request[CALLER].require_tenant()
    import_id = path_int(request, "import_id", "import")
    batch = await request.app[DB].one("imports.batch", id=import_id, tenant_id=tenant_id)
    if batch is None:
        raise ApiError(404, "not_found", "no such import")
    return web.json_response(batch_json(batch))


async def api_list(request: web.Request) -> web.Response:
    tenant_id = request[CALLER].require_tenant()
    batches = await request.app[DB].all("imports.list_batches", tenant_id=tenant_id, limit=100)
    return web.json_response(
        {
            "imports": [
                {
                    "import_id": b["id"],
                    "status": b["status"],
                    "filename": b["filename"],
                    "rows": b["row_count"],
                    "counts": b["counts"],
                    "created_at": b["created_at"].isoformat(),
                }
                for b in batches
            ]
        }
    )


async def api_rejected_csv(request: web.Request) -> web.Response:
    tenant_id = request[CALLER].require_tenant()
    import_id = path_int(request, "import_id", "import")
    try:
        text = await rejected_csv(request.app[DB], tenant_id=tenant_id, import_id=import_id)
    except ImportInputError as exc:
        raise input_error(exc) from None
    return web.Response(
        text=text,
        content_type="text/csv",
        charset="utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="import-{import_id}-rejected.csv"',
            "Cache-Control": "no-store",
        },
    )


routes = [
    route("POST", "/api/imports/contacts/dry-run", api_dry_run, access=Access.STAFF),
    route("POST", "/api/imports/contacts/commit", api_commit, access=Access.STAFF),
    route("GET", "/api/imports", api_list, access=Access.VIEWER),
    route("GET", "/api/imports/{import_id}", api_get, access=Access.VIEWER),
    route("GET", "/api/imports/{import_id}/rejected.csv", api_rejected_csv, access=Access.VIEWER),
]
