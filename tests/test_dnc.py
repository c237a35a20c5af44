"""The do-not-contact list: API (pack §17), CSV export, the admin page, and the functions the
import and the send engine use."""

from __future__ import annotations

import csv
import io
from typing import Any

from aiohttp.test_utils import TestClient

from smsapp.clock import ManualClock
from smsapp.csv_safety import neutralise
from smsapp.db import Sql
from smsapp.dnc import add_to_dnc, numbers_on_dnc, remove_from_dnc
from smsapp.keys import DB
from tests.conftest import SignIn, TenantFactory, TenantFixture
from tests.support_audit import audit_entries

ENTRY_KEYS = {"id", "phone_e164", "source", "reason", "created_at"}


async def add(
    client: TestClient[Any, Any], tenant: TenantFixture, body: dict[str, Any], role: str = "staff"
) -> Any:
    return await client.post("/api/do-not-contact", json=body, headers=tenant.auth(role))


async def test_it_adds_a_number_normalised_and_idempotently(
    client: TestClient[Any, Any], make_tenant: TenantFactory, clock: ManualClock
) -> None:
    tenant = await make_tenant("acme")
    first = await add(client, tenant, {"phone": "0412 345 678", "reason": "asked by phone"})
    assert first.status == 201
    entry = await first.json()
    assert entry == {
        "id": entry["id"],
        "phone_e164": "+61412345678",
        "source": "api",
        "reason": "asked by phone",
        "created_at": "2026-01-05T00:00:00Z",
    }
    clock.advance(hours=1)
    again = await add(client, tenant, {"phone": "+61 412 345 678", "reason": "other"})
    assert again.status == 200
    assert await again.json() == entry  # the first entry, unchanged
    assert [
        (a["action"], a["target_id"], a["details"]) for a in await audit_entries(client, tenant.id)
    ] == [("dnc.add", "+61412345678", {"source": "api", "reason": "asked by phone"})]


async def test_it_records_a_signed_in_user_as_the_manual_source(
    client: TestClient[Any, Any], make_tenant: TenantFactory, sign_in: SignIn
) -> None:
    tenant = await make_tenant("acme")
    staff = await sign_in("s@example.com", tenant_id=tenant.id, role="staff")
    response = await client.post(
        "/api/do-not-contact", json={"phone": "0412345678"}, headers=staff.headers(unsafe=True)
    )
    assert response.status == 201
    assert (await response.json())["source"] == "manual"
    created_by = await client.app[DB].val(Sql("SELECT created_by FROM do_not_contact"))
    assert created_by == staff.user_id


async def test_it_refuses_an_invalid_number_or_body(
    client: TestClient[Any, Any], make_tenant: TenantFactory
) -> None:
    tenant = await make_tenant("acme")
    cases: list[tuple[dict[str, Any], str]] = [
        ({"phone": "12345"}, "invalid_phone"),
        ({"phone": "02 9876 5432"}, "invalid_phone"),
        ({}, "invalid_phone"),
        ({"phone": "0412345678", "reason": 5}, "bad_request"),
        ({"phone": "0412345678", "source": "stop_keyword"}, "bad_request"),
    ]
    for body, code in cases:
        response = await add(client, tenant, body)
        assert response.status == 400, body
        assert (await response.json())["error"]["code"] == code, body
    raw = await client.post(
        "/api/do-not-contact",
        data=b"phone=0412345678",
        headers={**tenant.auth("staff"), "Content-Type": "application/json"},
    )
    assert raw.status == 400 and (await raw.json())["error"]["code"] == "bad_json"
    assert (await add(client, tenant, {"phone": "0412345678"}, role="viewer")).status == 403
    assert await client.app[DB].val(Sql("SELECT count(*) FROM do_not_contact")) == 0


async def test_it_looks_up_a_number_in_the_tenant_only(
    client: TestClient[Any, Any], make_tenant: TenantFactory
) -> None:
    acme, other = await make_tenant("acme"), await make_tenant("other")
    entry = await (await add(client, acme, {"phone": "0412345678"})).json()
    await add(client, other, {"phone": "0499999999"})
    viewer = acme.auth("viewer")
    for path in ("%2B61412345678", "+61412345678", "0412345678", "0412%20345%20678"):
        response = await client.get(f"/api/do-not-contact/{path}", headers=viewer)
        assert response.status == 200, path
        body = await response.json()
        assert set(body) == ENTRY_KEYS and body == entry
    for path in ("+61413000111", "+61499999999", "rubbish", "999999"):
        response = await client.get(f"/api/do-not-contact/{path}", headers=viewer)
        assert response.status == 404, path
        assert (await response.json())["error"]["code"] == "not_found"


