"""Short hosts (pack §9): the hosts printed in text messages serve links and nothing else.

Two kinds of short host:

- the platform's, when SHORT_LINK_BASE_URL names a host other than PUBLIC_BASE_URL's: it
  serves every tenant's links;
- a tenant's own (the tenant setting `short_link_base_url`): it serves that tenant's links only.
  Another tenant's token there is 404, as an unknown one is, even when the link is cached.
  A tenant cannot take a host another tenant already uses (`tenant_settings` answers 409);
  should several name the same host all the same, it serves the links of each of them.

A short host serves only `GET|HEAD /s/{token}`, `/robots.txt` and a plain root page saying what
the host is; everything else there is a small branded 404 page, so the admin, the API and the
login never answer on a host printed in text messages. The public host (PUBLIC_BASE_URL's)
serves the whole app and every link, as does any host that is nobody's short host. A tenant
naming the public or the platform's short host as its own changes nothing there.

Hosts are compared by name (case-insensitive, port ignored). The tenants' hosts are read from
the database at most once every `TENANT_HOSTS_TTL` (by the app's clock): a tenant's new short
host is honoured within that time, in every process. Requests on the public and the platform's
short host never wait for that read.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import aiohttp_jinja2
from aiohttp import web
from aiohttp.typedefs import Middleware

from smsapp.access import Handler
from smsapp.config import Settings
from smsapp.db import Executor
from smsapp.keys import CLOCK, DB

log = logging.getLogger("smsapp.short_host")

PRODUCT = "smsapp"
SHORT_HOST_PATHS = re.compile(r"^/s/[^/]+$|^/robots\.txt$")
TENANT_HOSTS_TTL = timedelta(seconds=10)
RETRY_AFTER_FAILURE = timedelta(seconds=1)
PAGE_HEADERS = {"X-Robots-Tag": "noindex", "Cache-Control": "no-store"}
TITLES = {404: "Not found", 410: "Link expired", 500: "Something went wrong"}
FAILED = "Something went wrong on our side. Please try the link again in a moment."


@functools.lru_cache(maxsize=1024)
def host_name(netloc: str) -> str | None:
    """`Go.Example:443` → `go.example`; None when there is no host in it."""
    try:
        return urlsplit(f"//{netloc}").hostname
    except ValueError:
        return None


def url_host(url: str | None) -> str | None:
    if not url:
        return None
    try:
        return urlsplit(url).hostname
    except ValueError:
        return None


def short_host(settings: Settings) -> str | None:
    """The platform's short host's name, when it differs from the public host's; else None."""
    short = url_host(settings.short_link_base_url)
    return short if short and short != url_host(settings.public_base_url) else None


def tenant_hosts_map(rows: Iterable[Mapping[str, Any]]) -> dict[str, frozenset[int]]:
    """host name → the tenants naming it as their short host."""
    hosts: dict[str, set[int]] = {}
    for row in rows:
        name = url_host(str(row["short_link_base_url"]))
        if name:
            hosts.setdefault(name, set()).add(int(row["id"]))
    return {name: frozenset(ids) for name, ids in hosts.items()}


class TenantHosts:
    """The tenants' own short hosts, read at most once every TENANT_HOSTS_TTL. When the read
    fails (database down) the previous map is kept and the read is tried again a second later:
    those hosts then serve as before, or as ordinary hosts until a first read succeeds."""

    def __init__(self, ttl: timedelta = TENANT_HOSTS_TTL) -> None:
        self.ttl = ttl
        self._hosts: dict[str, frozenset[int]] = {}
        self._next_read: datetime | None = None
        self._read_at: datetime | None = None
        self._lock = asyncio.Lock()

    def _due(self, now: datetime) -> bool:
        return (
            self._next_read is None
            or now >= self._next_read
            or (self._read_at is not None and now < self._read_at)  # the clock went back
        )

    async def tenants_of(self, db: Executor, now: datetime, host: str) -> frozenset[int] | None:
        """The tenants whose own short host `host` is; None when it is nobody's. `now`: the
        request's time (the redirect reads its clock once)."""
        if self._due(now):
            async with self._lock:
                if self._due(now):
                    try:
                        self._hosts = tenant_hosts_map(
                            await db.all("short_links.tenant_short_hosts")
                        )
                        self._next_read = now + self.ttl
                    except Exception:
                        log.warning("could not read the tenants' short hosts", exc_info=True)
                        self._next_read = now + RETRY_AFTER_FAILURE
                    self._read_at = now
        return self._hosts.get(host)


def link_page(request: web.Request, status: int, message: str) -> web.Response:
    """The small branded page of a short host (and of the redirect's 404 and 410): styled
    inline, since a short host serves no static files, and linking nowhere."""
    response = aiohttp_jinja2.render_template(
        "short_link_page.html",
        request,
        {"status": status, "title": TITLES.get(status, PRODUCT), "message": message,
         "product": PRODUCT},
        status=status,
    )  # fmt: skip
    response.headers.update(PAGE_HEADERS)
    return response


def root_page(request: web.Request) -> web.Response:
    return link_page(request, 200, f"This is a link service of {PRODUCT}.")


async def only_links(request: web.Request, handler: Handler) -> web.StreamResponse:
    """What a short host serves: links, robots.txt and its root page; nothing else."""
    if request.method in ("GET", "HEAD"):
        if SHORT_HOST_PATHS.match(request.path):
            response = await handler(request)
            if response.status >= 500:  # the app's error page needs the admin's stylesheet
                return link_page(request, response.status, FAILED)
            return response
        if request.path == "/":
            return root_page(request)
    return link_page(request, 404, "There is nothing here.")


class ShortHosts:
    """Which host a request came to: the public host, the platform's short host, a tenant's
    own short host, or any other (served as the public host is)."""

    def __init__(self, settings: Settings) -> None:
        self.public = url_host(settings.public_base_url)
        self.platform = short_host(settings)
        # Links are printed with an https:// address: every answer of theirs says HSTS.
        self.https = any(
            (url or "").startswith("https://")
            for url in (settings.short_link_base_url, settings.public_base_url)
        )
        self.tenant_hosts = TenantHosts()

    def tenant_host(self, request: web.Request) -> str | None:
        """The request's host name when it may be a tenant's own short host; None for the
        public host and the platform's short host (no read needed: the common case)."""
        host = host_name(request.host)
        if host is None or host == self.public or host == self.platform:
            return None
        return host


SHORT_HOSTS = web.AppKey("short_hosts", ShortHosts)


def short_host_middleware(hosts: ShortHosts) -> Middleware:
    """The short hosts' middleware (the route table's list): the public host passes straight
    through; the platform's short host and the tenants' are served links only. (The redirect
    itself is a fast-path route that no middleware sees: it applies `ShortHosts.tenant_host`
    and `TenantHosts.tenants_of` itself.)"""

    async def only_links_on_short_hosts(
        request: web.Request, handler: Handler
    ) -> web.StreamResponse:
        host = host_name(request.host)
        if host is None or host == hosts.public:
            return await handler(request)
        if host == hosts.platform:
            return await only_links(request, handler)
        now = request.app[CLOCK].now()
        tenants = await hosts.tenant_hosts.tenants_of(request.app[DB], now, host)
        if tenants is None:
            return await handler(request)
        return await only_links(request, handler)

    return only_links_on_short_hosts
