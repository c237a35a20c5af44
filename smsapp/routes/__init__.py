"""The route table: every route of the app, each with its access class, in one place."""

from __future__ import annotations

from smsapp.access import RouteSpec, StaticSpec
from smsapp.routes import health, me


def all_routes() -> list[RouteSpec | StaticSpec]:
    return [
        *health.routes,
        *me.routes,
    ]
