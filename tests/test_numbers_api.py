"""Sending numbers and sender IDs (pack §3, §13, §17): the API, its validation, warm-up,
tenancy (409 for a number another tenant holds, 404 for its id) and the numbers page."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from smsapp.clock import ManualClock
from smsapp.db import Sql
from smsapp.keys import DB
from smsapp.numbers import add_sending_number, warmup_allowance
from tests.conftest import SignIn, TenantFactory, TenantFixture
from tests.support_audit import audit_entries

NUMBER_KEYS = {
    "id",
    "phone_e164",
    "kind",
    "registered",
    "provider",
    "warmup_started_on",
    "daily_cap",
    "per_minute_limit",
    "warmup_limit_today",
    "active",
    "created_at",
    "updated_at",
}


async def add(
    client: TestClient[Any, Any], tenant: TenantFixture, body: dict[str, Any], role: str = "admin"
) -> Any:
    return await client.post("/api/sending-numbers", json=body, headers=tenant.auth(role))


async def added(client: TestClient[Any, Any], tenant: TenantFixture, **body: Any) -> Any:
    response = await add(client, tenant, body)
    assert response.status == 201, await response.text()
    return await response.json()


async def patch(
    client: TestClient[Any, Any],
    tenant: TenantFixture,
    number_id: int,
    body: dict[str, Any],
    role: str = "admin",
) -> Any:
    return await client.patch(
        f"/api/sending-numbers/{number_id}", json=body, headers=tenant.auth(role)
    )


async def listed(client: TestClient[Any, Any], tenant: TenantFixture) -> list[dict[str, Any]]:
    response = await client.get("/api/sending-numbers", headers=tenant.auth("viewer"))
    assert response.status == 200
    body = await response.json()
    assert set(body) == {"sending_numbers"}
    numbers: list[dict[str, Any]] = body["sending_numbers"]
    return numbers


async def number_count(client: TestClient[Any, Any]) -> int:
    return int(await client.app[DB].val(Sql("SELECT count(*) FROM sending_numbers")))


# --- API -----------------------------------------------------------------------------------


async def test_it_adds_a_phone_number_warming_up_from_the_tenants_today(
    client: TestClient[Any, Any], make_tenant: TenantFactory, clock: ManualClock
) -> None:
    tenant = await make_tenant("acme")
    assert await listed(client, tenant) == []
    clock.set(datetime(2026, 1, 5, 14, 0, tzinfo=UTC))  # 01:00 on 6 January in Sydney
    number = await added(client, tenant, phone="0412 345 678")
    assert set(number) == NUMBER_KEYS
    assert number == {
        "id": number["id"],
        "phone_e164": "+61412345678",
        "kind": "phone",
        "registered": False,
        "provider": "sandbox",
        "warmup_started_on": "2026-01-06",
        "daily_cap": 10_000,
        "per_minute_limit": 60,
        "warmup_limit_today": 200,
        "active": True,
        "created_at": "2026-01-05T14:00:00Z",
        "updated_at": "2026-01-05T14:00:00Z",
    }
    assert await listed(client, tenant) == [number]
    shown = await client.get(f"/api/sending-numbers/{number['id']}", headers=tenant.auth("viewer"))
    assert await shown.json() == number
    [entry] = await audit_entries(client, tenant.id)
    assert entry["action"] == "sending_number.add"
    assert entry["target_id"] == str(number["id"])
    assert entry["details"]["phone_e164"] == "+61412345678"


async def test_it_adds_a_sender_id_and_other_fields_in_one_call(
    client: TestClient[Any, Any], make_tenant: TenantFactory
) -> None:
    tenant = await make_tenant("acme")
    sender = await added(
        client,
        tenant,
        sender_id="  Acme   Shop ",
        provider="twilio",
        daily_cap=500,
        registered=True,
        warmup_started_on=None,
    )
    assert (sender["phone_e164"], sender["kind"], sender["provider"]) == (
        "Acme Shop",
        "alphanumeric",
        "twilio",
    )
    assert sender["registered"] is True and sender["daily_cap"] == 500
    assert sender["warmup_started_on"] is None and sender["warmup_limit_today"] == 500
    # A bad extra field refuses the whole call: nothing is added.
    response = await add(client, tenant, {"phone": "0412345678", "daily_cap": 0})
    assert response.status == 400
    assert (await response.json())["error"]["field"] == "daily_cap"
    assert await number_count(client) == 1


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({"phone": "12345"}, "phone", "invalid_phone"),
        ({"phone": "not a number"}, "phone", "invalid_phone"),
        ({"phone": "02 9876 5432"}, "phone", "invalid_phone"),  # a landline cannot send SMS
        ({"phone": 412345678}, "phone", "invalid_phone"),
        ({"sender_id": "TwelveChars1"}, "sender_id", "invalid_sender_id"),
        ({"sender_id": "12345"}, "sender_id", "invalid_sender_id"),
        ({"sender_id": "Acme!"}, "sender_id", "invalid_sender_id"),
        ({"sender_id": ""}, "sender_id", "invalid_sender_id"),
        ({"sender_id": 7}, "sender_id", "invalid_sender_id"),
        ({"phone": "0412345678", "sender_id": "Acme"}, "sender_id", "bad_request"),
        ({}, "phone", "bad_request"),
        ({"number": "0412345678"}, "number", "bad_request"),
        ({"phone": "0412345678", "provider": "nexmo"}, "provider", "bad_request"),
        ({"phone": "0412345678", "registered": True}, "registered", "bad_request"),
    ],
)
async def test_it_refuses_what_cannot_be_a_sending_number(
    client: TestClient[Any, Any],
    make_tenant: TenantFactory,
    body: dict[str, Any],
    field: str,
    code: str,
) -> None:
    tenant = await make_tenant("acme")
    response = await add(client, tenant, body)
    assert response.status == 400, body
    error = (await response.json())["error"]
    assert (error["field"], error["code"]) == (field, code), body
    assert await number_count(client) == 0
    assert await audit_entries(client, tenant.id) == []


async def test_it_answers_409_for_a_number_already_held(
    client: TestClient[Any, Any], make_tenant: TenantFactory, clock: ManualClock
) -> None:
    acme, other = await make_tenant("acme"), await make_tenant("other")
    mine = await added(client, acme, phone="0412345678")
    sender = await added(client, acme, sender_id="AcmeShop")
    for tenant, body, code in [
        (other, {"phone": "+61 412 345 678"}, "number_taken"),
        (other, {"sender_id": "acmeshop"}, "number_taken"),  # the same name on a handset
        (acme, {"phone": "0412 345 678"}, "already_added"),
        (acme, {"sender_id": "ACMESHOP"}, "already_added"),
    ]:
        response = await add(client, tenant, body)
        assert response.status == 409, (tenant.slug, body)
        error = (await response.json())["error"]
        assert error["code"] == code
        if code == "already_added":
            assert error["id"] in (mine["id"], sender["id"])
        else:
            # Neither the holder nor its number's id is told.
            assert "id" not in error and "another account" in error["message"]
    # The CLI's add (smsapp number add) refuses the other tenant's number too.
    from smsapp.numbers import NumberError

    with pytest.raises(NumberError):
        await add_sending_number(client.app[DB], clock, tenant_id=other.id, value="0412345678")
    assert await listed(client, other) == []
    assert await number_count(client) == 2


async def test_it_changes_limits_warmup_and_flags_and_audits_them(
    client: TestClient[Any, Any], make_tenant: TenantFactory, clock: ManualClock
) -> None:
    tenant = await make_tenant("acme")
    number = await added(client, tenant, phone="0412345678")
    clock.advance(hours=1)
    response = await patch(
        client,
        tenant,
        number["id"],
        {
            "per_minute_limit": 120,
            "daily_cap": 5_000,
            "warmup_started_on": "2026-01-02",
            "active": False,
        },
    )
    assert response.status == 200
    body = await response.json()
    assert (body["per_minute_limit"], body["daily_cap"], body["active"]) == (120, 5_000, False)
    assert body["warmup_started_on"] == "2026-01-02"
    assert body["warmup_limit_today"] == 1_600  # day 3 of the warm-up
    assert body["updated_at"] == "2026-01-05T01:00:00Z"
    assert (await listed(client, tenant)) == [body]
    entries = await audit_entries(client, tenant.id)
    assert [e["action"] for e in entries] == ["sending_number.add", "sending_number.update"]
    assert entries[1]["details"]["changes"] == {
        "per_minute_limit": {"from": 60, "to": 120},
        "daily_cap": {"from": 10_000, "to": 5_000},
        "warmup_started_on": {"from": "2026-01-05", "to": "2026-01-02"},
        "active": {"from": True, "to": False},
    }
    # The same values again change nothing and write no audit entry.
    same = await patch(client, tenant, number["id"], {"daily_cap": 5_000, "active": False})
    assert same.status == 200 and (await same.json())["updated_at"] == body["updated_at"]
    assert len(await audit_entries(client, tenant.id)) == 2

    cleared = await patch(client, tenant, number["id"], {"warmup_started_on": None})
    body = await cleared.json()
    assert body["warmup_started_on"] is None and body["warmup_limit_today"] == 5_000
    edges = await patch(
        client, tenant, number["id"], {"per_minute_limit": 10_000, "daily_cap": 1_000_000}
    )
    assert edges.status == 200
    low = await patch(client, tenant, number["id"], {"per_minute_limit": 1, "daily_cap": 1})
    assert low.status == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"per_minute_limit": 0}, "per_minute_limit"),
        ({"per_minute_limit": 10_001}, "per_minute_limit"),
        ({"per_minute_limit": "60"}, "per_minute_limit"),
        ({"per_minute_limit": 1.5}, "per_minute_limit"),
        ({"per_minute_limit": None}, "per_minute_limit"),
        ({"daily_cap": 0}, "daily_cap"),
        ({"daily_cap": 1_000_001}, "daily_cap"),
        ({"daily_cap": True}, "daily_cap"),
        ({"warmup_started_on": "2026-13-01"}, "warmup_started_on"),
        ({"warmup_started_on": "05/01/2026"}, "warmup_started_on"),
        ({"warmup_started_on": "2026-01-05T00:00:00"}, "warmup_started_on"),
        ({"warmup_started_on": "2026-01-06"}, "warmup_started_on"),  # tomorrow in Sydney
        ({"warmup_started_on": 20260101}, "warmup_started_on"),
        ({"active": "no"}, "active"),
        ({"active": None}, "active"),
        ({"registered": True}, "registered"),  # a phone number is not on the Sender ID Register
        ({"provider": "nexmo"}, "provider"),
        ({"phone": "0412000000"}, "phone"),  # the number itself does not change
        ({"kind": "alphanumeric"}, "kind"),
    ],
)
async def test_it_refuses_bad_changes(
    client: TestClient[Any, Any], make_tenant: TenantFactory, body: dict[str, Any], field: str
) -> None:
    tenant = await make_tenant("acme")
    number = await added(client, tenant, phone="0412345678")
    response = await patch(client, tenant, number["id"], body)
    assert response.status == 400, body
    assert (await response.json())["error"]["field"] == field, body
    assert await listed(client, tenant) == [number]


async def test_it_marks_a_sender_id_registered(
    client: TestClient[Any, Any], make_tenant: TenantFactory
) -> None:
    tenant = await make_tenant("acme")
    sender = await added(client, tenant, sender_id="Acme")
    assert sender["registered"] is False
    response = await patch(client, tenant, sender["id"], {"registered": True})
    assert (await response.json())["registered"] is True
    phone = await added(client, tenant, phone="0412345678")
    assert (await patch(client, tenant, phone["id"], {"registered": False})).status == 200


async def test_it_answers_404_for_another_tenants_number(
    client: TestClient[Any, Any], make_tenant: TenantFactory
) -> None:
    acme, other = await make_tenant("acme"), await make_tenant("other")
    theirs = await added(client, other, phone="0412345678")
    for method, path in [
        ("GET", f"/api/sending-numbers/{theirs['id']}"),
        ("PATCH", f"/api/sending-numbers/{theirs['id']}"),
        ("PATCH", "/api/sending-numbers/999999"),
        ("PATCH", "/api/sending-numbers/abc"),
    ]:
        response = await client.request(
            method, path, json={"active": False}, headers=acme.auth("admin")
        )
        assert response.status == 404, (method, path)
        assert (await response.json())["error"]["code"] == "not_found"
    assert (await listed(client, other))[0]["active"] is True
    assert await listed(client, acme) == []


async def test_it_refuses_every_number_write_to_staff_and_viewers(
    client: TestClient[Any, Any], make_tenant: TenantFactory, sign_in: SignIn
) -> None:
    tenant = await make_tenant("acme")
    number = await added(client, tenant, phone="0412345678")
    staff = await sign_in("s@example.com", tenant_id=tenant.id, role="staff")
    for role in ("staff", "viewer"):
        response = await add(client, tenant, {"phone": "0412000001"}, role=role)
        assert response.status == 403
        response = await patch(client, tenant, number["id"], {"active": False}, role=role)
        assert response.status == 403
        assert (await response.json())["error"]["code"] == "forbidden"
    for path, form in [
        ("/admin/numbers", {"kind": "phone", "value": "0412000001"}),
        (f"/admin/numbers/{number['id']}", {"per_minute_limit": "1", "daily_cap": "1"}),
    ]:
        response = await client.post(
            path,
            data={"csrf_token": staff.csrf, **form},
            headers=staff.headers(),
            allow_redirects=False,
        )
        assert response.status == 403, path
    assert await listed(client, tenant) == [number]


def test_it_warms_a_number_up_day_by_day() -> None:
    start = date(2026, 1, 1)
    expected = [200, 400, 800, 1_600, 3_200, 6_400, 10_000, 10_000]
    for day, allowance in enumerate(expected):
        today = date(2026, 1, 1 + day)
        assert warmup_allowance(start, today, 10_000) == allowance, day
    assert warmup_allowance(start, date(2026, 1, 2), 300) == 300  # never above the cap
    assert warmup_allowance(start, date(2026, 1, 20), 50_000) == 50_000
    assert warmup_allowance(None, date(2026, 1, 1), 10_000) == 10_000
    assert warmup_allowance(start, date(2025, 12, 31), 10_000) == 200  # not started: day 0


# --- the numbers page ----------------------------------------------------------------------


async def test_it_lists_numbers_read_only_for_viewers(
    client: TestClient[Any, Any], make_tenant: TenantFactory, sign_in: SignIn
) -> None:
    tenant = await make_tenant("acme")
    await added(client, tenant, phone="0412345678")
    await added(client, tenant, sender_id="Acme")
    viewer = await sign_in("v@example.com", tenant_id=tenant.id, role="viewer")
    page = await client.get("/admin/numbers", headers=viewer.headers())
    assert page.status == 200
    text = await page.text()
    assert 'href="/admin/numbers" aria-current="page"' in text
    assert "+61412345678" in text and "Acme" in text
    assert '<span class="badge bad">not registered</span>' in text
    assert "10,000" in text and "<td>200</td>" in text
    assert 'method="post"' not in text.split("</header>", 1)[1]  # no forms but the top bar's


async def test_it_adds_and_edits_numbers_on_the_page(
    client: TestClient[Any, Any], make_tenant: TenantFactory, sign_in: SignIn
) -> None:
    tenant, other = await make_tenant("acme"), await make_tenant("other")
    admin = await sign_in("a@example.com", tenant_id=tenant.id, role="admin")
    empty = await client.get("/admin/numbers", headers=admin.headers())
    assert "No sending numbers yet" in await empty.text()

    def form(**fields: str) -> dict[str, str]:
        return {"csrf_token": admin.csrf, **fields}

    created = await client.post(
        "/admin/numbers",
        data=form(kind="phone", value="0412 345 678", provider="sandbox"),
        headers=admin.headers(),
        allow_redirects=False,
    )
    assert created.status == 303 and created.headers["Location"] == "/admin/numbers"
    sender = await client.post(
        "/admin/numbers",
        data=form(kind="sender_id", value="AcmeShop", provider="twilio"),
        headers=admin.headers(),
        allow_redirects=False,
    )
    assert sender.status == 303
    phone, alpha = await listed(client, tenant)
    assert (phone["phone_e164"], alpha["phone_e164"], alpha["provider"]) == (
        "+61412345678",
        "AcmeShop",
        "twilio",
    )

    bad = await client.post(
        "/admin/numbers",
        data=form(kind="sender_id", value="Way Too Long ID", provider="sandbox"),
        headers=admin.headers(),
    )
    assert bad.status == 400
    text = await bad.text()
    assert "must be 1–11 letters" in text and 'value="Way Too Long ID"' in text
    taken = await client.post(
        "/admin/numbers",
        data=form(kind="phone", value="+61412345678", provider="sandbox"),
        headers=admin.headers(),
    )
    assert taken.status == 409 and "already one of your sending numbers" in await taken.text()

    page = await client.get("/admin/numbers", headers=admin.headers())
    text = await page.text()
    assert f'action="/admin/numbers/{phone["id"]}"' in text
    assert f'action="/admin/numbers/{alpha["id"]}"' in text
    assert text.count('name="registered"') == 1  # the sender ID's form only

    saved = await client.post(
        f"/admin/numbers/{alpha['id']}",
        data=form(
            per_minute_limit="30",
            daily_cap="2,000",
            warmup_started_on="2026-01-01",
            registered="1",
            active="",
        ),
        headers=admin.headers(),
        allow_redirects=False,
    )
    assert saved.status == 303
    changed = (await listed(client, tenant))[1]
    assert (changed["per_minute_limit"], changed["daily_cap"]) == (30, 2_000)
    assert (changed["warmup_started_on"], changed["registered"], changed["active"]) == (
        "2026-01-01",
        True,
        False,
    )

    bad_edit = await client.post(
        f"/admin/numbers/{phone['id']}",
        data=form(per_minute_limit="0", daily_cap="100", warmup_started_on="", active="1"),
        headers=admin.headers(),
    )
    assert bad_edit.status == 400
    text = await bad_edit.text()
    assert "+61412345678: per_minute_limit must be between 1 and 10,000" in text
    assert 'name="per_minute_limit" type="number" min="1" max="10000" value="0"' in text

    theirs = await added(client, other, phone="0412000009")
    not_ours = await client.post(
        f"/admin/numbers/{theirs['id']}",
        data=form(per_minute_limit="1", daily_cap="1", active="1"),
        headers=admin.headers(),
    )
    assert not_ours.status == 404
    assert (await listed(client, other))[0]["per_minute_limit"] == 60
