"""The contacts import admin pages (pack §6), without JavaScript:

    GET  /admin/imports               past imports with their counts; the upload form (staff)
    POST /admin/imports/upload        read the file, guess the mapping, dry-run, show the preview
    GET  /admin/imports/{id}          counts, the first 50 decisions, the mapping, commit form
    POST /admin/imports/{id}/remap    dry-run again with another mapping (a new import)
    POST /admin/imports/{id}/commit   commit, once the consent box is ticked

The upload is multipart, so its CSRF token travels in the form action's query string. The
flow is described in docs/imports.md.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from smsapp import audit
from smsapp.access import CALLER, Access, route
from smsapp.db import Row
from smsapp.errors import ApiError, not_found, path_int
from smsapp.imports.reading import ImportInputError
from smsapp.imports.remap import FileHead, first_guess, read_head, redo_dry_run
from smsapp.imports.rows import ATTRIBUTE_NAME, DECISIONS, FIELDS, REJECTED
from smsapp.keys import CLOCK, DB
from smsapp.pages import flash, redirect, render
from smsapp.routes.imports import actor_of, commit_and_audit, dry_run_and_audit, read_upload

PREVIEW_ROWS = 50
SAMPLE_VALUES = 3
LIST_LIMIT = 100
MAP_PREFIX = "map."  # form fields: map.<field> = CSV header
ATTR_PREFIX = "attr."  # form fields: attr.<column index> = attribute name

FIELD_LABELS: dict[str, str] = {
    "phone": "Phone",
    "email": "Email",
    "first_name": "First name",
    "last_name": "Last name",
    "country": "Country",
    "state": "State",
    "postcode": "Postcode",
    "timezone": "Timezone",
    "tags": "Tags",
    "consent_source": "Consent source",
    "consent_at": "Consent given at",
}
assert tuple(FIELD_LABELS) == FIELDS

# Counts are shown in this order: what is imported, then what is left out and why.
DECISION_LABELS: dict[str, str] = {
    "create": "New contacts",
    "update": "Updated contacts",
    "invalid_phone": "Invalid numbers",
    "duplicate": "Duplicates in file",
    "dnc": "Do not contact",
    "suppressed_by_cooldown": "Suppressed",
}
assert set(DECISION_LABELS) == set(DECISIONS)

REASON_TEXT: dict[str, str] = {
    "missing_phone": "no phone number",
    "unparseable": "not a phone number",
    "invalid_number": "not a valid number",
    "not_mobile": "not a mobile number",
    "dnc": "on the do-not-contact list",
    "suppressed": "a suppression rule covers it",
    "matched_phone": "matches a contact's phone",
    "matched_email": "matches a contact's email",
    "phone_changed": "that contact's phone changes",
    "email_ignored": "email ignored: not an address",
    "timezone_ignored": "timezone ignored: unknown",
    "consent_at_unreadable": "consent date ignored: unreadable",
}


def reason_text(code: str) -> str:
    if code.startswith("duplicate_of_row:"):
        return f"same number as row {code.partition(':')[2]}"
    return REASON_TEXT.get(code, code)


def attribute_name(text: str) -> str:
    """What a person types as an attribute name, as the name stored (`Loyalty Tier` →
    `loyalty_tier`)."""
    return re.sub(r"[^a-z0-9_]+", "_", text.strip().lower()).strip("_")


def suggested_attribute(header: str) -> str:
    name = attribute_name(header)
    return name if ATTRIBUTE_NAME.match(name) and name not in FIELDS else ""


def mapping_from_form(form: Mapping[str, str], headers: list[str]) -> dict[str, str]:
    """The mapping form as `{field or attribute: header}`; `validate_mapping` checks it
    against the file."""
    mapping: dict[str, str] = {}
    for name in FIELDS:
        header = form.get(MAP_PREFIX + name, "").strip()
        if header:
            mapping[name] = header
    for index, header in enumerate(headers):
        typed = form.get(f"{ATTR_PREFIX}{index}", "").strip()
        if not typed or not header:
            continue
        name = attribute_name(typed)
        if name in FIELDS:
            raise ImportInputError(
                400, "bad_mapping", f"{name!r} is a field: choose its column in the list above"
            )
        if not ATTRIBUTE_NAME.match(name):
            raise ImportInputError(
                400,
                "bad_mapping",
                f"{typed!r} cannot be an attribute name: start it with a letter and use "
                "letters, digits and underscores",
            )
        if name in mapping:
            raise ImportInputError(
                400, "bad_mapping", f"the attribute name {name!r} is given to two columns"
            )
        mapping[name] = header
    return mapping


def _text_fields(form: Mapping[str, Any]) -> dict[str, str]:
    return {k: v for k, v in form.items() if isinstance(v, str)}


def _has_mapping(fields: Mapping[str, str]) -> bool:
    return any(k.startswith(MAP_PREFIX) for k in fields)


def _choices(
    headers: list[str], selected: Mapping[str, str], attributes: Mapping[int, str] | None = None
) -> dict[str, Any]:
    """What the mapping form shows: a select per field, the current choice of each."""
    return {
        "fields": list(FIELD_LABELS.items()),
        "headers": [h for h in headers if h],
        "selected": {name: selected.get(name, "") for name in FIELDS},
        "attributes": attributes or {},
    }


# --- the list and the upload ---------------------------------------------------------------


async def _list(
    request: web.Request,
    *,
    error: str | None = None,
    status: int = 200,
    choose: dict[str, Any] | None = None,
) -> web.Response:
    tenant_id = request[CALLER].require_tenant()
    batches = await request.app[DB].all(
        "imports.list_batches", tenant_id=tenant_id, limit=LIST_LIMIT
    )
    for batch in batches:
        counts = batch["counts"]
        batch["rejected"] = _rejected(counts)
    return await render(
        request,
        "imports.html",
        {
            "batches": batches,
            "limit": LIST_LIMIT,
            "error": error,
            "choose": choose,
            "map_prefix": MAP_PREFIX,
        },
        status=status,
    )


async def imports_page(request: web.Request) -> web.StreamResponse:
    return await _list(request)


async def upload_page(request: web.Request) -> web.StreamResponse:
    """The upload's address opened again (a reload, a bookmark): the page that holds the form."""
    raise redirect("/admin/imports")


