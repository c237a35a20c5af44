"""The route table: every route of the app, each with its access class, in one place."""

from __future__ import annotations

from aiohttp import web

from smsapp.access import Access, RouteSpec, StaticSpec, route
from smsapp.pages import STATIC_DIR
from smsapp.routes import admin, contacts, dnc, health, import_pages, login, me, suppression
from smsapp.routes import campaign_pages as campaign_page_routes
from smsapp.routes import campaigns as campaign_routes
from smsapp.routes import imports as import_routes
from smsapp.routes import inbox as inbox_routes
from smsapp.routes import messages as message_routes
from smsapp.routes import numbers as number_routes
from smsapp.routes import short_links as short_link_routes
from smsapp.routes import template_pages as template_page_routes
from smsapp.routes import tenant_settings as settings_routes
from smsapp.routes import test_send as test_send_routes
from smsapp.routes import unsubscribe as unsubscribe_routes
from smsapp.routes import webhooks as webhook_routes


async def root(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/admin/")


def all_routes() -> list[RouteSpec | StaticSpec]:
    return [
        route("GET", "/", root, access=Access.SELF, name="root"),
        StaticSpec("/static", STATIC_DIR, name="static"),
        *health.routes,
        *login.routes,
        *me.routes,
        *admin.routes,
        *contacts.routes,
        *dnc.routes,
        *suppression.routes,
        *import_routes.routes,
        *import_pages.routes,
        *message_routes.routes,
        *campaign_routes.routes,
        *test_send_routes.routes,
        *template_page_routes.routes,
        *campaign_page_routes.routes,
        *settings_routes.routes,
        *number_routes.routes,
        *short_link_routes.routes,
        *webhook_routes.routes,
        *unsubscribe_routes.routes,
        *inbox_routes.routes,
    ]
