"""Tenant settings, budget and pause (pack §7, §13, §17): the JSON API and the settings page.
Reading is for every member (viewer); every change is admin work (pack §2). Handlers parse,
then call `smsapp.tenant_settings` / `smsapp.budget_settings` inside one transaction with the
audit entry."""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

from aiohttp import web

from smsapp import audit
from smsapp.access import CALLER, Access, route
from smsapp.budget_settings import budget_json, get_budget, set_budget, spend
from smsapp.db import Row
from smsapp.errors import path_int, read_json
from smsapp.fields import DomainError, InvalidInput, NotFound, check_fields
from smsapp.keys import CLOCK, DB
from smsapp.money import cents_text, cents_to_units, dollars_text
from smsapp.pages import flash, redirect, render
from smsapp.routes.common import api_errors, as_api_error
from smsapp.tenant_settings import (
    WEEKDAYS,
    get_tenant,
    keywords_from_text,
    pause_actor,
    pause_tenant,
    price_book_from_text,
    price_book_text,
    resume_tenant,
    settings_json,
    update_settings,
    window_day_from_text,
    window_day_text,
)

# --- writes with their audit entries, shared by the API and the page -----------------------


async def _update(request: web.Request, tenant_id: int, body: dict[str, Any]) -> Row:
    db, clock = request.app[DB], request.app[CLOCK]
    async with db.transaction() as tx:
        row, changes = await update_settings(tx, clock, tenant_id=tenant_id, body=body)
        if changes:
            # Settings hold no secrets: old and new values are recorded as the API shows them.
            await audit.record_request(
                request,
                tx,
                clock,
                "tenant.update",
                target_type="tenant",
                target_id=tenant_id,
                details={"fields": sorted(changes), "changes": changes},
            )
    return row


async def _set_budget(request: web.Request, tenant_id: int, body: dict[str, Any]) -> None:
    db, clock = request.app[DB], request.app[CLOCK]
    async with db.transaction() as tx:
        _, changes = await set_budget(tx, clock, tenant_id=tenant_id, body=body)
        if changes:
            await audit.record_request(
                request,
                tx,
                clock,
                "budget.update",
                target_type="budget",
                target_id=tenant_id,
                details={"fields": sorted(changes), "changes": changes},
            )


async def _pause(request: web.Request, tenant_id: int, reason: object) -> tuple[Row, bool]:
    db, clock, caller = request.app[DB], request.app[CLOCK], request[CALLER]
    async with db.transaction() as tx:
        row, changed = await pause_tenant(
            tx, clock, tenant_id=tenant_id, user_id=caller.user_id, reason=reason
        )
        if changed:
            await audit.record_request(
                request,
                tx,
                clock,
                "tenant.pause",
                target_type="tenant",
                target_id=tenant_id,
                details={"reason": row["pause_reason"]},
            )
    return row, changed


async def _resume(request: web.Request, tenant_id: int) -> tuple[Row, bool]:
    db, clock = request.app[DB], request.app[CLOCK]
    async with db.transaction() as tx:
        row, was = await resume_tenant(tx, clock, tenant_id=tenant_id)
        if was is not None:
            paused_at: datetime | None = was["paused_at"]
            await audit.record_request(
                request,
                tx,
                clock,
                "tenant.resume",
                target_type="tenant",
                target_id=tenant_id,
                details={
                    "paused_at": paused_at.isoformat() if paused_at else None,
                    "reason": was["pause_reason"],
                },
            )
    return row, was is not None


async def _budget_body(request: web.Request, row: Row) -> dict[str, Any]:
    db = request.app[DB]
    tz = str(row["timezone"])
    current = await spend(db, tenant_id=int(row["id"]), tz=tz, now=request.app[CLOCK].now())
    return budget_json(await get_budget(db, int(row["id"])), current, tz)


# --- API -----------------------------------------------------------------------------------


def _own_tenant(request: web.Request) -> int:
    """The tenant in the path, which must be the caller's: any other id is simply not found."""
    tenant_id = request[CALLER].require_tenant()
    if path_int(request, "tenant_id", "tenant") != tenant_id:
        raise as_api_error(NotFound("tenant"))
    return tenant_id


@api_errors
async def show_tenant_api(request: web.Request) -> web.StreamResponse:
    row = await get_tenant(request.app[DB], _own_tenant(request))
    return web.json_response(settings_json(row))


@api_errors
async def patch_tenant_api(request: web.Request) -> web.StreamResponse:
    tenant_id = _own_tenant(request)
    row = await _update(request, tenant_id, await read_json(request))
    return web.json_response(settings_json(row))


@api_errors
async def show_budget_api(request: web.Request) -> web.StreamResponse:
    row = await get_tenant(request.app[DB], _own_tenant(request))
    return web.json_response(await _budget_body(request, row))


@api_errors
async def set_budget_api(request: web.Request) -> web.StreamResponse:
    tenant_id = _own_tenant(request)
    await _set_budget(request, tenant_id, await read_json(request))
    row = await get_tenant(request.app[DB], tenant_id)
    return web.json_response(await _budget_body(request, row))


