"""Suppression rules: API (pack §17), the active list as the clock moves, the one-query lookup
the import uses, and the admin page."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aiohttp.test_utils import TestClient

from smsapp.clock import ManualClock
from smsapp.db import Sql
from smsapp.keys import DB
from smsapp.suppression import active_suppressed_numbers
from tests.conftest import SignIn, TenantFactory, TenantFixture

RULE_KEYS = {"id", "phone_e164", "contact_id", "kind", "reason", "expires_at", "created_at"}


async def add(
    client: TestClient[Any, Any], tenant: TenantFixture, body: dict[str, Any], role: str = "staff"
) -> Any:
    return await client.post("/api/suppression-rules", json=body, headers=tenant.auth(role))


async def active(client: TestClient[Any, Any], tenant: TenantFixture) -> list[dict[str, Any]]:
    response = await client.get("/api/suppression-rules", headers=tenant.auth("viewer"))
    assert response.status == 200
    body = await response.json()
    assert set(body) == {"suppression_rules", "total"}
    assert body["total"] == len(body["suppression_rules"])
    rules: list[dict[str, Any]] = body["suppression_rules"]
    return rules


async def test_it_adds_rules_and_lists_only_the_active_ones_as_the_clock_moves(
    client: TestClient[Any, Any], make_tenant: TenantFactory, clock: ManualClock
) -> None:
    tenant, other = await make_tenant("acme"), await make_tenant("other")
    response = await add(
        client,
        tenant,
        {
            "phone": "0412 345 678",
            "kind": "cooldown",
            "reason": "sent twice",
            "expires_at": "2026-01-05T01:00:00Z",
        },
    )
    assert response.status == 201
    hour = await response.json()
    assert hour == {
        "id": hour["id"],
        "phone_e164": "+61412345678",
        "contact_id": None,
        "kind": "cooldown",
        "reason": "sent twice",
        "expires_at": "2026-01-05T01:00:00Z",
        "created_at": "2026-01-05T00:00:00Z",
    }
    clock.advance(seconds=1)
    forever = await (await add(client, tenant, {"phone": "0413000111", "kind": "complaint"})).json()
    assert forever["expires_at"] is None and forever["reason"] is None
    clock.advance(seconds=1)
    two_days = await (
        await add(
            client,
            tenant,
            {"phone": "0499999999", "kind": "bounce", "expires_at": "2026-01-07T00:00:00+00:00"},
        )
    ).json()
    await add(client, other, {"phone": "0412345678", "kind": "manual"})

    listed = await active(client, tenant)
    assert [r["id"] for r in listed] == [two_days["id"], forever["id"], hour["id"]]
    assert all(set(r) == RULE_KEYS for r in listed)
    clock.set(clock.now().replace(hour=1, minute=0, second=0))  # the hour rule ends exactly now
    assert [r["id"] for r in await active(client, tenant)] == [two_days["id"], forever["id"]]
    clock.advance(days=2)
    assert [r["id"] for r in await active(client, tenant)] == [forever["id"]]
    paged = await client.get(
        "/api/suppression-rules?limit=1&offset=1", headers=tenant.auth("viewer")
    )
    assert (await paged.json())["suppression_rules"] == []


async def test_it_reads_an_expiry_without_zone_in_the_tenant_timezone(
    client: TestClient[Any, Any], make_tenant: TenantFactory
) -> None:
    tenant = await make_tenant("acme")  # Australia/Sydney: UTC+11 in January
    response = await add(
        client, tenant, {"phone": "0412345678", "kind": "manual", "expires_at": "2026-01-06T09:00"}
    )
    assert (await response.json())["expires_at"] == "2026-01-05T22:00:00Z"


async def test_it_refuses_bad_rules(
    client: TestClient[Any, Any], make_tenant: TenantFactory
) -> None:
    tenant = await make_tenant("acme")
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"phone": "0412345678", "kind": "forever"}, "bad_request", "kind"),
        ({"phone": "0412345678"}, "bad_request", "kind"),
        ({"phone": "12345", "kind": "manual"}, "invalid_phone", "phone"),
        ({"kind": "manual"}, "invalid_phone", "phone"),
        (
            {"phone": "0412345678", "kind": "manual", "expires_at": "2026-01-04T00:00:00Z"},
            "bad_request",
            "expires_at",
        ),
        (
            {"phone": "0412345678", "kind": "manual", "expires_at": "2026-01-05T00:00:00Z"},
            "bad_request",
            "expires_at",
        ),
        (
            {"phone": "0412345678", "kind": "manual", "expires_at": "soon"},
            "bad_request",
            "expires_at",
        ),
        ({"phone": "0412345678", "kind": "manual", "contact": 1}, "bad_request", "contact"),
    ]
    for body, code, field in cases:
        response = await add(client, tenant, body)
        assert response.status == 400, body
        error = (await response.json())["error"]
        assert (error["code"], error["field"]) == (code, field), body
    raw = await client.post(
        "/api/suppression-rules",
        data=b"{",
        headers={**tenant.auth("staff"), "Content-Type": "application/json"},
    )
    assert raw.status == 400 and (await raw.json())["error"]["code"] == "bad_json"
    assert (
        await add(client, tenant, {"phone": "0412345678", "kind": "manual"}, "viewer")
    ).status == 403
    assert await client.app[DB].val(Sql("SELECT count(*) FROM suppression_rules")) == 0


async def test_it_deletes_a_rule_of_the_tenant_only_with_an_audit_trail(
    client: TestClient[Any, Any], make_tenant: TenantFactory
) -> None:
    acme, other = await make_tenant("acme"), await make_tenant("other")
    mine = await (await add(client, acme, {"phone": "0412345678", "kind": "manual"})).json()
    theirs = await (await add(client, other, {"phone": "0412345678", "kind": "manual"})).json()
    assert (
        await client.delete(f"/api/suppression-rules/{theirs['id']}", headers=acme.auth("staff"))
    ).status == 404
    assert (
        await client.delete(f"/api/suppression-rules/{mine['id']}", headers=acme.auth("viewer"))
    ).status == 403
    deleted = await client.delete(
        f"/api/suppression-rules/{mine['id']}", headers=acme.auth("staff")
    )
    assert deleted.status == 200
    assert await deleted.json() == {"id": mine["id"], "deleted": True}
    again = await client.delete(f"/api/suppression-rules/{mine['id']}", headers=acme.auth("staff"))
    assert again.status == 404 and (await again.json())["error"]["code"] == "not_found"
    assert (
        await client.delete("/api/suppression-rules/abc", headers=acme.auth("staff"))
    ).status == 404
    assert [r["id"] for r in await active(client, other)] == [theirs["id"]]
    audit = await client.app[DB].all(
        Sql("SELECT action, target_id, details FROM audit_log WHERE tenant_id = :t ORDER BY id"),
        t=acme.id,
    )
    assert [(a["action"], a["target_id"]) for a in audit] == [
        ("suppression.add", str(mine["id"])),
        ("suppression.remove", str(mine["id"])),
    ]
    assert audit[0]["details"] == {"kind": "manual", "expires_at": None}


async def test_it_finds_the_suppressed_numbers_among_many_in_one_query(
    client: TestClient[Any, Any], make_tenant: TenantFactory, clock: ManualClock
) -> None:
    tenant, other = await make_tenant("acme"), await make_tenant("other")
    db, now = client.app[DB], clock.now()
    async with db.transaction() as tx:
        contact_id = await tx.val(
            Sql(
                "INSERT INTO contacts (tenant_id, phone_e164, created_at, updated_at)"
                " VALUES (:t, '+61413000111', :now, :now) RETURNING id"
            ),
            t=tenant.id,
            now=now,
        )
    insert_rule = Sql(
        "INSERT INTO suppression_rules (tenant_id, phone_e164, contact_id, kind, expires_at,"
        " created_at) VALUES (:t, :phone, :contact_id, :kind, :expires_at, :now)"
    )
    for t, phone, contact, expires_at in [
        (tenant.id, "+61412345678", None, None),  # by number, no expiry
        (tenant.id, None, contact_id, now + timedelta(hours=1)),  # by contact, one hour
        (tenant.id, "+61499999999", None, now - timedelta(seconds=1)),  # expired
        (tenant.id, "+61412000001", None, now + timedelta(days=1)),  # not asked about
        (other.id, "+61412000002", None, None),  # another tenant's
    ]:
        await db.run(
            insert_rule,
            t=t,
            phone=phone,
            contact_id=contact,
            kind="cooldown",
            expires_at=expires_at,
            now=now,
        )
    asked = ["+61412345678", "+61413000111", "+61499999999", "+61412000002", "+61400000000"]
    found = await active_suppressed_numbers(db, tenant.id, asked, now)
    assert found == {"+61412345678", "+61413000111"}
    later = await active_suppressed_numbers(db, tenant.id, asked, now + timedelta(hours=1))
    assert later == {"+61412345678"}
    assert await active_suppressed_numbers(db, tenant.id, [], now) == set()
    async with db.transaction() as tx:  # as the import calls it, inside its transaction
        inside = await active_suppressed_numbers(tx, tenant.id, asked, now)
    assert inside == found
    many = [f"+614{n:08d}" for n in range(5000)] + ["+61412345678"]
    assert await active_suppressed_numbers(db, tenant.id, many, now) == {"+61412345678"}


async def test_it_serves_the_suppression_page_to_viewers_and_its_forms_to_staff(
    client: TestClient[Any, Any], make_tenant: TenantFactory, sign_in: SignIn, clock: ManualClock
) -> None:
    tenant = await make_tenant("acme")
    viewer = await sign_in("v@example.com", tenant_id=tenant.id, role="viewer")
    staff = await sign_in("s@example.com", tenant_id=tenant.id, role="staff")
    page = await client.get("/admin/suppression", headers=viewer.headers())
    text = await page.text()
    assert page.status == 200 and "No active rules" in text
    assert 'action="/admin/suppression"' not in text  # no add form for viewers

    form = await (await client.get("/admin/suppression", headers=staff.headers())).text()
    assert 'action="/admin/suppression"' in form and f'value="{staff.csrf}"' in form
    added = await client.post(
        "/admin/suppression",
        data={
            "csrf_token": staff.csrf,
            "phone": "0412 345 678",
            "kind": "complaint",
            "reason": "rang to complain",
            "expires_at": "2026-01-06T09:00",
        },
        headers=staff.headers(),
        allow_redirects=False,
    )
    assert added.status == 303
    [rule] = await active(client, tenant)
    assert (rule["phone_e164"], rule["kind"], rule["expires_at"]) == (
        "+61412345678",
        "complaint",
        "2026-01-05T22:00:00Z",
    )
    no_expiry = await client.post(
        "/admin/suppression",
        data={
            "csrf_token": staff.csrf,
            "phone": "0413000111",
            "kind": "manual",
            "reason": "",
            "expires_at": "",
        },
        headers=staff.headers(),
        allow_redirects=False,
    )
    assert no_expiry.status == 303
    listed = await (await client.get("/admin/suppression", headers=viewer.headers())).text()
    assert "+61412345678" in listed and "rang to complain" in listed and "no expiry" in listed
    assert "/remove" not in listed  # viewers cannot remove

    invalid = await client.post(
        "/admin/suppression",
        data={
            "csrf_token": staff.csrf,
            "phone": "0412345679",
            "kind": "manual",
            "expires_at": "2026-01-01T00:00",
        },
        headers=staff.headers(),
    )
    assert invalid.status == 400
    text = await invalid.text()
    assert "expires_at must be in the future" in text and 'value="0412345679"' in text

    refused = await client.post(
        f"/admin/suppression/{rule['id']}/remove",
        data={"csrf_token": viewer.csrf},
        headers=viewer.headers(),
    )
    assert refused.status == 403
    removed = await client.post(
        f"/admin/suppression/{rule['id']}/remove",
        data={"csrf_token": staff.csrf},
        headers=staff.headers(),
        allow_redirects=False,
    )
    assert removed.status == 303
    assert [r["phone_e164"] for r in await active(client, tenant)] == ["+61413000111"]
    clock.advance(hours=6)  # a rule without expiry stays (within the session's idle time)
    assert (
        "+61413000111"
        in await (await client.get("/admin/suppression", headers=viewer.headers())).text()
    )
