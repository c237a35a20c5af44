"""Sending numbers and alphanumeric sender IDs (pack §3, §13, §17): the JSON API and the
numbers page. Every member reads them; adding and changing them is admin work (pack §2)."""

from __future__ import annotations

from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from smsapp import audit
from smsapp.access import Access, route
from smsapp.db import Row
from smsapp.errors import path_int, read_json
from smsapp.fields import DomainError, InvalidInput, TenantDefaults
from smsapp.keys import CLOCK, DB, SETTINGS
from smsapp.numbers import (
    DAILY_CAP_RANGE,
    PER_MINUTE_RANGE,
    PROVIDERS,
    create_number,
    get_number,
    list_numbers,
    number_json,
    update_number,
)
from smsapp.pages import flash, redirect, render
from smsapp.routes.common import api_errors, as_api_error, json_created, tenant_and_defaults


def _today(request: web.Request, defaults: TenantDefaults) -> date:
    """The tenant's local date: warm-up days count in its timezone (pack §7)."""
    return request.app[CLOCK].now().astimezone(ZoneInfo(defaults.timezone)).date()


# --- writes with their audit entries, shared by the API and the page -----------------------


async def _create(
    request: web.Request, tenant_id: int, defaults: TenantDefaults, body: dict[str, Any]
) -> Row:
    db, clock = request.app[DB], request.app[CLOCK]
    async with db.transaction() as tx:
        row = await create_number(
            tx,
            clock,
            tenant_id=tenant_id,
            body=body,
            region=defaults.country,
            today=_today(request, defaults),
            default_provider=request.app[SETTINGS].sms_provider,
        )
        await audit.record_request(
            request,
            tx,
            clock,
            "sending_number.add",
            target_type="sending_number",
            target_id=row["id"],
            details={
                "phone_e164": row["phone_e164"],
                "kind": row["kind"],
                "provider": row["provider"],
                "fields": sorted(k for k in body if k not in ("phone", "sender_id")),
            },
        )
    return row


async def _update(
    request: web.Request,
    tenant_id: int,
    number_id: int,
    defaults: TenantDefaults,
    body: dict[str, Any],
) -> tuple[Row, bool]:
    db, clock = request.app[DB], request.app[CLOCK]
    async with db.transaction() as tx:
        row, changes = await update_number(
            tx,
            clock,
            tenant_id=tenant_id,
            number_id=number_id,
            body=body,
            today=_today(request, defaults),
        )
        if changes:
            await audit.record_request(
                request,
                tx,
                clock,
                "sending_number.update",
                target_type="sending_number",
                target_id=number_id,
                details={
                    "phone_e164": row["phone_e164"],
                    "fields": sorted(changes),
                    "changes": changes,
                },
            )
    return row, bool(changes)


# --- API -----------------------------------------------------------------------------------


@api_errors
async def list_api(request: web.Request) -> web.StreamResponse:
    tenant_id, defaults = await tenant_and_defaults(request)
    rows = await list_numbers(request.app[DB], tenant_id=tenant_id)
    today = _today(request, defaults)
    return web.json_response({"sending_numbers": [number_json(r, today) for r in rows]})


@api_errors
async def show_api(request: web.Request) -> web.StreamResponse:
    tenant_id, defaults = await tenant_and_defaults(request)
    number_id = path_int(request, "number_id", "sending number")
    row = await get_number(request.app[DB], tenant_id=tenant_id, number_id=number_id)
    return web.json_response(number_json(row, _today(request, defaults)))


@api_errors
async def create_api(request: web.Request) -> web.StreamResponse:
    tenant_id, defaults = await tenant_and_defaults(request)
    row = await _create(request, tenant_id, defaults, await read_json(request))
    return json_created(number_json(row, _today(request, defaults)))


@api_errors
async def patch_api(request: web.Request) -> web.StreamResponse:
    tenant_id, defaults = await tenant_and_defaults(request)
    number_id = path_int(request, "number_id", "sending number")
    row, _ = await _update(request, tenant_id, number_id, defaults, await read_json(request))
    return web.json_response(number_json(row, _today(request, defaults)))


# --- the numbers page ----------------------------------------------------------------------

ADD_FORM = ("kind", "value", "provider")
EDIT_FORM = ("per_minute_limit", "daily_cap", "warmup_started_on", "active", "registered")


def edit_values(row: Row) -> dict[str, str]:
    warmup: date | None = row["warmup_started_on"]
    return {
        "per_minute_limit": str(row["per_minute_limit"]),
        "daily_cap": str(row["daily_cap"]),
        "warmup_started_on": warmup.isoformat() if warmup else "",
        "active": "1" if row["active"] else "",
        "registered": "1" if row["registered"] else "",
    }