async def test_it_lets_only_admins_remove_a_number(
    client: TestClient[Any, Any], make_tenant: TenantFactory
) -> None:
    acme, other = await make_tenant("acme"), await make_tenant("other")
    await add(client, acme, {"phone": "0412345678", "reason": "STOP by phone"})
    await add(client, other, {"phone": "0499999999"})
    path = "/api/do-not-contact/%2B61412345678"
    for role in ("viewer", "staff"):
        response = await client.delete(path, headers=acme.auth(role))
        assert response.status == 403, role
    removed = await client.delete(path, headers=acme.auth("admin"))
    assert removed.status == 200
    assert await removed.json() == {"phone_e164": "+61412345678", "removed": True}
    assert (await client.get(path, headers=acme.auth("viewer"))).status == 404
    assert (await client.delete(path, headers=acme.auth("admin"))).status == 404
    theirs = await client.delete("/api/do-not-contact/%2B61499999999", headers=acme.auth("admin"))
    assert theirs.status == 404
    assert (
        await client.get("/api/do-not-contact/%2B61499999999", headers=other.auth("viewer"))
    ).status == 200
    actions = [(a["action"], a["details"]) for a in await audit_entries(client, acme.id)]
    assert actions == [
        ("dnc.add", {"source": "api", "reason": "STOP by phone"}),
        ("dnc.remove", {"source": "api", "reason": "STOP by phone"}),
    ]


async def test_it_lists_the_numbers_newest_first_in_pages(
    client: TestClient[Any, Any], make_tenant: TenantFactory, clock: ManualClock
) -> None:
    tenant, other = await make_tenant("acme"), await make_tenant("other")
    for phone in ("0412000001", "0412000002", "0412000003"):
        await add(client, tenant, {"phone": phone})
        clock.advance(minutes=1)
    await add(client, other, {"phone": "0499999999"})
    response = await client.get("/api/do-not-contact?limit=2", headers=tenant.auth("viewer"))
    body = await response.json()
    assert body["total"] == 3
    assert [e["phone_e164"] for e in body["do_not_contact"]] == ["+61412000003", "+61412000002"]
    assert all(set(e) == ENTRY_KEYS for e in body["do_not_contact"])
    rest = await (
        await client.get("/api/do-not-contact?limit=2&offset=2", headers=tenant.auth("viewer"))
    ).json()
    assert [e["phone_e164"] for e in rest["do_not_contact"]] == ["+61412000001"]


async def test_it_exports_the_list_as_csv_with_formula_cells_neutralised(
    client: TestClient[Any, Any], make_tenant: TenantFactory, clock: ManualClock
) -> None:
    tenant, other = await make_tenant("acme"), await make_tenant("other")
    reasons = ['=HYPERLINK("http://evil")', "+1+1", "-2", "@SUM(A1)", "\tx", "\rx", "plain, ok"]
    for i, reason in enumerate(reasons):
        # Straight through the domain function: the API trims the tab and CR cases away.
        async with client.app[DB].transaction() as tx:
            await add_to_dnc(
                tx,
                clock,
                tenant_id=tenant.id,
                phone_e164=f"+6141200000{i}",
                source="api",
                reason=reason,
                created_by=None,
            )
        clock.advance(minutes=1)
    await add(client, tenant, {"phone": "0412000009"})
    await add(client, other, {"phone": "0499999999", "reason": "theirs"})

    response = await client.get("/api/do-not-contact.csv", headers=tenant.auth("viewer"))
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(await response.text(), newline="")))
    assert rows[0] == ["phone_e164", "source", "reason", "created_at"]
    body = rows[1:]
    assert [r[0] for r in body] == [f"+6141200000{i}" for i in (0, 1, 2, 3, 4, 5, 6, 9)]
    assert [r[2] for r in body] == [
        '\'=HYPERLINK("http://evil")',
        "'+1+1",
        "'-2",
        "'@SUM(A1)",
        "'\tx",
        "'\rx",
        "plain, ok",
        "",
    ]
    assert {r[1] for r in body} == {"api"}
    assert body[0][3] == "2026-01-05T00:00:00Z"
    assert "+61499999999" not in await response.text()
    # The rule itself, as the import's rejected-rows export uses it.
    assert [neutralise(c) for c in ("=1", "+1", "-1", "@a", "\t", "\r", "a=1", "", " =1")] == [
        "'=1",
        "'+1",
        "'-1",
        "'@a",
        "'\t",
        "'\r",
        "a=1",
        "",
        " =1",
    ]


