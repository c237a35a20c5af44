"""Who may call what. Every route declares one access class where it is registered (pack §2):

    public  anyone (health, login, /s/…, /u/…, webhooks, static files)
    self    any signed-in caller (logout, switch tenant, own profile, /api/me)
    viewer  a member of the current tenant with at least the viewer role
    staff   … at least staff
    admin   … admin
    operator  a platform operator (a flag on the user; creates tenants, sees the Ops page)

Handlers never check roles themselves: `access_middleware` enforces the declared class before
the handler runs, and `check_route_table` refuses to start an app with an undeclared route.

A public route may also be declared `fast_path=True` (the short-link redirect, the app's hottest
path): `smsapp.middleware.fast_path` hands it straight to its handler, before every other
middleware, so that handler answers its own failures (no request log line, no error shape).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Literal
from urllib.parse import quote

from aiohttp import web
from aiohttp.web_urldispatcher import AbstractRoute

from smsapp.errors import ApiError
from smsapp.keys import FAST_PATH_ROUTES, ROUTE_ACCESS

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Role = Literal["viewer", "staff", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "staff", "admin")


class Access(StrEnum):
    PUBLIC = "public"
    SELF = "self"
    VIEWER = "viewer"
    STAFF = "staff"
    ADMIN = "admin"
    OPERATOR = "operator"


ROLE_RANK: dict[str, int] = {"viewer": 1, "staff": 2, "admin": 3}
REQUIRED_RANK: dict[Access, int] = {Access.VIEWER: 1, Access.STAFF: 2, Access.ADMIN: 3}

RouteAccessTable = dict[AbstractRoute, Access]


@dataclass(frozen=True)
class Caller:
    """The authenticated principal of a request, already narrowed to one tenant."""

    kind: Literal["user", "api_key"]
    tenant_id: int | None
    role: Role | None
    user_id: int | None = None
    api_key_id: int | None = None
    session_id: int | None = None
    is_operator: bool = False
    email: str | None = None

    def require_tenant(self) -> int:
        if self.tenant_id is None:
            raise ApiError(403, "no_tenant", "you are not a member of any tenant")
        return self.tenant_id


CALLER = web.RequestKey("caller", Caller)


@dataclass(frozen=True)
class RouteSpec:
    method: str
    path: str
    handler: Handler
    access: Access
    name: str | None = None
    fast_path: bool = False  # answered before every middleware (see the module's docstring)


@dataclass(frozen=True)
class StaticSpec:
    prefix: str
    directory: Path
    name: str


def route(
    method: str,
    path: str,
    handler: Handler,
    *,
    access: Access,
    name: str | None = None,
    fast_path: bool = False,
) -> RouteSpec:
    return RouteSpec(method, path, handler, access, name, fast_path)


def register_routes(app: web.Application, specs: Iterable[RouteSpec | StaticSpec]) -> None:
    table = app.setdefault(ROUTE_ACCESS, {})
    fast = app.setdefault(FAST_PATH_ROUTES, set())
    for spec in specs:
        if isinstance(spec, StaticSpec):
            resource = app.router.add_static(spec.prefix, spec.directory, name=spec.name)
            for static_route in resource:
                table[static_route] = Access.PUBLIC
            continue
        added = app.router.add_route(spec.method, spec.path, spec.handler, name=spec.name)
        table[added] = spec.access
        if spec.fast_path:
            if spec.access is not Access.PUBLIC:
                raise RuntimeError(f"{spec.method} {spec.path}: only a public route can skip "
                                   "the middlewares (fast_path=True)")  # fmt: skip
            fast.add(added)


def check_route_table(app: web.Application) -> None:
    """Every route must have declared its access class: fail at start-up, not at request time."""
    table = app[ROUTE_ACCESS]
    missing = [
        f"{r.method} {r.resource.canonical if r.resource else '?'}"
        for r in app.router.routes()
        if r not in table
    ]
    if missing:
        raise RuntimeError("routes without an access class: " + ", ".join(missing))


def route_access(request: web.Request) -> Access | None:
    return request.app[ROUTE_ACCESS].get(request.match_info.route)


def is_api_request(request: web.Request) -> bool:
    return request.path.startswith("/api/") or request.path == "/api"


def unauthenticated(request: web.Request) -> web.StreamResponse:
    if is_api_request(request):
        raise ApiError(
            401,
            "unauthenticated",
            "sign in, or send 'Authorization: Bearer <api key>'",
            headers={"WWW-Authenticate": 'Bearer realm="smsapp"'},
        )
    target = request.path_qs if request.method == "GET" else "/admin/"
    raise web.HTTPFound(f"/login?next={quote(target, safe='')}")


def enforce(access: Access, caller: Caller | None, request: web.Request) -> None:
    """Raise unless `caller` may use a route of class `access`."""
    if access is Access.PUBLIC:
        return
    if caller is None:
        unauthenticated(request)
        return
    if access is Access.SELF:
        return
    if access is Access.OPERATOR:
        if not caller.is_operator:
            raise ApiError(403, "forbidden", "this needs a platform operator")
        return
    if caller.tenant_id is None or caller.role is None:
        raise ApiError(403, "no_tenant", "you are not a member of any tenant")
    if ROLE_RANK[caller.role] < REQUIRED_RANK[access]:
        raise ApiError(
            403, "forbidden", f"this needs the {access.value} role; you are {caller.role}"
        )
