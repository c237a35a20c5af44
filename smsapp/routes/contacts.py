"""Contacts: the JSON API (pack §17) and the admin pages. Handlers parse, then call
`smsapp.contacts`; who may call them is declared in `routes` below (pack §2)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from aiohttp import web

from smsapp import audit
from smsapp.access import CALLER, Access, route
from smsapp.contacts import (
    Search,
    changed_fields,
    contact_json,
    contact_page_timeline,
    contact_timeline,
    create_contact,
    erase_contact,
    event_json,
    get_contact,
    search_contacts,
    update_contact,
)
from smsapp.db import Row
from smsapp.errors import path_int, read_json
from smsapp.fields import DomainError, InvalidInput, TenantDefaults, lookup_phone
from smsapp.keys import CLOCK, DB
from smsapp.pages import flash, redirect, render
from smsapp.routes.common import (
    PAGE_SIZE,
    api_errors,
    as_api_error,
    json_created,
    page_number,
    paging,
    query_flag,
    query_phone,
    tenant_and_defaults,
)

# --- API -----------------------------------------------------------------------------------


def _search(request: web.Request, defaults: TenantDefaults) -> Search:
    phone = query_phone(request)
    return Search(
        # A number that cannot be read matches nothing rather than being an error.
        phone=(lookup_phone(phone, defaults.country) or phone) if phone else None,
        q=request.query.get("q", "").strip() or None,
        tag=request.query.get("tag", "").strip() or None,
        include_erased=query_flag(request, "include_erased"),
    )


@api_errors
async def list_contacts(request: web.Request) -> web.StreamResponse:
    tenant_id, defaults = await tenant_and_defaults(request)
    limit, offset = paging(request)
    rows, total = await search_contacts(
        request.app[DB],
        tenant_id=tenant_id,
        search=_search(request, defaults),
        default_country=defaults.country,
        limit=limit,
        offset=offset,
    )
    return web.json_response({"contacts": [contact_json(r) for r in rows], "total": total})


@api_errors
async def show_contact(request: web.Request) -> web.StreamResponse:
    tenant_id = request[CALLER].require_tenant()
    contact_id = path_int(request, "contact_id", "contact")
    row = await get_contact(request.app[DB], tenant_id=tenant_id, contact_id=contact_id)
    return web.json_response(contact_json(row))


@api_errors
async def create_contact_api(request: web.Request) -> web.StreamResponse:
    tenant_id, defaults = await tenant_and_defaults(request)
    body = await read_json(request)
    row = await _create(request, tenant_id, defaults, body)
    return json_created(contact_json(row))


@api_errors
async def patch_contact_api(request: web.Request) -> web.StreamResponse:
    tenant_id, defaults = await tenant_and_defaults(request)
    contact_id = path_int(request, "contact_id", "contact")
    body = await read_json(request)
    row = await _update(request, tenant_id, contact_id, defaults, body)
    return web.json_response(contact_json(row))


@api_errors
async def erase_contact_api(request: web.Request) -> web.StreamResponse:
    tenant_id = request[CALLER].require_tenant()
    contact_id = path_int(request, "contact_id", "contact")
    await _erase(request, tenant_id, contact_id)
    return web.json_response({"id": contact_id, "erased": True})


@api_errors
async def timeline_api(request: web.Request) -> web.StreamResponse:
    tenant_id = request[CALLER].require_tenant()
    contact_id = path_int(request, "contact_id", "contact")
    events = await contact_timeline(request.app[DB], tenant_id=tenant_id, contact_id=contact_id)
    return web.json_response({"events": [event_json(e) for e in events]})


# --- writes with their audit entries, shared by the API and the pages ----------------------


async def _create(
    request: web.Request, tenant_id: int, defaults: TenantDefaults, body: dict[str, Any]
) -> Row:
    db, clock = request.app[DB], request.app[CLOCK]
    async with db.transaction() as tx:
        row = await create_contact(tx, clock, tenant_id=tenant_id, defaults=defaults, body=body)
        await audit.record_request(
            request,
            tx,
            clock,
            "contact.create",
            target_type="contact",
            target_id=row["id"],
            details={"fields": changed_fields(body)},
        )
    return row


async def _update(
    request: web.Request,
    tenant_id: int,
    contact_id: int,
    defaults: TenantDefaults,
    body: dict[str, Any],
) -> Row:
    db, clock = request.app[DB], request.app[CLOCK]
    async with db.transaction() as tx:
        row = await update_contact(
            tx, clock, tenant_id=tenant_id, contact_id=contact_id, defaults=defaults, body=body
        )
        await audit.record_request(
            request,
            tx,
            clock,
            "contact.update",
            target_type="contact",
            target_id=contact_id,
            details={"fields": changed_fields(body)},
        )
    return row


async def _erase(request: web.Request, tenant_id: int, contact_id: int) -> None:
    db, clock = request.app[DB], request.app[CLOCK]
    async with db.transaction() as tx:
        await erase_contact(tx, clock, tenant_id=tenant_id, contact_id=contact_id)
        await audit.record_request(
            request, tx, clock, "contact.erase", target_type="contact", target_id=contact_id
        )


# --- admin pages ---------------------------------------------------------------------------

# The contact form's fields, in order. Tags are written comma-separated, attributes one
# `name=value` per line (values are kept as text), consent_at as the tenant's local time.
FORM_FIELDS = (
    "phone",
    "first_name",
    "last_name",
    "email",
    "country",
    "state",
    "postcode",
    "timezone",
    "tags",
    "attributes",
    "consent_source",
    "consent_at",
)
LOCAL_MINUTE = "%Y-%m-%dT%H:%M"  # what <input type="datetime-local"> sends


def form_values(row: Row, tz: str) -> dict[str, str]:
    """A stored contact as the strings its edit form shows."""
    consent_at = row["consent_at"]
    return {
        "phone": row["phone_e164"] or "",
        "first_name": row["first_name"] or "",
        "last_name": row["last_name"] or "",
        "email": row["email"] or "",
        "country": row["country"] or "",
        "state": row["state"] or "",
        "postcode": row["postcode"] or "",
        "timezone": row["timezone"] or "",
        "tags": ", ".join(row["tags"]),
        "attributes": "\n".join(f"{k}={v}" for k, v in row["attributes"].items()),
        "consent_source": row["consent_source"] or "",
        "consent_at": consent_at.astimezone(ZoneInfo(tz)).strftime(LOCAL_MINUTE)
        if consent_at
        else "",
    }


def form_body(fields: dict[str, str]) -> dict[str, Any]:
    """Form strings as an API body (the same validation then applies)."""
    body: dict[str, Any] = {}
    for name, text in fields.items():
        if name == "tags":
            body[name] = [t for t in re.split(r"[,;]", text) if t.strip()]
        elif name == "attributes":
            body[name] = _attribute_lines(text)
        else:
            body[name] = text
    return body


def _attribute_lines(text: str) -> dict[str, str]:
    attributes: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        name, sep, value = line.partition("=")
        if not sep or not name.strip():
            raise InvalidInput(
                f"attribute line {line.strip()!r} is not name=value", field="attributes"
            )
        attributes[name.strip()] = value.strip()
    return attributes


async def _posted(request: web.Request) -> dict[str, str]:
    form = await request.post()
    # Browsers send a textarea's lines with CRLF; the stored form of the same text uses LF.
    return {name: str(form.get(name) or "").replace("\r\n", "\n") for name in FORM_FIELDS}


async def contacts_page(request: web.Request) -> web.StreamResponse:
    tenant_id, defaults = await tenant_and_defaults(request)
    page = page_number(request)
    search = Search(
        q=request.query.get("q", "").strip() or None,
        tag=request.query.get("tag", "").strip() or None,
        include_erased=query_flag(request, "include_erased"),
    )
    rows, total = await search_contacts(
        request.app[DB],
        tenant_id=tenant_id,
        search=search,
        default_country=defaults.country,
        limit=PAGE_SIZE,
        offset=(page - 1) * PAGE_SIZE,
    )
    filters = {
        "q": search.q or "",
        "tag": search.tag or "",
        "include_erased": "1" if search.include_erased else "",
    }

    def query_for(n: int) -> str:
        return urlencode({**{k: v for k, v in filters.items() if v}, "page": n})

    return await render(
        request,
        "contacts.html",
        {
            "contacts": rows,
            "total": total,
            "page": page,
            "has_more": page * PAGE_SIZE < total,
            "filters": filters,
            "query_for": query_for,
        },
    )


async def new_contact_page(request: web.Request) -> web.StreamResponse:
    _, defaults = await tenant_and_defaults(request)
    values = dict.fromkeys(FORM_FIELDS, "")
    values["country"] = defaults.country
    return await render(
        request, "contact_new.html", {"values": values, "error": None, "tz": defaults.timezone}
    )


async def create_contact_from_form(request: web.Request) -> web.StreamResponse:
    tenant_id, defaults = await tenant_and_defaults(request)
    posted = await _posted(request)
    try:
        row = await _create(request, tenant_id, defaults, form_body(posted))
    except DomainError as exc:
        return await render(
            request,
            "contact_new.html",
            {"values": posted, "error": exc.message, "tz": defaults.timezone},
            status=exc.status,
        )
    response = redirect(f"/admin/contacts/{row['id']}")
    flash(request, response, "Contact created.")
    raise response


async def _contact_page(
    request: web.Request,
    row: Row,
    defaults: TenantDefaults,
    *,
    values: dict[str, str] | None = None,
    error: str | None = None,
    status: int = 200,
) -> web.Response:
    events = await contact_page_timeline(
        request.app[DB], tenant_id=row["tenant_id"], contact_id=row["id"]
    )
    return await render(
        request,
        "contact.html",
        {
            "contact": row,
            "events": events,
            "values": values or form_values(row, defaults.timezone),
            "error": error,
            "tz": defaults.timezone,
        },
        status=status,
    )


async def _contact_or_404(request: web.Request, tenant_id: int) -> Row:
    """The contact of the page's path, in the caller's tenant (404 when there is none)."""
    contact_id = path_int(request, "contact_id", "contact")
    try:
        return await get_contact(request.app[DB], tenant_id=tenant_id, contact_id=contact_id)
    except DomainError as exc:
        raise as_api_error(exc) from None


async def contact_page(request: web.Request) -> web.StreamResponse:
    tenant_id, defaults = await tenant_and_defaults(request)
    row = await _contact_or_404(request, tenant_id)
    return await _contact_page(request, row, defaults)


async def update_contact_from_form(request: web.Request) -> web.StreamResponse:
    tenant_id, defaults = await tenant_and_defaults(request)
    current = await _contact_or_404(request, tenant_id)
    contact_id: int = current["id"]
    posted = await _posted(request)
    shown = form_values(current, defaults.timezone)
    # Only what the person changed: a field left as shown is not re-sent (so a derived
    # timezone follows a new state, and attribute values keep their types).
    changed = {name: text for name, text in posted.items() if text.strip() != shown[name].strip()}
    try:
        await _update(request, tenant_id, contact_id, defaults, form_body(changed))
    except DomainError as exc:
        return await _contact_page(
            request, current, defaults, values=posted, error=exc.message, status=exc.status
        )
    response = redirect(f"/admin/contacts/{contact_id}")
    flash(request, response, "Saved." if changed else "Nothing changed.")
    raise response


async def erase_confirm_page(request: web.Request) -> web.StreamResponse:
    tenant_id = request[CALLER].require_tenant()
    row = await _contact_or_404(request, tenant_id)
    return await render(request, "contact_erase.html", {"contact": row})


async def erase_from_form(request: web.Request) -> web.StreamResponse:
    tenant_id = request[CALLER].require_tenant()
    contact_id = path_int(request, "contact_id", "contact")
    try:
        await _erase(request, tenant_id, contact_id)
    except DomainError as exc:
        raise as_api_error(exc) from None
    response = redirect(f"/admin/contacts/{contact_id}")
    flash(request, response, f"Contact #{contact_id} was erased: its personal data is gone.")
    raise response


routes = [
    route("GET", "/api/contacts", list_contacts, access=Access.VIEWER, name="api_contacts"),
    route("POST", "/api/contacts", create_contact_api, access=Access.STAFF),
    route("GET", "/api/contacts/{contact_id}", show_contact, access=Access.VIEWER),
    route("PATCH", "/api/contacts/{contact_id}", patch_contact_api, access=Access.STAFF),
    route("DELETE", "/api/contacts/{contact_id}", erase_contact_api, access=Access.ADMIN),
    route("GET", "/api/contacts/{contact_id}/timeline", timeline_api, access=Access.VIEWER),
    route("GET", "/admin/contacts", contacts_page, access=Access.VIEWER, name="contacts"),
    route("POST", "/admin/contacts", create_contact_from_form, access=Access.STAFF),
    route("GET", "/admin/contacts/new", new_contact_page, access=Access.STAFF),
    route("GET", "/admin/contacts/{contact_id}", contact_page, access=Access.VIEWER),
    route("POST", "/admin/contacts/{contact_id}", update_contact_from_form, access=Access.STAFF),
    route("GET", "/admin/contacts/{contact_id}/erase", erase_confirm_page, access=Access.ADMIN),
    route("POST", "/admin/contacts/{contact_id}/erase", erase_from_form, access=Access.ADMIN),
]
