"""Typed application keys: everything the app shares lives under one of these."""

from __future__ import annotations

from typing import TYPE_CHECKING

import aiohttp
from aiohttp import web
from aiohttp.web_urldispatcher import AbstractRoute

from smsapp.clock import Clock
from smsapp.config import Settings
from smsapp.db import Database
from smsapp.engine.providers import Provider
from smsapp.short_links import LinkCache

if TYPE_CHECKING:
    from smsapp.access import RouteAccessTable
    from smsapp.engine.sender import Sender

SETTINGS = web.AppKey("settings", Settings)
CLOCK = web.AppKey("clock", Clock)
DB = web.AppKey("db", Database)
PROVIDER = web.AppKey("provider", Provider)
LINK_CACHE = web.AppKey("link_cache", LinkCache)  # the redirect's token → link cache
ROUTE_ACCESS: web.AppKey[RouteAccessTable] = web.AppKey("route_access")
# Routes answered before every middleware (`fast_path=True` in the route table).
FAST_PATH_ROUTES: web.AppKey[set[AbstractRoute]] = web.AppKey("fast_path_routes")
HTTP = web.AppKey("http", aiohttp.ClientSession)  # outgoing HTTP (provider, callbacks)
SENDER: web.AppKey[Sender] = web.AppKey("sender")  # the send loop (absent in tests)
SESSION_TOKEN = web.RequestKey("session_token", str)
