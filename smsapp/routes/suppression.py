"""Suppression rules: the JSON API (pack §17) and the admin page (staff add and remove)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from smsapp import audit
from smsapp.access import CALLER, Access, route
from smsapp.db import Row
from smsapp.errors import path_int, read_json
from smsapp.fields import DomainError, TenantDefaults, iso
from smsapp.keys import CLOCK, DB
from smsapp.pages import flash, redirect, render
from smsapp.routes.common import (
    PAGE_SIZE,
    api_errors,
    as_api_error,
    json_created,
    page_number,
    paging,
    tenant_and_defaults,
)
from smsapp.suppression import KINDS, add_rule, delete_rule, list_active_rules, rule_json

FORM_FIELDS = ("phone", "kind", "reason", "expires_at")

# --- writes with their audit entries, shared by the API and the page -----------------------


async def _add(
    request: web.Request, tenant_id: int, defaults: TenantDefaults, body: dict[str, Any]
) -> Row:
    db, clock, caller = request.app[DB], request.app[CLOCK], request[CALLER]
    async with db.transaction() as tx:
        row = await add_rule(
            tx,
            clock,
            tenant_id=tenant_id,
            defaults=defaults,
            body=body,
            created_by=caller.user_id,
        )
        await audit.record_request(
            request,
            tx,
            clock,
            "suppression.add",
            target_type="suppression_rule",
            target_id=row["id"],
            details={"kind": row["kind"], "expires_at": iso(row["expires_at"])},
        )
    return row


async def _delete(request: web.Request, tenant_id: int, rule_id: int) -> Row:
    db, clock = request.app[DB], request.app[CLOCK]
    async with db.transaction() as tx:
        row = await delete_rule(tx, tenant_id=tenant_id, rule_id=rule_id)
        await audit.record_request(
            request,
            tx,
            clock,
            "suppression.remove",
            target_type="suppression_rule",
            target_id=rule_id,
            details={"kind": row["kind"]},
        )
    return row


# --- API -----------------------------------------------------------------------------------


async def list_api(request: web.Request) -> web.StreamResponse:
    tenant_id = request[CALLER].require_tenant()
    limit, offset = paging(request)
    rows, total = await list_active_rules(
        request.app[DB],
        tenant_id=tenant_id,
        now=request.app[CLOCK].now(),
        limit=limit,
        offset=offset,
    )
    return web.json_response({"suppression_rules": [rule_json(r) for r in rows], "total": total})


@api_errors
async def add_api(request: web.Request) -> web.StreamResponse:
    tenant_id, defaults = await tenant_and_defaults(request)
    row = await _add(request, tenant_id, defaults, await read_json(request))
    return json_created(rule_json(row))


@api_errors
async def delete_api(request: web.Request) -> web.StreamResponse:
    tenant_id = request[CALLER].require_tenant()
    rule_id = path_int(request, "rule_id", "suppression rule")
    await _delete(request, tenant_id, rule_id)
    return web.json_response({"id": rule_id, "deleted": True})


# --- admin page ----------------------------------------------------------------------------


async def _page(
    request: web.Request,
    *,
    form: dict[str, str] | None = None,
    error: str | None = None,
    status: int = 200,
) -> web.Response:
    tenant_id, defaults = await tenant_and_defaults(request)
    page = page_number(request)
    rows, total = await list_active_rules(
        request.app[DB],
        tenant_id=tenant_id,
        now=request.app[CLOCK].now(),
        limit=PAGE_SIZE,
        offset=(page - 1) * PAGE_SIZE,
    )
    return await render(
        request,
        "suppression.html",
        {
            "rules": rows,
            "total": total,
            "page": page,
            "has_more": page * PAGE_SIZE < total,
            "kinds": KINDS,
            "form": form or {"phone": "", "kind": "manual", "reason": "", "expires_at": ""},
            "error": error,
            "tz": defaults.timezone,
            "query_for": lambda n: urlencode({"page": n}),
        },
        status=status,
    )


async def suppression_page(request: web.Request) -> web.StreamResponse:
    return await _page(request)


async def add_from_form(request: web.Request) -> web.StreamResponse:
    tenant_id, defaults = await tenant_and_defaults(request)
    posted = await request.post()
    form = {name: str(posted.get(name) or "") for name in FORM_FIELDS}
    try:
        row = await _add(request, tenant_id, defaults, form)
    except DomainError as exc:
        return await _page(request, form=form, error=exc.message, status=exc.status)
    response = redirect("/admin/suppression")
    flash(request, response, f"Suppressed {row['phone_e164']} ({row['kind']}).")
    raise response


async def remove_from_form(request: web.Request) -> web.StreamResponse:
    tenant_id = request[CALLER].require_tenant()
    rule_id = path_int(request, "rule_id", "suppression rule")
    try:
        row = await _delete(request, tenant_id, rule_id)
    except DomainError as exc:
        raise as_api_error(exc) from None
    response = redirect("/admin/suppression")
    flash(
        request,
        response,
        f"Removed the {row['kind']} rule for {row['phone_e164'] or 'the contact'}.",
    )
    raise response


routes = [
    route("GET", "/api/suppression-rules", list_api, access=Access.VIEWER, name="api_suppression"),
    route("POST", "/api/suppression-rules", add_api, access=Access.STAFF),
    route("DELETE", "/api/suppression-rules/{rule_id}", delete_api, access=Access.STAFF),
    route("GET", "/admin/suppression", suppression_page, access=Access.VIEWER, name="suppression"),
    route("POST", "/admin/suppression", add_from_form, access=Access.STAFF),
    route("POST", "/admin/suppression/{rule_id}/remove", remove_from_form, access=Access.STAFF),
]
