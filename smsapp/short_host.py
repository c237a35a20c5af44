"""The short host (pack §9): when SHORT_LINK_BASE_URL names a host other than PUBLIC_BASE_URL's,
requests for that host are served only the redirect `/s/{token}`, `/robots.txt` and a plain
root page saying what the host is; everything else there is 404, so the admin, the API and the
login never answer on the host printed in text messages. Other hosts are served as before.

Hosts are compared by name (case-insensitive, port ignored). When the two URLs share a host
name the app serves both on one host and this does nothing.
"""

from __future__ import annotations

import html
import re
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.typedefs import Middleware

from smsapp.access import Handler
from smsapp.config import Settings
from smsapp.pages import render_error_page

PRODUCT = "smsapp"
SHORT_HOST_PATHS = re.compile(r"^/s/[^/]+$|^/robots\.txt$")
ROOT_PAGE = (
    '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
    '<meta name="robots" content="noindex"><title>{product}</title></head>'
    "<body><p>This is a link service of {product}.</p></body></html>\n"
)


def host_name(netloc: str) -> str | None:
    """`Go.Example:443` → `go.example`; None when there is no host in it."""
    try:
        return urlsplit(f"//{netloc}").hostname
    except ValueError:
        return None


def short_host(settings: Settings) -> str | None:
    """The short host's name, when it differs from the public host's; else None."""
    if not settings.short_link_base_url:
        return None
    short = urlsplit(settings.short_link_base_url).hostname
    public = urlsplit(settings.public_base_url).hostname
    return short if short and short != public else None


def root_page() -> web.Response:
    return web.Response(
        text=ROOT_PAGE.format(product=html.escape(PRODUCT)),
        content_type="text/html",
        headers={"X-Robots-Tag": "noindex", "Cache-Control": "no-store"},
    )


def short_host_middleware(settings: Settings) -> Middleware | None:
    """The middleware for the app's middleware list, or None when there is no separate short
    host (then nothing is added, and the redirect pays nothing for it)."""
    host = short_host(settings)
    if host is None:
        return None

    @web.middleware
    async def only_links_on_the_short_host(
        request: web.Request, handler: Handler
    ) -> web.StreamResponse:
        if host_name(request.host) != host:
            return await handler(request)
        if SHORT_HOST_PATHS.match(request.path):
            return await handler(request)
        if request.path == "/" and request.method in ("GET", "HEAD"):
            return root_page()
        return render_error_page(request, 404, "There is nothing here.")

    return only_links_on_the_short_host
