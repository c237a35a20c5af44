"""Server-rendered pages: Jinja2 with autoescape everywhere, one base layout, flash messages.

Every page gets `caller`, `csrf_token`, the current tenant, the caller's tenants (for the
switcher) and the pending flash messages. Pages work without JavaScript.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web

from smsapp import sessions
from smsapp.access import CALLER, ROLE_RANK, Caller
from smsapp.keys import DB, SESSION_TOKEN, SETTINGS

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
STATIC_DIR = Path(__file__).resolve().parent / "static"
FLASH_COOKIE = "smsapp_flash"


def setup_templates(app: web.Application) -> None:
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
        undefined=jinja2.StrictUndefined,
    )
    env.filters["when"] = lambda d: "" if d is None else d.strftime("%Y-%m-%d %H:%M UTC")


def _sign(settings_key: str, payload: bytes) -> str:
    return hmac.new(settings_key.encode(), b"flash:" + payload, hashlib.sha256).hexdigest()[:32]


def flash(
    request: web.Request, response: web.StreamResponse, message: str, kind: str = "ok"
) -> None:
    """Show `message` on the next page this browser renders (a signed, short-lived cookie)."""
    key = request.app[SETTINGS].secret_key
    payload = base64.urlsafe_b64encode(json.dumps([kind, message]).encode())
    response.set_cookie(
        FLASH_COOKIE,
        f"{payload.decode()}.{_sign(key, payload)}",
        max_age=60,
        path="/",
        httponly=True,
        samesite="Lax",
        secure=request.app[SETTINGS].secure_cookies,
    )


def _read_flash(request: web.Request) -> list[dict[str, str]]:
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw or "." not in raw:
        return []
    payload, signature = raw.rsplit(".", 1)
    if not hmac.compare_digest(
        signature, _sign(request.app[SETTINGS].secret_key, payload.encode())
    ):
        return []
    try:
        kind, message = json.loads(base64.urlsafe_b64decode(payload))
    except ValueError:
        return []
    return [{"kind": str(kind), "message": str(message)}]


async def page_context(request: web.Request) -> dict[str, Any]:
    caller = request.get(CALLER)
    context: dict[str, Any] = {
        "caller": caller,
        "csrf_token": "",
        "tenant": None,
        "my_tenants": [],
        "flashes": _read_flash(request),
        "path": request.path,
        "can": lambda needs: _can(caller, needs),
    }
    session_token = request.get(SESSION_TOKEN)
    if session_token:
        context["csrf_token"] = sessions.csrf_token(request.app[SETTINGS], session_token)
    if caller is not None:
        db = request.app[DB]
        if caller.tenant_id is not None:
            context["tenant"] = await db.one("tenancy.tenant_by_id", id=caller.tenant_id)
        if caller.user_id is not None:
            context["my_tenants"] = await db.all(
                "people.memberships_of_user", user_id=caller.user_id
            )
    return context


async def render(
    request: web.Request, template: str, context: dict[str, Any] | None = None, *, status: int = 200
) -> web.Response:
    full = await page_context(request)
    full.update(context or {})
    response = aiohttp_jinja2.render_template(template, request, full, status=status)
    if full["flashes"]:
        response.del_cookie(FLASH_COOKIE, path="/")
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def _can(caller: Caller | None, needs: str) -> bool:
    """Whether to show a link to a page of access class `needs` (the route still checks)."""
    if caller is None:
        return needs == "public"
    if needs in ("public", "self"):
        return True
    if needs == "operator":
        return caller.is_operator
    return caller.role is not None and ROLE_RANK[caller.role] >= ROLE_RANK[needs]


def render_error_page(request: web.Request, status: int, message: str) -> web.Response:
    """A plain branded error page; no database work, so it renders even when that is down."""
    titles = {
        403: "Not allowed",
        404: "Not found",
        405: "Not allowed",
        410: "Gone",
        413: "Too large",
        429: "Slow down",
        500: "Something went wrong",
    }
    context: dict[str, Any] = {
        "status": status,
        "title": titles.get(status, "Error"),
        "message": message,
        "caller": request.get(CALLER),
        "csrf_token": "",
        "tenant": None,
        "my_tenants": [],
        "flashes": [],
        "path": request.path,
        "can": lambda needs: False,
    }
    return aiohttp_jinja2.render_template("error.html", request, context, status=status)


def redirect(location: str) -> web.HTTPSeeOther:
    return web.HTTPSeeOther(location)
