"""The do-not-contact list: the JSON API (pack §17), the CSV export and the admin page.
Adding is staff work; removing re-subscribes a person and is for admins (pack §2)."""

from __future__ import annotations

from urllib.parse import urlencode

from aiohttp import web

from smsapp import audit
from smsapp.access import CALLER, Access, route
from smsapp.db import Row
from smsapp.dnc import (
    add_to_dnc,
    dnc_json,
    entry_values,
    export_csv,
    get_entry,
    list_entries,
    remove_from_dnc,
)
from smsapp.errors import not_found, read_json
from smsapp.fields import DomainError, TenantDefaults, lookup_phone
from smsapp.keys import CLOCK, DB
from smsapp.pages import flash, redirect, render
from smsapp.routes.common import (
    PAGE_SIZE,
    api_errors,
    dnc_source,
    json_created,
    page_number,
    paging,
    query_phone,
    tenant_and_defaults,
)

# --- writes with their audit entries, shared by the API and the page -----------------------


async def _add(
    request: web.Request, tenant_id: int, phone_e164: str, reason: str | None
) -> tuple[Row, bool]:
    db, clock, caller = request.app[DB], request.app[CLOCK], request[CALLER]
    source = dnc_source(caller)
    async with db.transaction() as tx:
        row, created = await add_to_dnc(
            tx,
            clock,
            tenant_id=tenant_id,
            phone_e164=phone_e164,
            source=source,
            reason=reason,
            created_by=caller.user_id,
        )
        if created:
            await audit.record_request(
                request,
                tx,
                clock,
                "dnc.add",
                target_type="do_not_contact",
                target_id=phone_e164,
                details={"source": source, "reason": reason},
            )
    return row, created


async def _remove(request: web.Request, tenant_id: int, phone_e164: str) -> Row | None:
    db, clock = request.app[DB], request.app[CLOCK]
    async with db.transaction() as tx:
        removed = await remove_from_dnc(tx, tenant_id=tenant_id, phone_e164=phone_e164)
        if removed is not None:
            await audit.record_request(
                request,
                tx,
                clock,
                "dnc.remove",
                target_type="do_not_contact",
                target_id=phone_e164,
                details={"source": removed["source"], "reason": removed["reason"]},
            )
    return removed


# --- API -----------------------------------------------------------------------------------


async def _entry_phone(request: web.Request, defaults: TenantDefaults) -> str:
    """The number in the path; one that cannot be a number is simply not on the list."""
    phone_e164 = lookup_phone(request.match_info["phone_e164"], defaults.country)
    if phone_e164 is None:
        raise not_found("do-not-contact entry")
    return phone_e164


async def list_api(request: web.Request) -> web.StreamResponse:
    tenant_id = request[CALLER].require_tenant()
    limit, offset = paging(request)
    rows, total = await list_entries(
        request.app[DB], tenant_id=tenant_id, limit=limit, offset=offset
    )
    return web.json_response({"do_not_contact": [dnc_json(r) for r in rows], "total": total})


async def export_api(request: web.Request) -> web.StreamResponse:
    tenant_id = request[CALLER].require_tenant()
    rows = await request.app[DB].all("dnc.export", tenant_id=tenant_id)
    return web.Response(
        text=export_csv(rows),
        content_type="text/csv",
        charset="utf-8",
        headers={
            "Content-Disposition": 'attachment; filename="do-not-contact.csv"',
            "Cache-Control": "no-store",
        },
    )


async def lookup_api(request: web.Request) -> web.StreamResponse:
    tenant_id, defaults = await tenant_and_defaults(request)
    phone_e164 = await _entry_phone(request, defaults)
    row = await get_entry(request.app[DB], tenant_id=tenant_id, phone_e164=phone_e164)
    if row is None:
        raise not_found("do-not-contact entry")
    return web.json_response(dnc_json(row))