async def test_it_checks_many_numbers_against_the_list_in_one_call(
    client: TestClient[Any, Any], make_tenant: TenantFactory, clock: ManualClock
) -> None:
    tenant, other = await make_tenant("acme"), await make_tenant("other")
    db = client.app[DB]
    async with db.transaction() as tx:
        entry, created = await add_to_dnc(
            tx,
            clock,
            tenant_id=tenant.id,
            phone_e164="+61412345678",
            source="stop_keyword",
            reason=None,
            created_by=None,
        )
    assert created and entry["source"] == "stop_keyword"
    async with db.transaction() as tx:
        again, created = await add_to_dnc(
            tx,
            clock,
            tenant_id=tenant.id,
            phone_e164="+61412345678",
            source="manual",
            reason="x",
            created_by=None,
        )
        await add_to_dnc(
            tx,
            clock,
            tenant_id=other.id,
            phone_e164="+61413000111",
            source="api",
            reason=None,
            created_by=None,
        )
    assert not created and again["id"] == entry["id"] and again["source"] == "stop_keyword"
    asked = ["+61412345678", "+61413000111", "+61499999999"]
    assert await numbers_on_dnc(db, tenant_id=tenant.id, phones=asked) == {"+61412345678"}
    assert await numbers_on_dnc(db, tenant_id=tenant.id, phones=[]) == set()
    async with db.transaction() as tx:
        removed = await remove_from_dnc(tx, tenant_id=tenant.id, phone_e164="+61412345678")
        assert removed is not None and removed["id"] == entry["id"]
        assert await remove_from_dnc(tx, tenant_id=tenant.id, phone_e164="+61412345678") is None
    assert await numbers_on_dnc(db, tenant_id=tenant.id, phones=asked) == set()


async def test_it_serves_the_dnc_page_to_viewers_and_its_forms_to_staff_and_admins(
    client: TestClient[Any, Any], make_tenant: TenantFactory, sign_in: SignIn
) -> None:
    tenant = await make_tenant("acme")
    viewer = await sign_in("v@example.com", tenant_id=tenant.id, role="viewer")
    staff = await sign_in("s@example.com", tenant_id=tenant.id, role="staff")
    admin = await sign_in("a@example.com", tenant_id=tenant.id, role="admin")

    page = await client.get("/admin/do-not-contact", headers=viewer.headers())
    text = await page.text()
    assert page.status == 200
    assert "The list is empty" in text and 'href="/api/do-not-contact.csv"' in text
    assert 'action="/admin/do-not-contact"' in text  # the lookup form (GET)
    assert 'method="post" action="/admin/do-not-contact"' not in text  # no add form

    added = await client.post(
        "/admin/do-not-contact",
        data={"csrf_token": staff.csrf, "phone": "0412 345 678", "reason": "<i>rude</i>"},
        headers=staff.headers(),
        allow_redirects=False,
    )
    assert added.status == 303
    assert added.headers["Location"] == "/admin/do-not-contact?phone=%2B61412345678"
    entry = await (
        await client.get("/api/do-not-contact/%2B61412345678", headers=tenant.auth("viewer"))
    ).json()
    assert entry["source"] == "manual"

    invalid = await client.post(
        "/admin/do-not-contact",
        data={"csrf_token": staff.csrf, "phone": "12345", "reason": "kept"},
        headers=staff.headers(),
    )
    assert invalid.status == 400
    text = await invalid.text()
    assert "is not a valid phone number" in text and 'value="kept"' in text

    lookup = await client.get("/admin/do-not-contact?phone=0412345678", headers=viewer.headers())
    text = await lookup.text()
    assert "on the list" in text and "&lt;i&gt;rude&lt;/i&gt;" in text
    assert "/admin/do-not-contact/remove" not in text  # viewers cannot remove
    missing = await client.get("/admin/do-not-contact?phone=0499999999", headers=viewer.headers())
    assert "not on the list" in await missing.text()
    assert (
        "/admin/do-not-contact/remove"
        not in await (await client.get("/admin/do-not-contact", headers=staff.headers())).text()
    )

    refused = await client.post(
        "/admin/do-not-contact/remove",
        data={"csrf_token": staff.csrf, "phone": "+61412345678"},
        headers=staff.headers(),
    )
    assert refused.status == 403
    admin_page = await (await client.get("/admin/do-not-contact", headers=admin.headers())).text()
    assert "/admin/do-not-contact/remove" in admin_page
    removed = await client.post(
        "/admin/do-not-contact/remove",
        data={"csrf_token": admin.csrf, "phone": "+61412345678"},
        headers=admin.headers(),
        allow_redirects=False,
    )
    assert removed.status == 303
    assert await client.app[DB].val(Sql("SELECT count(*) FROM do_not_contact")) == 0
    gone = await client.post(
        "/admin/do-not-contact/remove",
        data={"csrf_token": admin.csrf, "phone": "+61412345678"},
        headers=admin.headers(),
    )
    assert gone.status == 404
    actions = [a["action"] for a in await audit_entries(client, tenant.id)]
    assert actions == ["dnc.add", "dnc.remove"]