async def upload(request: web.Request) -> web.StreamResponse:
    tenant_id = request[CALLER].require_tenant()
    db = request.app[DB]
    try:
        filename, data, fields = await read_upload(request)
    except ApiError as exc:
        return await _list(request, error=exc.message, status=exc.status)
    head: FileHead | None = None
    chosen = _has_mapping(fields)
    found_by: str | None = "form"
    try:
        head = await asyncio.to_thread(read_head, data)
        tenant = await db.one("imports.tenant", tenant_id=tenant_id)
        assert tenant is not None
        if chosen:
            mapping = mapping_from_form(fields, head.headers)
        else:
            # Recognising the phone column by content parses numbers: off the event loop.
            mapping, found_by = await asyncio.to_thread(
                first_guess, head, tenant["default_country"]
            )
        if "phone" not in mapping:
            return await _list(
                request,
                error=(
                    f"Which column of {filename} holds the phone numbers? None looks like it. "
                    "Choose it below, then choose the file again."
                ),
                status=400,
                choose=_choices(head.headers, mapping),
            )
        result = await dry_run_and_audit(
            request, tenant_id=tenant_id, filename=filename, data=data, mapping=mapping
        )
    except ImportInputError as exc:
        choose = None
        if head is not None and chosen:
            posted = {name: fields.get(MAP_PREFIX + name, "") for name in FIELDS}
            choose = _choices(head.headers, posted)
        return await _list(request, error=exc.message, status=exc.status, choose=choose)
    message = f"Read {result.rows:,} row{'' if result.rows == 1 else 's'} of {filename}."
    if found_by == "content":
        message += f" The phone numbers were found in the column {mapping['phone']!r}: check it."
    response = redirect(f"/admin/imports/{result.import_id}")
    flash(request, response, message)
    raise response


# --- one import: preview, remap, commit ----------------------------------------------------


async def _batch_or_404(request: web.Request) -> Row:
    tenant_id = request[CALLER].require_tenant()
    import_id = path_int(request, "import_id", "import")
    batch = await request.app[DB].one("import_pages.batch", id=import_id, tenant_id=tenant_id)
    if batch is None:
        raise not_found("import")
    return batch


def _columns(
    headers: list[str],
    samples: list[Row],
    selected: Mapping[str, str],
    attributes: Mapping[int, str],
) -> list[dict[str, Any]]:
    """Each column of the file with a few of its values and the fields it fills, for the
    attributes part of the mapping form."""
    columns = []
    for index, header in enumerate(headers):
        if not header:
            continue
        values = [
            r["raw"][index].strip()
            for r in samples
            if index < len(r["raw"]) and r["raw"][index].strip()
        ]
        fields = [FIELD_LABELS[name] for name in FIELDS if selected.get(name) == header]
        columns.append(
            {
                "index": index,
                "header": header,
                "examples": values[:SAMPLE_VALUES],
                "fields": fields,
                "attribute": attributes.get(index, ""),
                "suggestion": "" if fields else suggested_attribute(header),
            }
        )
    return columns


