"""Sessions and CSRF (pack §14), with time injected."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import DummyCookieJar
from aiohttp.test_utils import TestClient

from smsapp.app import create_app
from smsapp.clock import ManualClock
from smsapp.config import DatabaseUrl
from smsapp.db import Sql
from smsapp.keys import CLOCK, DB, SETTINGS
from smsapp.magic_links import create_login_link
from smsapp.sessions import ABSOLUTE_TTL, IDLE_TTL
from smsapp.tenancy import create_tenant, ensure_user, set_membership
from tests.conftest import SignIn, TenantFactory, make_settings


async def login(client: TestClient[Any, Any], user_id: int, cookie: str | None = None) -> Any:
    """Sign in through the real confirm endpoint, optionally from an existing session."""
    link = await create_login_link(
        client.app[DB], client.app[CLOCK], client.app[SETTINGS], user_id=user_id, ip=None
    )
    headers = {"Cookie": f"smsapp_session={cookie}"} if cookie else {}
    return await client.post(
        f"/login/confirm/{link.rsplit('/', 1)[1]}", headers=headers, allow_redirects=False
    )


@pytest.fixture
async def user_id(client: TestClient[Any, Any], clock: ManualClock) -> int:
    db = client.app[DB]
    tenant_id = await create_tenant(db, clock, name="Acme", slug="acme")
    uid = await ensure_user(db, clock, "s@example.com")
    await set_membership(db, clock, user_id=uid, tenant_id=tenant_id, role="staff")
    return uid


async def test_it_sets_a_httponly_lax_cookie_without_secure_over_http(
    client: TestClient[Any, Any], user_id: int
) -> None:
    response = await login(client, user_id)
    morsel = response.cookies["smsapp_session"]
    assert morsel["httponly"] is True
    assert morsel["samesite"] == "Lax"
    assert morsel["path"] == "/"
    assert not morsel["secure"]
    assert int(morsel["max-age"]) == int(ABSOLUTE_TTL.total_seconds())


async def test_it_marks_the_cookie_secure_when_the_public_url_is_https(
    aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]],
    database_url: DatabaseUrl,
    tmp_path: Path,
    clock: ManualClock,
) -> None:
    settings = make_settings(
        database_url, tmp_path / "data", PUBLIC_BASE_URL="https://sms.example.com"
    )
    client = await aiohttp_client(
        create_app(settings, clock=clock, run_background=False), cookie_jar=DummyCookieJar()
    )
    db = client.app[DB]
    uid = await ensure_user(db, clock, "s@example.com")
    response = await login(client, uid)
    assert response.cookies["smsapp_session"]["secure"] is True


async def test_it_stores_only_the_hash_of_the_session_token(
    client: TestClient[Any, Any], user_id: int
) -> None:
    response = await login(client, user_id)
    token = response.cookies["smsapp_session"].value
    rows = await client.app[DB].all(Sql("SELECT token_hash FROM sessions"))
    assert len(rows) == 1
    assert rows[0]["token_hash"] != token
    assert len(rows[0]["token_hash"]) == 64


async def test_it_rotates_the_session_at_login(client: TestClient[Any, Any], user_id: int) -> None:
    first = (await login(client, user_id)).cookies["smsapp_session"].value
    second = (await login(client, user_id, cookie=first)).cookies["smsapp_session"].value
    assert first != second
    old = await client.get("/api/me", headers={"Cookie": f"smsapp_session={first}"})
    assert old.status == 401
    new = await client.get("/api/me", headers={"Cookie": f"smsapp_session={second}"})
    assert new.status == 200
    assert await client.app[DB].val(Sql("SELECT count(*) FROM sessions")) == 1


async def test_it_expires_a_session_idle_for_12_hours(
    client: TestClient[Any, Any], user_id: int, clock: ManualClock
) -> None:
    cookie = {
        "Cookie": f"smsapp_session={(await login(client, user_id)).cookies['smsapp_session'].value}"
    }
    clock.advance(IDLE_TTL - IDLE_TTL / 12)
    assert (await client.get("/api/me", headers=cookie)).status == 200  # activity resets idleness
    clock.advance(IDLE_TTL - IDLE_TTL / 12)
    assert (await client.get("/api/me", headers=cookie)).status == 200
    clock.advance(IDLE_TTL)
    assert (await client.get("/api/me", headers=cookie)).status == 401
    assert await client.app[DB].val(Sql("SELECT count(*) FROM sessions")) == 0


async def test_it_expires_an_active_session_after_7_days(
    client: TestClient[Any, Any], user_id: int, clock: ManualClock
) -> None:
    cookie = {
        "Cookie": f"smsapp_session={(await login(client, user_id)).cookies['smsapp_session'].value}"
    }
    elapsed = 0
    while elapsed + 6 < ABSOLUTE_TTL.total_seconds() / 3600:
        clock.advance(hours=6)
        elapsed += 6
        assert (await client.get("/api/me", headers=cookie)).status == 200, elapsed
    clock.set(clock.now() + (ABSOLUTE_TTL - timedelta(hours=elapsed)))
    assert (await client.get("/api/me", headers=cookie)).status == 401


async def test_it_deletes_the_session_row_at_logout(
    client: TestClient[Any, Any], sign_in: SignIn, make_tenant: TenantFactory
) -> None:
    tenant = await make_tenant("acme")
    user = await sign_in("v@example.com", tenant_id=tenant.id, role="viewer")
    response = await client.post(
        "/logout", headers=user.headers(unsafe=True), allow_redirects=False
    )
    assert response.status == 303
    assert response.headers["Location"] == "/login"
    assert response.cookies["smsapp_session"].value == ""
    assert await client.app[DB].val(Sql("SELECT count(*) FROM sessions")) == 0
    assert (await client.get("/api/me", headers=user.headers())).status == 401


async def test_it_ignores_an_unknown_session_cookie(client: TestClient[Any, Any]) -> None:
    response = await client.get("/api/me", headers={"Cookie": "smsapp_session=forged"})
    assert response.status == 401
    page = await client.get(
        "/admin/", headers={"Cookie": "smsapp_session=forged"}, allow_redirects=False
    )
    assert page.status == 302


async def test_it_refuses_a_deactivated_member_their_tenant(
    client: TestClient[Any, Any], sign_in: SignIn, make_tenant: TenantFactory, clock: ManualClock
) -> None:
    tenant = await make_tenant("acme")
    user = await sign_in("v@example.com", tenant_id=tenant.id, role="staff")
    await client.app[DB].run(
        Sql("UPDATE memberships SET active = FALSE WHERE user_id = :u"), u=user.user_id
    )
    body = await (await client.get("/api/me", headers=user.headers())).json()
    assert body["role"] is None and body["tenant"] is None


# --- CSRF ----------------------------------------------------------------------------------


async def test_it_refuses_an_unsafe_cookie_request_without_the_csrf_token(
    client: TestClient[Any, Any], sign_in: SignIn, make_tenant: TenantFactory
) -> None:
    tenant = await make_tenant("acme")
    user = await sign_in("a@example.com", tenant_id=tenant.id, role="admin")
    for headers, data in [
        (user.headers(), {}),
        (user.headers(), {"csrf_token": "0" * 64}),
        ({**user.headers(), "X-CSRF-Token": "wrong"}, {}),
    ]:
        page = await client.post(
            "/admin/api-keys", headers=headers, data={"name": "x", "role": "viewer", **data}
        )
        assert page.status == 403
        assert "CSRF" in await page.text()
        api = await client.post(
            "/logout",
            headers={**headers, "Accept": "application/json"},
            data=data,
            allow_redirects=False,
        )
        assert api.status == 403
    assert await client.app[DB].val(Sql("SELECT count(*) FROM api_keys WHERE name = 'x'")) == 0


async def test_it_accepts_the_csrf_token_as_form_field_or_header(
    client: TestClient[Any, Any], sign_in: SignIn, make_tenant: TenantFactory
) -> None:
    tenant = await make_tenant("acme")
    user = await sign_in("a@example.com", tenant_id=tenant.id, role="admin")
    by_field = await client.post(
        "/admin/api-keys",
        headers=user.headers(),
        data={"name": "one", "role": "viewer", "csrf_token": user.csrf},
    )
    assert by_field.status == 200
    by_header = await client.post(
        "/admin/api-keys", headers=user.headers(unsafe=True), data={"name": "two", "role": "viewer"}
    )
    assert by_header.status == 200


async def test_it_gives_each_session_its_own_csrf_token(
    client: TestClient[Any, Any], sign_in: SignIn, make_tenant: TenantFactory
) -> None:
    tenant = await make_tenant("acme")
    first = await sign_in("a@example.com", tenant_id=tenant.id, role="admin")
    second = await sign_in("b@example.com", tenant_id=tenant.id, role="admin")
    assert first.csrf != second.csrf
    response = await client.post(
        "/admin/api-keys",
        data={"name": "x", "role": "viewer"},
        headers={**first.headers(), "X-CSRF-Token": second.csrf},
    )
    assert response.status == 403


async def test_it_exempts_bearer_api_keys_from_csrf(
    client: TestClient[Any, Any], make_tenant: TenantFactory
) -> None:
    tenant = await make_tenant("acme")
    response = await client.post(
        "/admin/api-keys", headers=tenant.auth("admin"), data={"name": "machine", "role": "viewer"}
    )
    assert response.status == 200
