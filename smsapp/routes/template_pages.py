"""Message template admin pages (pack §7, §8):

    GET  /admin/templates               the templates with their encoding and segments; the
                                        create form (staff)
    POST /admin/templates               create (or, with the Preview button, only preview)
    POST /admin/templates/preview       JSON: the live preview of a body, as sent (viewer)
    GET  /admin/templates/{id}          one template: its preview; the edit form (staff)
    POST /admin/templates/{id}          save (or preview)
    POST /admin/templates/{id}/archive  archive / unarchive (staff)
    POST /admin/templates/{id}/unarchive

The pages work without JavaScript: the preview beside the body is rendered by the server for
the saved body and on the Preview button. With JavaScript, static/preview.js asks
/admin/templates/preview as the person types, which counts the body exactly as the server does
(smsapp.template_preview: footer when needed, {link} at the real short-link length).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from smsapp.access import CALLER, Access, route
from smsapp.campaigns import MAX_TEMPLATE_LENGTH, get_template
from smsapp.db import Row
from smsapp.errors import ApiError, path_int, read_json
from smsapp.fields import DomainError, check_fields
from smsapp.keys import DB, SETTINGS
from smsapp.pages import flash, redirect, render
from smsapp.queue_builder import campaign_sender_kind
from smsapp.routes.campaigns import create_template_audited, update_template_audited
from smsapp.routes.common import as_api_error
from smsapp.template_preview import Preview, char_label, preview

PREVIEW_ACTION = "preview"


async def _tenant(request: web.Request) -> Row:
    tenant_id = request[CALLER].require_tenant()
    tenant = await request.app[DB].one("tenancy.tenant_by_id", id=tenant_id)
    if tenant is None:
        raise ApiError(404, "not_found", "no such tenant")
    return tenant


async def _previewer(request: web.Request, tenant: Row) -> Callable[[str], Preview]:
    """Previews for this tenant, counted for the sender its campaigns go from."""
    kind = await campaign_sender_kind(request.app[DB], tenant["id"])
    return lambda body: preview(request.app[SETTINGS], tenant, body, kind)


async def _posted(request: web.Request) -> tuple[dict[str, str], bool]:
    """The form's name and body (a textarea sends CRLF; the stored text uses LF), and whether
    the Preview button sent it."""
    form = await request.post()
    values = {
        "name": str(form.get("name") or ""),
        "body": str(form.get("body") or "").replace("\r\n", "\n"),
    }
    return values, form.get("action") == PREVIEW_ACTION


# --- the list and the create form ------------------------------------------------------------


async def _list(
    request: web.Request,
    *,
    values: dict[str, str] | None = None,
    error: str | None = None,
    status: int = 200,
) -> web.Response:
    tenant = await _tenant(request)
    preview_of = await _previewer(request, tenant)
    rows = await request.app[DB].all("campaigns.templates", tenant_id=tenant["id"])
    templates = [{"row": r, "preview": preview_of(r["body"])} for r in rows]
    values = values or {"name": "", "body": ""}
    return await render(
        request,
        "templates.html",
        {
            "templates": templates,
            "values": values,
            "error": error,
            "preview": preview_of(values["body"]),
            "max_length": MAX_TEMPLATE_LENGTH,
            "char_label": char_label,
        },
        status=status,
    )


async def templates_page(request: web.Request) -> web.StreamResponse:
    return await _list(request)


async def create_from_form(request: web.Request) -> web.StreamResponse:
    tenant_id = request[CALLER].require_tenant()
    values, preview_only = await _posted(request)
    if preview_only:
        return await _list(request, values=values)
    try:
        row = await create_template_audited(request, tenant_id, values)
    except DomainError as exc:
        return await _list(request, values=values, error=exc.message, status=exc.status)
    response = redirect(f"/admin/templates/{row['id']}")
    flash(request, response, f"Template {row['name']!r} created.")
    raise response


# --- the live preview ------------------------------------------------------------------------


async def preview_api(request: web.Request) -> web.StreamResponse:
    """`{"body"}` → the answer of POST /api/messages/preview for the body as it is sent, plus
    `footer`, `link_length`, `message`, `placeholders`, `problem`, `price_per_message`. Errors
    in the API's JSON shape, though the address is a page's."""
    try:
        payload = await read_json(request)
        try:
            check_fields(payload, ("body",))
        except DomainError as exc:
            raise as_api_error(exc) from None
        body = payload.get("body")
        if not isinstance(body, str):
            raise ApiError(400, "bad_request", "send 'body': the template text, a string")
        if len(body) > MAX_TEMPLATE_LENGTH:
            raise ApiError(
                400,
                "too_long",
                f"the body is {len(body)} characters; at most {MAX_TEMPLATE_LENGTH} are accepted",
            )
        try:
            body.encode("utf-8")
        except UnicodeEncodeError:
            raise ApiError(
                400, "bad_request", "the body contains a lone UTF-16 surrogate"
            ) from None
        tenant = await _tenant(request)
    except ApiError as exc:
        return exc.response()
    preview_of = await _previewer(request, tenant)
    answer = preview_of(body.replace("\r\n", "\n")).as_json()
    return web.json_response(answer, headers={"Cache-Control": "no-store"})


# --- one template ----------------------------------------------------------------------------


async def _template_or_404(request: web.Request, tenant_id: int) -> Row:
    template_id = path_int(request, "template_id", "template")
    try:
        return await get_template(request.app[DB], tenant_id, template_id)
    except DomainError as exc:
        raise as_api_error(exc) from None


async def _detail(
    request: web.Request,
    template: Row,
    *,
    values: dict[str, str] | None = None,
    error: str | None = None,
    status: int = 200,
) -> web.Response:
    tenant = await _tenant(request)
    preview_of = await _previewer(request, tenant)
    values = values or {"name": template["name"], "body": template["body"]}
    campaigns = await request.app[DB].all(
        "campaign_pages.template_campaigns", tenant_id=tenant["id"], template_id=template["id"]
    )
    return await render(
        request,
        "template.html",
        {
            "template": template,
            "values": values,
            "error": error,
            "preview": preview_of(values["body"]),
            "changed": values["body"] != template["body"] or values["name"] != template["name"],
            "campaigns": campaigns,
            "max_length": MAX_TEMPLATE_LENGTH,
            "char_label": char_label,
        },
        status=status,
    )


async def template_page(request: web.Request) -> web.StreamResponse:
    tenant_id = request[CALLER].require_tenant()
    return await _detail(request, await _template_or_404(request, tenant_id))


async def update_from_form(request: web.Request) -> web.StreamResponse:
    tenant_id = request[CALLER].require_tenant()
    current = await _template_or_404(request, tenant_id)
    values, preview_only = await _posted(request)
    if preview_only:
        return await _detail(request, current, values=values)
    changed = {k: v for k, v in values.items() if v != current[k]}
    if changed:
        try:
            await update_template_audited(request, tenant_id, current["id"], changed)
        except DomainError as exc:
            return await _detail(
                request, current, values=values, error=exc.message, status=exc.status
            )
    response = redirect(f"/admin/templates/{current['id']}")
    flash(request, response, "Saved." if changed else "Nothing changed.")
    raise response


def set_active(active: bool) -> Any:
    async def handler(request: web.Request) -> web.StreamResponse:
        tenant_id = request[CALLER].require_tenant()
        current = await _template_or_404(request, tenant_id)
        if current["active"] != active:
            try:
                await update_template_audited(request, tenant_id, current["id"], {"active": active})
            except DomainError as exc:
                raise as_api_error(exc) from None
        response = redirect(f"/admin/templates/{current['id']}")
        flash(
            request,
            response,
            f"Template {current['name']!r} "
            + (
                "is active again: new campaigns can use it."
                if active
                else "is archived: new campaigns cannot use it; campaigns that have it keep it."
            ),
        )
        raise response

    return handler


routes = [
    route("GET", "/admin/templates", templates_page, access=Access.VIEWER, name="templates"),
    route("POST", "/admin/templates", create_from_form, access=Access.STAFF),
    route("POST", "/admin/templates/preview", preview_api, access=Access.VIEWER),
    route("GET", "/admin/templates/{template_id}", template_page, access=Access.VIEWER),
    route("POST", "/admin/templates/{template_id}", update_from_form, access=Access.STAFF),
    route("POST", "/admin/templates/{template_id}/archive", set_active(False), access=Access.STAFF),
    route(
        "POST", "/admin/templates/{template_id}/unarchive", set_active(True), access=Access.STAFF
    ),
]
