"""Who am I: the caller's role and current tenant."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from smsapp.access import CALLER, Access, route
from smsapp.keys import DB


async def me(request: web.Request) -> web.Response:
    caller = request[CALLER]
    tenant: dict[str, Any] | None = None
    if caller.tenant_id is not None:
        row = await request.app[DB].one("tenancy.tenant_by_id", id=caller.tenant_id)
        if row is not None:
            tenant = {
                "id": row["id"],
                "slug": row["slug"],
                "name": row["name"],
                "timezone": row["timezone"],
                "paused": row["paused"],
            }
    body: dict[str, Any] = {
        "kind": caller.kind,
        "role": caller.role,
        "tenant": tenant,
        "user": None
        if caller.user_id is None
        else {"id": caller.user_id, "email": caller.email, "is_operator": caller.is_operator},
        "api_key": None if caller.api_key_id is None else {"id": caller.api_key_id},
    }
    return web.json_response(body)


routes = [route("GET", "/api/me", me, access=Access.SELF, name="api_me")]
