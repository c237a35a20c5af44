"""POST /api/campaigns/{id}/test: one transactional message now, through the configured
provider (the built-in sandbox here), never to a number on the do-not-contact list."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from smsapp.clock import ManualClock
from smsapp.db import Sql
from smsapp.engine.providers import SandboxProvider
from smsapp.keys import DB, PROVIDER
from smsapp.numbers import add_sending_number
from tests.conftest import TenantFactory, TenantFixture

Client = TestClient[Any, Any]


@pytest.fixture
async def acme(make_tenant: TenantFactory) -> TenantFixture:
    return await make_tenant("acme")


async def campaign(
    client: Client, tenant: TenantFixture, body: str = "Hi {first_name}: {link}"
) -> int:
    h = tenant.auth("staff")
    template = await (
        await client.post("/api/templates", json={"name": "T", "body": body}, headers=h)
    ).json()
    created = await client.post(
        "/api/campaigns",
        json={"name": "C", "template_ids": [template["id"]], "link_url": "https://shop.example/x"},
        headers=h,
    )
    return int((await created.json())["id"])


async def send(client: Client, tenant: TenantFixture, campaign_id: int, phone: Any) -> Any:
    return await client.post(
        f"/api/campaigns/{campaign_id}/test", json={"phone": phone}, headers=tenant.auth("staff")
    )


async def test_it_sends_one_message_now_and_records_it_with_its_cost(
    client: Client, acme: TenantFixture, clock: ManualClock
) -> None:
    db = client.app[DB]
    await add_sending_number(db, clock, tenant_id=acme.id, value="+61400000000")
    await db.run(
        Sql(
            "INSERT INTO contacts (tenant_id, phone_e164, first_name, created_at, updated_at) "
            "VALUES (:t, '+61412000001', 'Ann', :now, :now)"
        ),
        t=acme.id,
        now=clock.now(),
    )
    campaign_id = await campaign(client, acme)
    response = await send(client, acme, campaign_id, "0412 000 001")
    body = await response.json()
    assert response.status == 200, body
    assert body["to"] == "+61412000001" and body["from"] == "+61400000000"
    assert body["body"] == "Hi Ann: https://shop.example/x\nAcme: reply STOP to opt out"
    assert (body["parts"], body["encoding"]) == (1, "GSM-7")
    provider = client.app[PROVIDER]
    assert isinstance(provider, SandboxProvider)
    assert [m.outgoing.body for m in provider.messages] == [body["body"]]
    outbox = await db.one(Sql("SELECT * FROM outbox"))
    assert outbox is not None and outbox["processed_at"] == clock.now() and outbox["attempt_id"]
    assert outbox["payload"]["provider_message_id"] == body["provider_message_id"]
    cost = await db.one(Sql("SELECT parts, unit_price, amount, source FROM costs"))
    assert cost == {"parts": 1, "unit_price": 55_000, "amount": 55_000, "source": "estimate"}
    assert await db.val(Sql("SELECT count(*) FROM send_jobs")) == 0  # not a campaign job


async def test_it_never_sends_a_test_to_a_number_on_the_dnc_list(
    client: Client, acme: TenantFixture, clock: ManualClock
) -> None:
    db = client.app[DB]
    await add_sending_number(db, clock, tenant_id=acme.id, value="+61400000000")
    await db.run(
        Sql(
            "INSERT INTO do_not_contact (tenant_id, phone_e164, source, created_at) "
            "VALUES (:t, '+61412000001', 'stop_keyword', :now)"
        ),
        t=acme.id,
        now=clock.now(),
    )
    campaign_id = await campaign(client, acme)
    response = await send(client, acme, campaign_id, "+61412000001")
    assert response.status == 409 and (await response.json())["error"]["code"] == "on_dnc"
    assert await db.val(Sql("SELECT count(*) FROM outbox")) == 0


@pytest.mark.parametrize(
    ("phone", "status", "code"),
    [("12345", 400, "invalid_phone"), (None, 400, "invalid_phone")],
)
async def test_it_refuses_a_bad_number(
    client: Client, acme: TenantFixture, clock: ManualClock, phone: Any, status: int, code: str
) -> None:
    await add_sending_number(client.app[DB], clock, tenant_id=acme.id, value="+61400000000")
    campaign_id = await campaign(client, acme)
    response = await send(client, acme, campaign_id, phone)
    assert response.status == status
    assert (await response.json())["error"]["code"] == code


async def test_it_needs_a_sending_number(client: Client, acme: TenantFixture) -> None:
    campaign_id = await campaign(client, acme)
    response = await send(client, acme, campaign_id, "0412000001")
    assert (
        response.status == 409 and (await response.json())["error"]["code"] == "no_sending_number"
    )


async def test_it_answers_a_provider_refusal_with_502_and_records_it(
    client: Client, acme: TenantFixture, clock: ManualClock
) -> None:
    from smsapp.engine.providers import ProviderError

    db = client.app[DB]
    await add_sending_number(db, clock, tenant_id=acme.id, value="+61400000000")
    campaign_id = await campaign(client, acme)
    provider = client.app[PROVIDER]
    assert isinstance(provider, SandboxProvider)
    provider.fail_next(ProviderError("blocked", kind="rejected", code="21610", opted_out=True))
    response = await send(client, acme, campaign_id, "0412000001")
    assert response.status == 502
    body = await response.json()
    assert body["error"]["code"] == "provider_error" and body["error"]["provider_code"] == "21610"
    outbox = await db.one(Sql("SELECT last_error, processed_at FROM outbox"))
    assert outbox is not None and outbox["last_error"].startswith("rejected")
    assert await db.val(Sql("SELECT count(*) FROM costs")) == 0


async def test_it_refuses_viewers_and_other_tenants(
    client: Client, acme: TenantFixture, make_tenant: TenantFactory
) -> None:
    other = await make_tenant("other")
    campaign_id = await campaign(client, acme)
    url = f"/api/campaigns/{campaign_id}/test"
    assert (
        await client.post(url, json={"phone": "0412000001"}, headers=acme.auth("viewer"))
    ).status == 403
    assert (
        await client.post(url, json={"phone": "0412000001"}, headers=other.auth("admin"))
    ).status == 404
