"""The admin shell: users, API keys, audit log, tenants, tenant switching."""

from __future__ import annotations

import re
from typing import Any

from aiohttp.test_utils import TestClient

from smsapp.clock import ManualClock
from smsapp.db import Sql
from smsapp.keys import DB
from tests.conftest import SignIn, TenantFactory
from tests.support_audit import audit_entries


async def test_it_shows_the_dashboard_with_the_tenant_name_and_user_menu(
    client: TestClient[Any, Any], make_tenant: TenantFactory, sign_in: SignIn
) -> None:
    tenant = await make_tenant("acme")
    user = await sign_in("v@example.com", tenant_id=tenant.id, role="viewer")
    page = await client.get("/admin/", headers=user.headers())
    text = await page.text()
    assert page.status == 200
    assert "Acme" in text and "v@example.com" in text and "Log out" in text
    # Viewers do not see admin-only navigation.
    assert 'href="/admin/users"' not in text


async def test_it_escapes_user_content_in_pages(
    client: TestClient[Any, Any], sign_in: SignIn, clock: ManualClock
) -> None:
    from smsapp.tenancy import create_tenant

    tenant_id = await create_tenant(
        client.app[DB], clock, name="<script>alert(1)</script>", slug="xss"
    )
    user = await sign_in("v@example.com", tenant_id=tenant_id, role="viewer")
    text = await (await client.get("/admin/", headers=user.headers())).text()
    assert "<script>alert(1)</script>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text


async def test_it_lets_an_admin_invite_change_and_deactivate_users_with_an_audit_trail(
    client: TestClient[Any, Any], make_tenant: TenantFactory, sign_in: SignIn
) -> None:
    tenant = await make_tenant("acme")
    admin = await sign_in("boss@example.com", tenant_id=tenant.id, role="admin")
    h = admin.headers(unsafe=True)
    invite = await client.post(
        "/admin/users",
        data={"email": "New@Example.com", "role": "viewer"},
        headers=h,
        allow_redirects=False,
    )
    assert invite.status == 303
    page = await (await client.get("/admin/users", headers=admin.headers())).text()
    assert "new@example.com" in page
    new_id = await client.app[DB].val(Sql("SELECT id FROM users WHERE email = 'new@example.com'"))
    assert (
        await client.post(
            f"/admin/users/{new_id}/role", data={"role": "staff"}, headers=h, allow_redirects=False
        )
    ).status == 303
    assert (
        await client.post(f"/admin/users/{new_id}/deactivate", headers=h, allow_redirects=False)
    ).status == 303
    member = await client.app[DB].one("admin.member", tenant_id=tenant.id, user_id=new_id)
    assert member == {
        "user_id": new_id,
        "email": "new@example.com",
        "role": "staff",
        "active": False,
    }
    entries = await audit_entries(client, tenant.id)
    assert [e["action"] for e in entries] == ["user.invite", "user.set_role", "user.deactivate"]
    assert all(e["user_id"] == admin.user_id and e["ip"] == "127.0.0.1" for e in entries)
    assert entries[1]["details"] == {"from": "viewer", "to": "staff"}
    assert entries[0]["target_id"] == str(new_id)


async def test_it_keeps_at_least_one_active_admin(
    client: TestClient[Any, Any], make_tenant: TenantFactory, sign_in: SignIn
) -> None:
    tenant = await make_tenant("acme")
    admin = await sign_in("boss@example.com", tenant_id=tenant.id, role="admin")
    h = admin.headers(unsafe=True)
    demote = await client.post(
        f"/admin/users/{admin.user_id}/role", data={"role": "staff"}, headers=h
    )
    assert demote.status == 409
    off = await client.post(f"/admin/users/{admin.user_id}/deactivate", headers=h)
    assert off.status == 409
    assert "at least one active admin" in await off.text()


async def test_it_shows_a_new_api_key_once_and_stores_only_its_hash(
    client: TestClient[Any, Any], make_tenant: TenantFactory, sign_in: SignIn
) -> None:
    tenant = await make_tenant("acme")
    admin = await sign_in("boss@example.com", tenant_id=tenant.id, role="admin")
    created = await client.post(
        "/admin/api-keys",
        data={"name": "zapier", "role": "staff"},
        headers=admin.headers(unsafe=True),
    )
    text = await created.text()
    match = re.search(r'<code class="secret">(sk_[A-Za-z0-9_-]+)</code>', text)
    assert match, text
    key = match.group(1)
    assert created.headers["Cache-Control"] == "no-store"
    assert key not in await (await client.get("/admin/api-keys", headers=admin.headers())).text()
    stored = await client.app[DB].all(Sql("SELECT key_hash FROM api_keys WHERE name = 'zapier'"))
    assert key not in str(stored)
    me = await (await client.get("/api/me", headers={"Authorization": f"Bearer {key}"})).json()
    assert me["role"] == "staff"

    key_id = await client.app[DB].val(Sql("SELECT id FROM api_keys WHERE name = 'zapier'"))
    revoked = await client.post(
        f"/admin/api-keys/{key_id}/revoke",
        headers=admin.headers(unsafe=True),
        allow_redirects=False,
    )
    assert revoked.status == 303
    assert (await client.get("/api/me", headers={"Authorization": f"Bearer {key}"})).status == 401
    actions = [e["action"] for e in await audit_entries(client, tenant.id)]
    assert actions == ["api_key.create", "api_key.revoke"]


