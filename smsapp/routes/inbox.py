"""The replies inbox: `GET /api/inbound-messages` and the admin page `/admin/inbox`, both for
every member of the tenant (viewers read; acting on a reply is done from the contact page)."""

from __future__ import annotations

from urllib.parse import urlencode

from aiohttp import web

from smsapp.access import CALLER, Access, route
from smsapp.fields import DomainError
from smsapp.inbox import (
    CLASSIFICATIONS,
    LABELS,
    contact_name,
    list_messages,
    message_json,
    parse_filters,
)
from smsapp.keys import DB
from smsapp.pages import render
from smsapp.routes.common import PAGE_SIZE, api_errors, as_api_error, page_number, paging


@api_errors
async def list_inbound_messages(request: web.Request) -> web.StreamResponse:
    tenant_id = request[CALLER].require_tenant()
    limit, offset = paging(request)
    filters = parse_filters(request.query.get("classification"), request.query.get("contact_id"))
    rows, total, counts = await list_messages(
        request.app[DB], tenant_id=tenant_id, filters=filters, limit=limit, offset=offset
    )
    return web.json_response(
        {"messages": [message_json(r) for r in rows], "total": total, "counts": counts}
    )


async def inbox_page(request: web.Request) -> web.StreamResponse:
    tenant_id = request[CALLER].require_tenant()
    page = page_number(request)
    try:
        filters = parse_filters(
            request.query.get("classification"), request.query.get("contact_id")
        )
        rows, total, counts = await list_messages(
            request.app[DB], tenant_id=tenant_id, filters=filters, limit=PAGE_SIZE,
            offset=(page - 1) * PAGE_SIZE,
        )  # fmt: skip
    except DomainError as exc:
        raise as_api_error(exc) from None
    chosen = {
        "classification": filters.classification or "",
        "contact_id": str(filters.contact_id or ""),
    }

    def query_for(n: int | None = None, **changes: str) -> str:
        values = {**chosen, **changes}
        query = {k: v for k, v in values.items() if v}
        if n is not None and n > 1:
            query["page"] = str(n)
        return urlencode(query)

    return await render(
        request,
        "inbox.html",
        {
            "messages": rows,
            "total": total,
            "counts": counts,
            "page": page,
            "has_more": page * PAGE_SIZE < total,
            "filters": chosen,
            "classifications": CLASSIFICATIONS,
            "labels": LABELS,
            "contact_label": contact_name(rows[0]) if rows and filters.contact_id else "",
            "query_for": query_for,
        },
    )


routes = [
    route("GET", "/api/inbound-messages", list_inbound_messages, access=Access.VIEWER),
    route("GET", "/admin/inbox", inbox_page, access=Access.VIEWER, name="inbox"),
]
