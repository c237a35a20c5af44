"""The access classes of pack §2, checked over every route the router knows, so that routes
added later are covered without touching this file (except the public list, on purpose)."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from smsapp.access import Access
from smsapp.app import create_app
from smsapp.config import Settings
from smsapp.keys import ROUTE_ACCESS
from tests.conftest import SignIn, TenantFactory

# Pack §2: health, metrics, login and link confirmation, /s/…, /u/…, robots.txt, webhooks,
# static files, the short host's root. Adding a public route means adding it here, knowingly.
EXPECTED_PUBLIC = {
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/login"),
    ("POST", "/login"),
    ("GET", "/login/confirm/{token}"),
    ("POST", "/login/confirm/{token}"),
    ("GET", "/static/{filename}"),
    ("HEAD", "/static/{filename}"),
    ("GET", "/s/{token}"),
    ("HEAD", "/s/{token}"),
    ("GET", "/robots.txt"),
    ("POST", "/webhooks/twilio/status"),
    ("POST", "/webhooks/twilio/inbound"),
    ("POST", "/webhooks/sandbox/status"),
    ("POST", "/webhooks/sandbox/inbound"),
    ("GET", "/u/{token}"),
    ("POST", "/u/{token}"),
    ("*", "/{tail}"),  # the catch-all: answers only 404 or 405 (smsapp/access.py)
}
PUBLIC_PATHS = re.compile(
    r"^(/healthz|/readyz|/metrics|/login(/.*)?|/s/.*|/u/.*|/robots\.txt|/webhooks/.*|/static/.*"
    r"|/\{tail\}|/)$"
)
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


@dataclass(frozen=True)
class Endpoint:
    method: str
    template: str
    access: Access

    @property
    def url(self) -> str:
        """The path with every {param} filled with a plausible value that matches nothing."""
        if self.template == "/static/{filename}":
            return "/static/app.css"
        return re.sub(r"\{[^}]+\}", "999999", self.template)

    @property
    def is_api(self) -> bool:
        return self.template.startswith("/api/")

    def __str__(self) -> str:
        return f"{self.method} {self.template} [{self.access.value}]"


def endpoints(settings: Settings) -> list[Endpoint]:
    app = create_app(settings)
    found = []
    for route, access in app[ROUTE_ACCESS].items():
        assert route.resource is not None
        found.append(Endpoint(route.method, route.resource.canonical, access))
    assert len(found) == len(list(app.router.routes())), "a route has no access class"
    return sorted(found, key=str)


def of_class(settings: Settings, *classes: Access) -> list[Endpoint]:
    return [e for e in endpoints(settings) if e.access in classes]


async def call(client: TestClient[Any, Any], endpoint: Endpoint, headers: dict[str, str]) -> Any:
    kwargs: dict[str, Any] = {"headers": headers, "allow_redirects": False}
    if endpoint.method in UNSAFE:
        kwargs["data"] = {} if not endpoint.is_api else None
        if endpoint.is_api:
            kwargs["json"] = {}
            del kwargs["data"]
    return await client.request(endpoint.method, endpoint.url, **kwargs)


def test_it_declares_exactly_the_public_routes_of_the_pack(settings: Settings) -> None:
    public = {(e.method, e.template) for e in of_class(settings, Access.PUBLIC)}
    assert public == EXPECTED_PUBLIC
    for _, path in public:
        assert PUBLIC_PATHS.match(path), f"{path} is not a kind of route pack §2 makes public"


def test_only_the_redirect_skips_the_middlewares_and_only_a_public_route_may(
    settings: Settings,
) -> None:
    from aiohttp import web

    from smsapp.access import register_routes, route
    from smsapp.keys import FAST_PATH_ROUTES

    app = create_app(settings)
    fast = {(r.method, r.resource.canonical) for r in app[FAST_PATH_ROUTES] if r.resource}
    assert fast == {("GET", "/s/{token}"), ("HEAD", "/s/{token}")}

    async def handler(request: Any) -> Any:
        raise AssertionError("never called")

    with pytest.raises(RuntimeError, match="only a public route"):
        register_routes(
            web.Application(),
            [route("GET", "/x", handler, access=Access.VIEWER, fast_path=True)],
        )


def test_it_refuses_to_build_an_app_with_a_route_lacking_an_access_class(
    settings: Settings,
) -> None:
    from smsapp.access import check_route_table

    app = create_app(settings)

    async def sneaky(request: Any) -> Any:
        raise AssertionError("never called")

    app.router.add_get("/sneaky", sneaky)
    with pytest.raises(RuntimeError, match="/sneaky"):
        check_route_table(app)


async def test_it_refuses_anonymous_callers_on_every_non_public_route(
    client: TestClient[Any, Any], settings: Settings
) -> None:
    checked = 0
    for endpoint in endpoints(settings):
        if endpoint.access is Access.PUBLIC:
            continue
        response = await call(client, endpoint, {})
        if endpoint.is_api:
            assert response.status == 401, endpoint
            body = await response.json()
            assert body["error"]["code"] == "unauthenticated", endpoint
        else:
            assert response.status == 302, endpoint
            assert response.headers["Location"].startswith("/login?next="), endpoint
        assert "X-Request-ID" in response.headers, endpoint  # inside the middlewares
        checked += 1
    assert checked >= 10


def test_it_has_no_app_wide_middlewares_and_wraps_every_route_but_the_fast_path_ones(
    settings: Settings,
) -> None:
    """The middlewares are applied by the route table, once per route (smsapp/access.py)."""
    from smsapp.keys import FAST_PATH_ROUTES

    app = create_app(settings)
    assert list(app.middlewares) == []
    for route in app.router.routes():
        wrapped = isinstance(route.handler, functools.partial)
        assert wrapped is (route not in app[FAST_PATH_ROUTES]), route


async def test_it_answers_404_and_405_for_pages_as_the_router_did_inside_the_middlewares(
    client: TestClient[Any, Any],
) -> None:
    missing = await client.get("/no/such/page", allow_redirects=False)
    assert missing.status == 404 and "X-Request-ID" in missing.headers
    assert "text/html" in missing.headers["Content-Type"]
    wrong = await client.put("/login", allow_redirects=False)
    assert wrong.status == 405 and "X-Request-ID" in wrong.headers
    assert set(wrong.headers["Allow"].split(",")) == {"GET", "POST"}
    assert "text/html" in wrong.headers["Content-Type"]
    api = await client.post("/api/short-links/Abcdefgh12", allow_redirects=False)
    assert api.status == 405 and api.headers["Allow"] == "GET"
    assert (await api.json())["error"]["code"] == "method_not_allowed"
    # The redirect's path with another method: 405 too, though the redirect itself is bare.
    post = await client.post("/s/Abcdefgh12", allow_redirects=False)
    assert post.status == 405 and set(post.headers["Allow"].split(",")) == {"GET", "HEAD"}


async def test_it_serves_the_static_files_by_name_and_nothing_else_under_static(
    client: TestClient[Any, Any],
) -> None:
    css = await client.get("/static/app.css")
    assert css.status == 200 and css.headers["Content-Type"].startswith("text/css")
    assert "ETag" in css.headers and "X-Request-ID" in css.headers
    same = await client.get("/static/app.css", headers={"If-None-Match": css.headers["ETag"]})
    assert same.status == 304
    head = await client.head("/static/campaign.js")
    assert head.status == 200 and "javascript" in head.headers["Content-Type"]
    for path in ("/static/nope.css", "/static/..%2Fpages.py", "/static/%2E%2E/app.py",
                 "/static//app.css", "/static/"):  # fmt: skip
        response = await client.get(path, allow_redirects=False)
        assert response.status == 404, path


async def test_it_refuses_a_bad_or_revoked_api_key_everywhere_but_public_routes(
    client: TestClient[Any, Any], settings: Settings
) -> None:
    for endpoint in of_class(settings, Access.SELF, Access.VIEWER, Access.STAFF, Access.ADMIN):
        for header in ("Bearer sk_forged", "Basic abc", "Bearer "):
            response = await call(client, endpoint, {"Authorization": header})
            assert response.status == 401, (endpoint, header)


ROLE_REFUSED = {
    Access.STAFF: ["viewer"],
    Access.ADMIN: ["viewer", "staff"],
    Access.VIEWER: [],
    Access.SELF: [],
}


@pytest.mark.parametrize("principal", ["session", "api_key"])
async def test_it_refuses_roles_below_the_class_of_each_route(
    client: TestClient[Any, Any],
    settings: Settings,
    make_tenant: TenantFactory,
    sign_in: SignIn,
    principal: str,
) -> None:
    tenant = await make_tenant("acme")
    checked = 0
    for endpoint in of_class(settings, Access.VIEWER, Access.STAFF, Access.ADMIN, Access.SELF):
        for role in ("viewer", "staff", "admin"):
            if principal == "api_key":
                headers = tenant.auth(role)
            else:
                user = await sign_in(f"{role}{checked}@example.com", tenant_id=tenant.id, role=role)
                headers = user.headers(unsafe=True)
            response = await call(client, endpoint, headers)
            if role in ROLE_REFUSED[endpoint.access]:
                assert response.status == 403, (endpoint, role, principal)
                if endpoint.is_api:
                    assert (await response.json())["error"]["code"] == "forbidden"
            else:
                assert response.status not in (401, 403), (endpoint, role, principal)
            checked += 1
    assert checked > 20


async def test_it_serves_self_routes_to_every_signed_in_role(
    client: TestClient[Any, Any], settings: Settings, make_tenant: TenantFactory, sign_in: SignIn
) -> None:
    tenant = await make_tenant("acme")
    self_routes = of_class(settings, Access.SELF)
    assert {("POST", "/logout"), ("POST", "/switch-tenant")} <= {
        (e.method, e.template) for e in self_routes
    }
    for endpoint in self_routes:
        for role in ("viewer", "staff", "admin", None):
            user = await sign_in(f"self-{role}@example.com", tenant_id=tenant.id, role=role)
            response = await call(client, endpoint, user.headers(unsafe=True))
            assert response.status not in (401, 403), (endpoint, role)


async def test_it_refuses_operator_routes_to_a_tenant_admin(
    client: TestClient[Any, Any], settings: Settings, make_tenant: TenantFactory, sign_in: SignIn
) -> None:
    tenant = await make_tenant("acme")
    admin = await sign_in("admin@example.com", tenant_id=tenant.id, role="admin")
    operator = await sign_in("op@example.com", operator=True)
    operator_routes = of_class(settings, Access.OPERATOR)
    assert operator_routes
    for endpoint in operator_routes:
        assert (await call(client, endpoint, admin.headers(unsafe=True))).status == 403
        assert (await call(client, endpoint, tenant.auth("admin"))).status == 403
        assert (await call(client, endpoint, operator.headers(unsafe=True))).status not in (
            401,
            403,
        )


async def test_it_refuses_tenant_routes_to_a_user_without_a_tenant(
    client: TestClient[Any, Any], settings: Settings, sign_in: SignIn
) -> None:
    loner = await sign_in("loner@example.com")
    for endpoint in of_class(settings, Access.VIEWER, Access.STAFF, Access.ADMIN):
        response = await call(client, endpoint, loner.headers(unsafe=True))
        assert response.status == 403, endpoint


async def test_it_answers_api_me_for_a_key_and_for_a_session(
    client: TestClient[Any, Any], make_tenant: TenantFactory, sign_in: SignIn
) -> None:
    tenant = await make_tenant("acme")
    by_key = await (await client.get("/api/me", headers=tenant.auth("staff"))).json()
    assert by_key["role"] == "staff"
    assert by_key["tenant"]["id"] == tenant.id
    assert by_key["tenant"]["slug"] == "acme"
    assert by_key["kind"] == "api_key"
    user = await sign_in("v@example.com", tenant_id=tenant.id, role="viewer")
    by_session = await (await client.get("/api/me", headers=user.headers())).json()
    assert by_session["role"] == "viewer"
    assert by_session["user"]["email"] == "v@example.com"


async def test_it_answers_404_for_another_tenants_objects(
    client: TestClient[Any, Any], make_tenant: TenantFactory, sign_in: SignIn
) -> None:
    from smsapp.keys import DB

    acme, other = await make_tenant("acme"), await make_tenant("other")
    acme_admin = await sign_in("a@example.com", tenant_id=acme.id, role="admin")
    other_admin = await sign_in("o@example.com", tenant_id=other.id, role="admin")
    other_key_id = await client.app[DB].val(
        "admin.api_keys", tenant_id=other.id
    )  # first key of the other tenant
    h = acme_admin.headers(unsafe=True)
    for path, data in [
        (f"/admin/users/{other_admin.user_id}/role", {"role": "viewer"}),
        (f"/admin/users/{other_admin.user_id}/deactivate", {}),
        (f"/admin/api-keys/{other_key_id}/revoke", {}),
        ("/switch-tenant", {"tenant_id": str(other.id)}),
    ]:
        response = await client.post(path, data=data, headers=h, allow_redirects=False)
        assert response.status == 404, path
    # Nothing changed on the other side.
    keys = await client.app[DB].all("admin.api_keys", tenant_id=other.id)
    assert all(k["revoked_at"] is None for k in keys)
    member = await client.app[DB].one(
        "admin.member", tenant_id=other.id, user_id=other_admin.user_id
    )
    assert member is not None and member["role"] == "admin" and member["active"]


async def test_it_answers_unknown_api_paths_with_the_json_error_shape(
    client: TestClient[Any, Any], make_tenant: TenantFactory
) -> None:
    tenant = await make_tenant("acme")
    response = await client.get("/api/no-such-thing", headers=tenant.auth("admin"))
    assert response.status == 404
    assert (await response.json())["error"]["code"] == "not_found"
    response = await client.delete("/api/me", headers=tenant.auth("admin"))
    assert response.status == 405
    assert (await response.json())["error"]["code"] == "method_not_allowed"
