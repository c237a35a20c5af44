"""Short links (pack §9, §17): the public redirect `GET /s/{token}`, `GET /robots.txt`, and the
API to make a link and read its counters."""

from __future__ import annotations

import re

from aiohttp import web

from smsapp import audit
from smsapp.access import CALLER, Access, route
from smsapp.errors import read_json
from smsapp.fields import NotFound, check_fields
from smsapp.keys import CLOCK, DB, LINK_CACHE, SETTINGS
from smsapp.pages import render_error_page
from smsapp.routes.common import api_errors
from smsapp.short_links import (
    check_target_url,
    create_link,
    ip_hash,
    link_json,
    optional_id,
    record_hit,
)

TOKEN_SHAPE = re.compile(r"[A-Za-z0-9]{8,64}")
HSTS = "max-age=31536000; includeSubDomains"
ROBOTS_TXT = "User-agent: *\nDisallow: /s/\nDisallow: /u/\n"


def link_headers(request: web.Request) -> dict[str, str]:
    """The headers of every answer of the redirect (pack §9)."""
    settings = request.app[SETTINGS]
    headers = {
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
        "X-Robots-Tag": "noindex",
    }
    configured = (settings.short_link_base_url or "", settings.public_base_url)
    if request.secure or any(url.startswith("https://") for url in configured):
        headers["Strict-Transport-Security"] = HSTS
    return headers


def redirect_to(request: web.Request, location: str) -> web.Response:
    return web.Response(status=302, headers={"Location": location, **link_headers(request)})


def page(request: web.Request, status: int, message: str) -> web.Response:
    response = render_error_page(request, status, message)
    response.headers.update(link_headers(request))
    return response


async def follow_link(request: web.Request) -> web.StreamResponse:
    """GET (and HEAD) /s/{token}: the hit is committed before the 302 is answered. The target
    comes only from the stored link: nothing in the request can change where it goes."""
    app = request.app
    db, clock = app[DB], app[CLOCK]
    token = request.match_info["token"]
    link = await app[LINK_CACHE].get(db, token) if TOKEN_SHAPE.fullmatch(token) else None
    if link is None:
        return page(request, 404, "This link does not exist. Check that it was copied whole.")
    now = clock.now()
    if link.expires_at <= now:
        fallback = await db.val("short_links.fallback_url", tenant_id=link.tenant_id)
        if fallback:
            return redirect_to(request, str(fallback))
        return page(request, 410, "This link has expired.")
    sent_at = await app[LINK_CACHE].sent_at(db, link)
    await record_hit(
        db,
        link,
        now=now,
        sent_at=sent_at,
        method=request.method,
        user_agent=request.headers.get("User-Agent"),
        headers=request.headers,
        ip_digest=ip_hash(app[SETTINGS].secret_key, request.remote),
    )
    return redirect_to(request, link.target_url)


async def robots_txt(request: web.Request) -> web.StreamResponse:
    return web.Response(text=ROBOTS_TXT, content_type="text/plain")


@api_errors
async def create_short_link(request: web.Request) -> web.StreamResponse:
    tenant_id = request[CALLER].require_tenant()
    db, clock = request.app[DB], request.app[CLOCK]
    body = await read_json(request)
    check_fields(body, ("target_url", "campaign_id", "contact_id"))
    target_url = check_target_url(body.get("target_url"))
    campaign_id = optional_id(body, "campaign_id")
    contact_id = optional_id(body, "contact_id")
    row, created = await create_link(
        db,
        clock,
        tenant_id=tenant_id,
        target_url=target_url,
        campaign_id=campaign_id,
        contact_id=contact_id,
    )
    if created:
        await audit.record_request(
            request,
            db,
            clock,
            "short_link.create",
            target_type="short_link",
            target_id=row["id"],
            details={"campaign_id": campaign_id, "contact_id": contact_id},
        )
    return web.json_response(link_json(request.app[SETTINGS], row), status=201 if created else 200)


@api_errors
async def get_short_link(request: web.Request) -> web.StreamResponse:
    tenant_id = request[CALLER].require_tenant()
    token = request.match_info["token"]
    row = None
    if TOKEN_SHAPE.fullmatch(token):
        row = await request.app[DB].one("short_links.of_tenant", tenant_id=tenant_id, token=token)
    if row is None:
        raise NotFound("short link")
    return web.json_response(link_json(request.app[SETTINGS], row))


routes = [
    route("GET", "/s/{token}", follow_link, access=Access.PUBLIC, name="short_link"),
    route("HEAD", "/s/{token}", follow_link, access=Access.PUBLIC),
    route("GET", "/robots.txt", robots_txt, access=Access.PUBLIC),
    route("POST", "/api/short-links", create_short_link, access=Access.STAFF),
    route("GET", "/api/short-links/{token}", get_short_link, access=Access.VIEWER),
]