@api_errors
async def add_api(request: web.Request) -> web.StreamResponse:
    tenant_id, defaults = await tenant_and_defaults(request)
    phone_e164, reason = entry_values(await read_json(request), defaults)
    row, created = await _add(request, tenant_id, phone_e164, reason)
    return json_created(dnc_json(row)) if created else web.json_response(dnc_json(row))


async def remove_api(request: web.Request) -> web.StreamResponse:
    tenant_id, defaults = await tenant_and_defaults(request)
    phone_e164 = await _entry_phone(request, defaults)
    removed = await _remove(request, tenant_id, phone_e164)
    if removed is None:
        raise not_found("do-not-contact entry")
    return web.json_response({"phone_e164": phone_e164, "removed": True})


# --- admin page ----------------------------------------------------------------------------


async def _page(
    request: web.Request,
    *,
    form: dict[str, str] | None = None,
    error: str | None = None,
    status: int = 200,
) -> web.Response:
    tenant_id, defaults = await tenant_and_defaults(request)
    db = request.app[DB]
    page = page_number(request)
    rows, total = await list_entries(
        db, tenant_id=tenant_id, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE
    )
    lookup: dict[str, object] | None = None
    asked = query_phone(request)
    if asked:
        phone_e164 = lookup_phone(asked, defaults.country)
        entry = None
        if phone_e164 is not None:
            entry = await get_entry(db, tenant_id=tenant_id, phone_e164=phone_e164)
        lookup = {"asked": asked, "phone_e164": phone_e164, "entry": entry}
    return await render(
        request,
        "do_not_contact.html",
        {
            "entries": rows,
            "total": total,
            "page": page,
            "has_more": page * PAGE_SIZE < total,
            "lookup": lookup,
            "form": form or {"phone": "", "reason": ""},
            "error": error,
            "query_for": lambda n: urlencode({"page": n}),
        },
        status=status,
    )


async def dnc_page(request: web.Request) -> web.StreamResponse:
    return await _page(request)


async def add_from_form(request: web.Request) -> web.StreamResponse:
    tenant_id, defaults = await tenant_and_defaults(request)
    posted = await request.post()
    form = {name: str(posted.get(name) or "") for name in ("phone", "reason")}
    try:
        phone_e164, reason = entry_values(form, defaults)
    except DomainError as exc:
        return await _page(request, form=form, error=exc.message, status=exc.status)
    _, created = await _add(request, tenant_id, phone_e164, reason)
    response = redirect("/admin/do-not-contact?" + urlencode({"phone": phone_e164}))
    flash(
        request,
        response,
        f"Added {phone_e164} to the do-not-contact list."
        if created
        else f"{phone_e164} was already on the do-not-contact list.",
    )
    raise response


async def remove_from_form(request: web.Request) -> web.StreamResponse:
    tenant_id, defaults = await tenant_and_defaults(request)
    posted = await request.post()
    phone_e164 = lookup_phone(str(posted.get("phone") or ""), defaults.country)
    removed = None
    if phone_e164 is not None:
        removed = await _remove(request, tenant_id, phone_e164)
    if removed is None:
        raise not_found("do-not-contact entry")
    response = redirect("/admin/do-not-contact")
    flash(request, response, f"Removed {phone_e164}: campaigns may message this number again.")
    raise response


routes = [
    route("GET", "/api/do-not-contact", list_api, access=Access.VIEWER, name="api_dnc"),
    route("GET", "/api/do-not-contact.csv", export_api, access=Access.VIEWER),
    route("POST", "/api/do-not-contact", add_api, access=Access.STAFF),
    route("GET", "/api/do-not-contact/{phone_e164}", lookup_api, access=Access.VIEWER),
    route("DELETE", "/api/do-not-contact/{phone_e164}", remove_api, access=Access.ADMIN),
    route("GET", "/admin/do-not-contact", dnc_page, access=Access.VIEWER, name="do_not_contact"),
    route("POST", "/admin/do-not-contact", add_from_form, access=Access.STAFF),
    route("POST", "/admin/do-not-contact/remove", remove_from_form, access=Access.ADMIN),
]