@api_errors
async def pause_api(request: web.Request) -> web.StreamResponse:
    tenant_id = _own_tenant(request)
    body = await read_json(request)
    check_fields(body, ("reason",))
    row, _ = await _pause(request, tenant_id, body.get("reason"))
    return web.json_response(settings_json(row))


@api_errors
async def resume_api(request: web.Request) -> web.StreamResponse:
    tenant_id = _own_tenant(request)
    row, _ = await _resume(request, tenant_id)
    return web.json_response(settings_json(row))


# --- the settings page ---------------------------------------------------------------------

AUSTRALIAN_ZONES = (
    "Australia/Sydney",
    "Australia/Melbourne",
    "Australia/Brisbane",
    "Australia/Adelaide",
    "Australia/Darwin",
    "Australia/Perth",
    "Australia/Hobart",
)
SETTINGS_FORM = (
    "name",
    "timezone",
    "default_country",
    *(f"window_{day}" for day in WEEKDAYS),
    "respect_public_holidays",
    "rate_limit_per_minute",
    "cooldown_hours",
    "optout_footer",
    "optout_keywords",
    "short_link_base_url",
    "fallback_url",
    "price_per_segment",
)
BUDGET_FORM = ("daily_limit", "monthly_limit", "alert_threshold_pct")
DAY_NAMES = {
    "mon": "Monday",
    "tue": "Tuesday",
    "wed": "Wednesday",
    "thu": "Thursday",
    "fri": "Friday",
    "sat": "Saturday",
    "sun": "Sunday",
}


def settings_form_values(row: Row) -> dict[str, str]:
    """The stored settings as the strings the form shows."""
    values = {
        "name": row["name"],
        "timezone": row["timezone"],
        "default_country": row["default_country"],
        "respect_public_holidays": "1" if row["respect_public_holidays"] else "",
        "rate_limit_per_minute": str(row["rate_limit_per_minute"]),
        "cooldown_hours": str(row["cooldown_hours"]),
        "optout_footer": row["optout_footer"],
        "optout_keywords": ", ".join(row["optout_keywords"]),
        "short_link_base_url": row["short_link_base_url"] or "",
        "fallback_url": row["fallback_url"] or "",
        "price_per_segment": price_book_text(row["price_book"]),
    }
    for day in WEEKDAYS:
        values[f"window_{day}"] = window_day_text(row["send_window"].get(day, []))
    return values


def _whole_number(text: str, field: str) -> int:
    cleaned = text.strip().replace(",", "").replace("_", "")
    if not cleaned.lstrip("-").isdigit() or len(cleaned) > 12:
        raise InvalidInput(f"{field.replace('_', ' ')} must be a whole number", field=field)
    return int(cleaned)


def settings_form_body(form: dict[str, str]) -> dict[str, Any]:
    """The whole form as a PATCH body (the API's validation then applies; unchanged fields
    are no change)."""
    return {
        "name": form["name"],
        "timezone": form["timezone"].strip(),
        "default_country": form["default_country"],
        "send_window": {day: window_day_from_text(day, form[f"window_{day}"]) for day in WEEKDAYS},
        "respect_public_holidays": bool(form["respect_public_holidays"]),
        "rate_limit_per_minute": _whole_number(
            form["rate_limit_per_minute"], "rate_limit_per_minute"
        ),
        "cooldown_hours": _whole_number(form["cooldown_hours"], "cooldown_hours"),
        "optout_footer": form["optout_footer"],
        "optout_keywords": keywords_from_text(form["optout_keywords"]),
        "short_link_base_url": form["short_link_base_url"],
        "fallback_url": form["fallback_url"],
        "price_per_segment": price_book_from_text(form["price_per_segment"]),
    }


def budget_form_values(budget: dict[str, Any]) -> dict[str, str]:
    def text(cents: int | float | None) -> str:
        return "" if cents is None else str(cents)

    return {
        "daily_limit": text(budget["daily_limit"]),
        "monthly_limit": text(budget["monthly_limit"]),
        "alert_threshold_pct": str(budget["alert_threshold_pct"]),
    }


def budget_form_body(form: dict[str, str]) -> dict[str, Any]:
    """Blank limit = no limit; limits stay decimal text so that the conversion is exact."""
    return {
        "daily_limit": form["daily_limit"].strip() or None,
        "monthly_limit": form["monthly_limit"].strip() or None,
        "alert_threshold_pct": _whole_number(form["alert_threshold_pct"], "alert_threshold_pct"),
    }


@functools.cache
def _other_zones() -> tuple[str, ...]:
    return tuple(sorted(z for z in available_timezones() if z not in AUSTRALIAN_ZONES))


def _timezones(current: str) -> list[tuple[str, tuple[str, ...]]]:
    groups = [("Australia", AUSTRALIAN_ZONES), ("Everywhere else", _other_zones())]
    if current not in AUSTRALIAN_ZONES and current not in _other_zones():
        groups.insert(0, ("Current", (current,)))
    return groups


