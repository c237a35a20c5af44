"""Short links (pack §9, §17): the public redirect `GET /s/{token}`, `GET /robots.txt`, and the
API to make a link and read its counters."""

from __future__ import annotations

import logging
import re
import uuid

from aiohttp import hdrs, web
from multidict import CIMultiDict

from smsapp import audit
from smsapp.access import CALLER, Access, route
from smsapp.errors import read_json
from smsapp.fields import NotFound, check_fields
from smsapp.hit_writer import HIT_WRITER, pending_hit
from smsapp.keys import CLOCK, DB, LINK_CACHE, SETTINGS
from smsapp.logs import request_id_var
from smsapp.routes.common import api_errors
from smsapp.short_host import FAILED, SHORT_HOSTS, link_page
from smsapp.short_links import (
    check_target_url,
    create_link,
    ip_hash,
    link_json,
    optional_id,
)

log = logging.getLogger("smsapp.short_links")

TOKEN_SHAPE = re.compile(r"[A-Za-z0-9]{8,64}")
HSTS = "max-age=31536000; includeSubDomains"
ROBOTS_TXT = "User-agent: *\nDisallow: /s/\nDisallow: /u/\n"
HEADERS = CIMultiDict(
    {"Referrer-Policy": "no-referrer", "Cache-Control": "no-store", "X-Robots-Tag": "noindex"}
)
HEADERS_HSTS = CIMultiDict({**HEADERS, "Strict-Transport-Security": HSTS})


def link_headers(request: web.Request) -> CIMultiDict[str]:
    """The headers of every answer of the redirect (pack §9); a response copies them."""
    if request.secure or request.app[SHORT_HOSTS].https:
        return HEADERS_HSTS
    return HEADERS


def redirect_to(request: web.Request, location: str) -> web.Response:
    response = web.Response(status=302, headers=link_headers(request))
    response.headers[hdrs.LOCATION] = location
    return response


def page(request: web.Request, status: int, message: str) -> web.Response:
    response = link_page(request, status, message)
    response.headers.update(link_headers(request))
    return response


NOT_FOUND = "This link does not exist. Check that it was copied whole."


async def follow_link(request: web.Request) -> web.StreamResponse:
    """GET (and HEAD) /s/{token}: the app's hottest path. A fast-path route (the route table
    below): no middleware sees it, so it answers its own failures with the links' branded page
    and applies the short-host rules itself (on a tenant's own short host only that tenant's
    links are served, smsapp/short_host.py). The hit is in the hit journal before the 302 is
    answered (smsapp/hit_writer.py). The target comes only from the stored link: nothing in the
    request can change where it goes."""
    try:
        app = request.app
        token = request.match_info["token"]
        cache = app[LINK_CACHE]
        link = cache.cached(token)
        if link is None and TOKEN_SHAPE.fullmatch(token):
            link = await cache.load(app[DB], token)
        if link is None:
            return page(request, 404, NOT_FOUND)
        now = app[CLOCK].now()
        hosts = app[SHORT_HOSTS]
        host = hosts.tenant_host(request)
        if host is not None:  # not the public host: maybe a tenant's own
            tenants = await hosts.tenant_hosts.tenants_of(app[DB], now, host)
            if tenants is not None and link.tenant_id not in tenants:
                return page(request, 404, NOT_FOUND)
        if link.expires_at <= now:
            fallback = await app[DB].val("short_links.fallback_url", tenant_id=link.tenant_id)
            if fallback:
                return redirect_to(request, str(fallback))
            return page(request, 410, "This link has expired.")
        headers = request.headers
        await app[HIT_WRITER].record(
            pending_hit(
                token,
                link,
                now,
                request.method,
                headers.get("User-Agent"),
                headers,
                ip_hash(app[SETTINGS].secret_key, request.remote),
            )
        )
        return redirect_to(request, link.target_url)
    except Exception:
        return failed(request)


def failed(request: web.Request) -> web.Response:
    """The redirect failed: logged with a request id, which the links' 500 page carries."""
    request_id = uuid.uuid4().hex
    reset = request_id_var.set(request_id)
    try:
        log.exception(
            "the redirect %s %s failed (request id %s)", request.method, request.path, request_id
        )
    finally:
        request_id_var.reset(reset)
    response = page(request, 500, FAILED)
    response.headers["X-Request-ID"] = request_id
    return response


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
        await request.app[HIT_WRITER].fold_before_read()  # every hit answered so far, if quick
        row = await request.app[DB].one("short_links.of_tenant", tenant_id=tenant_id, token=token)
    if row is None:
        raise NotFound("short link")
    return web.json_response(link_json(request.app[SETTINGS], row))


routes = [
    route(
        "GET", "/s/{token}", follow_link, access=Access.PUBLIC, name="short_link", fast_path=True
    ),
    route("HEAD", "/s/{token}", follow_link, access=Access.PUBLIC, fast_path=True),
    route("GET", "/robots.txt", robots_txt, access=Access.PUBLIC),
    route("POST", "/api/short-links", create_short_link, access=Access.STAFF),
    route("GET", "/api/short-links/{token}", get_short_link, access=Access.VIEWER),
]