async def test_it_records_actions_of_api_keys_as_the_key(
    client: TestClient[Any, Any], make_tenant: TenantFactory
) -> None:
    tenant = await make_tenant("acme")
    await client.post(
        "/admin/api-keys", data={"name": "k2", "role": "viewer"}, headers=tenant.auth("admin")
    )
    [entry] = await audit_entries(client, tenant.id)
    assert entry["user_id"] is None and entry["api_key_id"] is not None


async def test_it_lists_the_audit_log_with_filters(
    client: TestClient[Any, Any], make_tenant: TenantFactory, sign_in: SignIn, clock: ManualClock
) -> None:
    tenant = await make_tenant("acme")
    h = tenant.auth("admin")
    await client.post("/admin/api-keys", data={"name": "first", "role": "viewer"}, headers=h)
    clock.advance(days=2)
    await client.post("/admin/users", data={"email": "x@example.com", "role": "viewer"}, headers=h)
    viewer = await sign_in("v@example.com", tenant_id=tenant.id, role="viewer")

    page = await client.get("/admin/audit", headers=viewer.headers())
    text = await page.text()
    assert page.status == 200
    assert "api_key.create" in text and "user.invite" in text
    only_invites = await (
        await client.get("/admin/audit?action=user.invite", headers=viewer.headers())
    ).text()
    assert "user.invite" in only_invites and "name=first" not in only_invites
    by_date = await (
        await client.get("/admin/audit?until=2026-01-05", headers=viewer.headers())
    ).text()
    assert "name=first" in by_date and "email=x@example.com" not in by_date
    by_actor = await (
        await client.get("/admin/audit?actor=nobody@example.com", headers=viewer.headers())
    ).text()
    assert "Nothing recorded" in by_actor
    by_key = await (
        await client.get("/admin/audit?actor=admin key", headers=viewer.headers())
    ).text()
    assert "user.invite" in by_key
    bad = await client.get("/admin/audit?since=yesterday", headers=viewer.headers())
    assert bad.status == 400


async def test_it_never_shows_another_tenants_audit_entries(
    client: TestClient[Any, Any], make_tenant: TenantFactory, sign_in: SignIn
) -> None:
    acme, other = await make_tenant("acme"), await make_tenant("other")
    await client.post(
        "/admin/api-keys",
        data={"name": "secret-project", "role": "viewer"},
        headers=other.auth("admin"),
    )
    viewer = await sign_in("v@example.com", tenant_id=acme.id, role="viewer")
    assert (
        "secret-project"
        not in await (await client.get("/admin/audit", headers=viewer.headers())).text()
    )


async def test_it_lets_a_member_of_two_tenants_switch(
    client: TestClient[Any, Any], make_tenant: TenantFactory, sign_in: SignIn, clock: ManualClock
) -> None:
    from smsapp.tenancy import set_membership

    acme, other = await make_tenant("acme"), await make_tenant("other")
    user = await sign_in("both@example.com", tenant_id=acme.id, role="viewer")
    await set_membership(
        client.app[DB], clock, user_id=user.user_id, tenant_id=other.id, role="admin"
    )
    page = await (await client.get("/admin/", headers=user.headers())).text()
    assert "Switch" in page
    response = await client.post(
        "/switch-tenant",
        data={"tenant_id": str(other.id)},
        headers=user.headers(unsafe=True),
        allow_redirects=False,
    )
    assert response.status == 303
    me = await (await client.get("/api/me", headers=user.headers())).json()
    assert me["tenant"]["slug"] == "other" and me["role"] == "admin"


async def test_it_lets_an_operator_create_a_tenant_with_its_first_admin(
    client: TestClient[Any, Any], sign_in: SignIn
) -> None:
    operator = await sign_in("op@example.com", operator=True)
    response = await client.post(
        "/admin/tenants",
        data={"name": "Beta Pty", "slug": "beta", "admin_email": "b@example.com"},
        headers=operator.headers(unsafe=True),
        allow_redirects=False,
    )
    assert response.status == 303
    page = await (await client.get("/admin/tenants", headers=operator.headers())).text()
    assert "Beta Pty" in page
    row = await client.app[DB].one(
        Sql(
            "SELECT m.role FROM memberships m JOIN users u ON u.id = m.user_id "
            "JOIN tenants t ON t.id = m.tenant_id "
            "WHERE u.email = 'b@example.com' AND t.slug = 'beta'"
        )
    )
    assert row == {"role": "admin"}
    duplicate = await client.post(
        "/admin/tenants",
        data={"name": "Again", "slug": "beta"},
        headers=operator.headers(unsafe=True),
    )
    assert duplicate.status == 400
    assert "already exists" in await duplicate.text()