async def _detail(
    request: web.Request,
    batch: Row,
    *,
    remap_error: str | None = None,
    commit_error: str | None = None,
    posted: Mapping[str, str] | None = None,
    status: int = 200,
) -> web.Response:
    db = request.app[DB]
    headers: list[str] = batch["headers"]
    stored: dict[str, str] = batch["mapping"]
    first = await db.all("imports.first_decisions", id=batch["id"], limit=PREVIEW_ROWS)
    samples = await db.all("import_pages.sample_rows", id=batch["id"], limit=SAMPLE_VALUES * 4)
    counts: dict[str, int] = batch["counts"]
    index_of = {h: i for i, h in enumerate(headers)}
    if posted is None:
        selected = {name: stored.get(name, "") for name in FIELDS}
        attributes = {
            index_of[h]: name for name, h in stored.items() if name not in FIELDS and h in index_of
        }
    else:  # the form as the person sent it, when it could not be used
        selected = {name: posted.get(MAP_PREFIX + name, "") for name in FIELDS}
        attributes = {i: posted.get(f"{ATTR_PREFIX}{i}", "") for i in range(len(headers))}
    decisions = [
        {
            "row": d["row"],
            "decision": d["decision"],
            "reasons": [reason_text(r) for r in d["reasons"]],
            "phone_raw": d["data"].get("phone_raw") or "",
            "phone_e164": d["data"].get("phone_e164"),
            "name": " ".join(
                n for n in (d["data"].get("first_name"), d["data"].get("last_name")) if n
            ),
        }
        for d in first
    ]
    return await render(
        request,
        "imports_detail.html",
        {
            "batch": batch,
            "counts": [
                {
                    "decision": d,
                    "label": DECISION_LABELS[d],
                    "n": counts.get(d, 0),
                    "rejected": d in REJECTED,
                }
                for d in DECISION_LABELS
            ],
            "imported": counts.get("create", 0) + counts.get("update", 0),
            "rejected": _rejected(counts),
            "decisions": decisions,
            "preview_rows": PREVIEW_ROWS,
            "mapped_fields": [
                (FIELD_LABELS[name], stored[name]) for name in FIELDS if name in stored
            ],
            "mapped_attributes": sorted(
                (name, h) for name, h in stored.items() if name not in FIELDS
            ),
            "choose": _choices(headers, selected, attributes),
            "columns": _columns(headers, samples, selected, attributes),
            "map_prefix": MAP_PREFIX,
            "attr_prefix": ATTR_PREFIX,
            "remap_error": remap_error,
            "commit_error": commit_error,
        },
        status=status,
    )


async def import_page(request: web.Request) -> web.StreamResponse:
    return await _detail(request, await _batch_or_404(request))


async def remap(request: web.Request) -> web.StreamResponse:
    caller = request[CALLER]
    batch = await _batch_or_404(request)
    db, clock = request.app[DB], request.app[CLOCK]
    posted = _text_fields(await request.post())
    try:
        mapping = mapping_from_form(posted, batch["headers"])
        result = await redo_dry_run(
            db, clock, batch["tenant_id"], batch["id"], mapping, actor_of(caller)
        )
    except ImportInputError as exc:
        return await _detail(
            request, batch, remap_error=exc.message, posted=posted, status=exc.status
        )
    await audit.record_request(
        request,
        db,
        clock,
        "import.dry_run",
        target_type="import",
        target_id=result.import_id,
        details={"filename": batch["filename"], "rows": result.rows, "remapped_from": batch["id"]},
    )
    response = redirect(f"/admin/imports/{result.import_id}")
    flash(
        request,
        response,
        f"Read the file again with the new mapping as import #{result.import_id}. "
        f"Import #{batch['id']} stays uncommitted.",
    )
    raise response


def _rejected(counts: Mapping[str, int]) -> int:
    """Rows a batch leaves out (invalid, duplicate, on DNC, in cooldown)."""
    return sum(counts.get(d, 0) for d in REJECTED)


def _summary(counts: Mapping[str, int]) -> str:
    rejected = _rejected(counts)
    created, updated = counts.get("create", 0), counts.get("update", 0)
    return (
        f"{created:,} new contact{'' if created == 1 else 's'}, {updated:,} updated, "
        f"{rejected:,} row{'' if rejected == 1 else 's'} left out"
    )


async def commit_import(request: web.Request) -> web.StreamResponse:
    batch = await _batch_or_404(request)
    form = await request.post()
    if batch["status"] == "dry_run" and form.get("consent") != "yes":
        return await _detail(
            request,
            batch,
            commit_error="Tick the box to confirm that these contacts consented to receive "
            "marketing messages from you.",
            status=400,
        )
    result = await commit_and_audit(request, tenant_id=batch["tenant_id"], import_id=batch["id"])
    response = redirect(f"/admin/imports/{result.import_id}")
    if result.already_committed:
        flash(request, response, "This import was already committed; nothing changed.")
    else:
        flash(request, response, f"Imported: {_summary(result.counts)}.")
    raise response


routes = [
    route("GET", "/admin/imports", imports_page, access=Access.VIEWER, name="imports"),
    route("GET", "/admin/imports/upload", upload_page, access=Access.VIEWER),
    route("POST", "/admin/imports/upload", upload, access=Access.STAFF),
    route("GET", "/admin/imports/{import_id}", import_page, access=Access.VIEWER),
    route("POST", "/admin/imports/{import_id}/remap", remap, access=Access.STAFF),
    route("POST", "/admin/imports/{import_id}/commit", commit_import, access=Access.STAFF),
]
