"""Who may call what. Every route declares one access class where it is registered (pack §2):

    public  anyone (health, login, /s/…, /u/…, webhooks, static files)
    self    any signed-in caller (logout, switch tenant, own profile, /api/me)
    viewer  a member of the current tenant with at least the viewer role
    staff   … at least staff
    admin   … admin
    operator  a platform operator (a flag on the user; creates tenants, sees the Ops page)

Handlers never check roles themselves: `middleware.access_control` enforces the declared class
before the handler runs, and `check_route_table` refuses to start an app with an undeclared
route.

The middlewares (smsapp/middleware.py) are declared here too: `register_routes` wraps each
route's handler in them as it adds the route, once, where aiohttp would on every request with
app-wide middlewares. A public route may be declared `fast_path=True` (the short-link redirect,
the app's hottest path) and is added bare: an aiohttp app with any middleware at all runs two
more coroutine layers on every request, 2 µs of the redirect's 25 (docs/click-integrity.md). So
that handler answers its own failures (no request log line, no error shape). Requests that no
route matches go to a last catch-all route (`no_route`), wrapped like the others, which gives
aiohttp's own answer: 405 with `Allow` when the path is some route's, else 404. Static files are
served by name from the files there at start-up (`static_files`).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Literal
from urllib.parse import quote

from aiohttp import web
from aiohttp.typedefs import Middleware
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
    fast_path: bool = False  # added without the middlewares (see the module's docstring)


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


def register_routes(
    app: web.Application,
    specs: Iterable[RouteSpec | StaticSpec],
    middlewares: Sequence[Middleware] = (),
) -> None:
    """Add `specs` to the app's router, each handler inside `middlewares` (the first outermost)
    unless the route is a fast-path one; then the catch-all route, inside them too."""
    table = app.setdefault(ROUTE_ACCESS, {})
    fast = app.setdefault(FAST_PATH_ROUTES, set())
    for spec in [*_expanded(specs), CATCH_ALL]:
        if spec.fast_path:
            if spec.access is not Access.PUBLIC:
                raise RuntimeError(f"{spec.method} {spec.path}: only a public route can skip "
                                   "the middlewares (fast_path=True)")  # fmt: skip
            handler = spec.handler
        else:
            handler = with_middlewares(spec.handler, middlewares)
        added = app.router.add_route(spec.method, spec.path, handler, name=spec.name)
        table[added] = spec.access
        if spec.fast_path:
            fast.add(added)


def _expanded(specs: Iterable[RouteSpec | StaticSpec]) -> Iterable[RouteSpec]:
    for spec in specs:
        if isinstance(spec, StaticSpec):
            handler = static_files(spec.directory)
            path = f"{spec.prefix}/{{filename:.+}}"
            yield route("GET", path, handler, access=Access.PUBLIC, name=spec.name)
            yield route("HEAD", path, handler, access=Access.PUBLIC)
        else:
            yield spec


def with_middlewares(handler: Handler, middlewares: Sequence[Middleware]) -> Handler:
    """`handler` inside `middlewares`, the first outermost (as aiohttp applies an app's)."""
    for middleware in reversed(middlewares):
        handler = functools.partial(middleware, handler=handler)
    return handler


def static_files(directory: Path) -> Handler:
    """A handler serving the files under `directory` at start-up by their names relative to it
    (`app.css`, `js/x.js`): nothing from the request is joined to a path, so nothing outside
    the directory can be reached. aiohttp's FileResponse answers (type, ETag, ranges, 304)."""
    files = {
        path.relative_to(directory).as_posix(): path
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }

    async def static_file(request: web.Request) -> web.StreamResponse:
        path = files.get(request.match_info["filename"])
        if path is None:
            raise web.HTTPNotFound()
        return web.FileResponse(path)

    return static_file


async def no_route(request: web.Request) -> web.StreamResponse:
    """The catch-all route: no other route matched. 405 with `Allow` when the path is some
    route's and the method is not, else 404, as aiohttp's router answers (the middlewares turn
    either into the error shape or page)."""
    allowed: set[str] = set()
    this = request.match_info.route.resource
    for resource in request.app.router.resources():
        if resource is not this:
            allowed |= (await resource.resolve(request))[1]
    if allowed:
        raise web.HTTPMethodNotAllowed(request.method, allowed)
    raise web.HTTPNotFound()


CATCH_ALL = RouteSpec("*", "/{tail:.*}", no_route, Access.PUBLIC)


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