def _percent(spent: int | float, limit: int | float | None) -> int | None:
    if limit is None:
        return None
    if limit == 0:
        return 100 if spent else 0
    return int(spent * 100 // limit)


async def _settings_page(
    request: web.Request,
    *,
    settings_values: dict[str, str] | None = None,
    budget_values: dict[str, str] | None = None,
    pause_reason: str = "",
    error: str | None = None,
    error_section: str | None = None,
    status: int = 200,
) -> web.Response:
    tenant_id = request[CALLER].require_tenant()
    db = request.app[DB]
    row = await get_tenant(db, tenant_id)
    budget = await _budget_body(request, row)
    zone = ZoneInfo(str(row["timezone"]))
    return await render(
        request,
        "settings.html",
        {
            "settings": row,
            "values": settings_values or settings_form_values(row),
            "budget": budget,
            "budget_values": budget_values or budget_form_values(budget),
            "spend_today_pct": _percent(budget["spend_today"], budget["daily_limit"]),
            "spend_month_pct": _percent(budget["spend_month"], budget["monthly_limit"]),
            "paused_by": await pause_actor(db, row),
            "paused_at_local": row["paused_at"].astimezone(zone) if row["paused_at"] else None,
            "pause_reason": pause_reason,
            "error": error,
            "error_section": error_section,
            "weekdays": [(day, DAY_NAMES[day]) for day in WEEKDAYS],
            "timezones": _timezones(str(row["timezone"])),
            "price_book": [
                (country, cents_text(units), dollars_text(units))
                for country, units in sorted(row["price_book"].items())
            ],
            "money": {
                key: (None if budget[key] is None else _dollars(budget[key]))
                for key in ("daily_limit", "monthly_limit", "spend_today", "spend_month")
            },
        },
        status=status,
    )


def _dollars(cents: int | float) -> str:
    return dollars_text(cents_to_units(cents))


async def _posted(request: web.Request, names: tuple[str, ...]) -> dict[str, str]:
    form = await request.post()
    return {name: str(form.get(name) or "").replace("\r\n", "\n") for name in names}


async def settings_page(request: web.Request) -> web.StreamResponse:
    return await _settings_page(request)


async def save_settings_from_form(request: web.Request) -> web.StreamResponse:
    tenant_id = request[CALLER].require_tenant()
    posted = await _posted(request, SETTINGS_FORM)
    try:
        await _update(request, tenant_id, settings_form_body(posted))
    except DomainError as exc:
        return await _settings_page(
            request,
            settings_values=posted,
            error=exc.message,
            error_section="settings",
            status=exc.status,
        )
    response = redirect("/admin/settings")
    flash(request, response, "Settings saved.")
    raise response


async def save_budget_from_form(request: web.Request) -> web.StreamResponse:
    tenant_id = request[CALLER].require_tenant()
    posted = await _posted(request, BUDGET_FORM)
    try:
        await _set_budget(request, tenant_id, budget_form_body(posted))
    except DomainError as exc:
        return await _settings_page(
            request,
            budget_values=posted,
            error=exc.message,
            error_section="budget",
            status=exc.status,
        )
    response = redirect("/admin/settings#budget")
    flash(request, response, "Budget saved.")
    raise response


async def pause_from_form(request: web.Request) -> web.StreamResponse:
    tenant_id = request[CALLER].require_tenant()
    posted = await _posted(request, ("reason",))
    try:
        _, changed = await _pause(request, tenant_id, posted["reason"])
    except DomainError as exc:
        return await _settings_page(
            request,
            pause_reason=posted["reason"],
            error=exc.message,
            error_section="pause",
            status=exc.status,
        )
    response = redirect("/admin/settings")
    flash(
        request,
        response,
        "Sending is paused: no campaign message leaves until you resume."
        if changed
        else "Sending was already paused.",
    )
    raise response


async def resume_from_form(request: web.Request) -> web.StreamResponse:
    tenant_id = request[CALLER].require_tenant()
    _, changed = await _resume(request, tenant_id)
    response = redirect("/admin/settings")
    flash(
        request,
        response,
        "Sending resumed." if changed else "Sending was not paused.",
    )
    raise response


routes = [
    route("GET", "/api/tenants/{tenant_id}", show_tenant_api, access=Access.VIEWER),
    route("PATCH", "/api/tenants/{tenant_id}", patch_tenant_api, access=Access.ADMIN),
    route("GET", "/api/tenants/{tenant_id}/budget", show_budget_api, access=Access.VIEWER),
    route("POST", "/api/tenants/{tenant_id}/budget", set_budget_api, access=Access.ADMIN),
    route("POST", "/api/tenants/{tenant_id}/pause", pause_api, access=Access.ADMIN),
    route("POST", "/api/tenants/{tenant_id}/resume", resume_api, access=Access.ADMIN),
    route("GET", "/admin/settings", settings_page, access=Access.VIEWER, name="settings"),
    route("POST", "/admin/settings", save_settings_from_form, access=Access.ADMIN),
    route("POST", "/admin/settings/budget", save_budget_from_form, access=Access.ADMIN),
    route("POST", "/admin/settings/pause", pause_from_form, access=Access.ADMIN),
    route("POST", "/admin/settings/resume", resume_from_form, access=Access.ADMIN),
]