def _whole_number(text: str, field: str) -> int:
    cleaned = text.strip().replace(",", "").replace("_", "")
    if not cleaned.isdigit() or len(cleaned) > 12:
        raise InvalidInput(f"{field.replace('_', ' ')} must be a whole number", field=field)
    return int(cleaned)


def edit_body(row: Row, form: dict[str, str]) -> dict[str, Any]:
    """The edit form as a PATCH body; `registered` only for sender IDs (the only rows whose
    form shows it). Unchanged fields are no change."""
    body: dict[str, Any] = {
        "per_minute_limit": _whole_number(form["per_minute_limit"], "per_minute_limit"),
        "daily_cap": _whole_number(form["daily_cap"], "daily_cap"),
        "warmup_started_on": form["warmup_started_on"].strip() or None,
        "active": bool(form["active"]),
    }
    if row["kind"] == "alphanumeric":
        body["registered"] = bool(form["registered"])
    return body


def add_body(form: dict[str, str]) -> dict[str, Any]:
    field = "sender_id" if form["kind"] == "sender_id" else "phone"
    body: dict[str, Any] = {field: form["value"]}
    if form["provider"]:
        body["provider"] = form["provider"]
    return body


async def _page(
    request: web.Request,
    *,
    add_values: dict[str, str] | None = None,
    edited: tuple[int, dict[str, str]] | None = None,
    error: str | None = None,
    error_number: int | None = None,
    status: int = 200,
) -> web.Response:
    tenant_id, defaults = await tenant_and_defaults(request)
    rows = await list_numbers(request.app[DB], tenant_id=tenant_id)
    today = _today(request, defaults)
    numbers = []
    for row in rows:
        values = edited[1] if edited and edited[0] == row["id"] else edit_values(row)
        numbers.append({"row": number_json(row, today), "form": values})
    return await render(
        request,
        "numbers.html",
        {
            "numbers": numbers,
            "add": add_values
            or {"kind": "phone", "value": "", "provider": request.app[SETTINGS].sms_provider},
            "providers": PROVIDERS,
            "per_minute_range": PER_MINUTE_RANGE,
            "daily_cap_range": DAILY_CAP_RANGE,
            "today": today.isoformat(),
            "tz": defaults.timezone,
            "error": error,
            "error_number": error_number,
        },
        status=status,
    )


async def _posted(request: web.Request, names: tuple[str, ...]) -> dict[str, str]:
    form = await request.post()
    return {name: str(form.get(name) or "") for name in names}


async def numbers_page(request: web.Request) -> web.StreamResponse:
    return await _page(request)


async def add_from_form(request: web.Request) -> web.StreamResponse:
    tenant_id, defaults = await tenant_and_defaults(request)
    posted = await _posted(request, ADD_FORM)
    try:
        row = await _create(request, tenant_id, defaults, add_body(posted))
    except DomainError as exc:
        return await _page(request, add_values=posted, error=exc.message, status=exc.status)
    response = redirect("/admin/numbers")
    flash(request, response, f"Added {row['phone_e164']}.")
    raise response


async def update_from_form(request: web.Request) -> web.StreamResponse:
    tenant_id, defaults = await tenant_and_defaults(request)
    number_id = path_int(request, "number_id", "sending number")
    try:
        row = await get_number(request.app[DB], tenant_id=tenant_id, number_id=number_id)
    except DomainError as exc:
        raise as_api_error(exc) from None
    posted = await _posted(request, EDIT_FORM)
    try:
        _, changed = await _update(request, tenant_id, number_id, defaults, edit_body(row, posted))
    except DomainError as exc:
        return await _page(
            request,
            edited=(number_id, posted),
            error=f"{row['phone_e164']}: {exc.message}",
            error_number=number_id,
            status=exc.status,
        )
    response = redirect("/admin/numbers")
    flash(request, response, f"Saved {row['phone_e164']}." if changed else "Nothing changed.")
    raise response


routes = [
    route("GET", "/api/sending-numbers", list_api, access=Access.VIEWER, name="api_numbers"),
    route("POST", "/api/sending-numbers", create_api, access=Access.ADMIN),
    route("GET", "/api/sending-numbers/{number_id}", show_api, access=Access.VIEWER),
    route("PATCH", "/api/sending-numbers/{number_id}", patch_api, access=Access.ADMIN),
    route("GET", "/admin/numbers", numbers_page, access=Access.VIEWER, name="numbers"),
    route("POST", "/admin/numbers", add_from_form, access=Access.ADMIN),
    route("POST", "/admin/numbers/{number_id}", update_from_form, access=Access.ADMIN),
]
