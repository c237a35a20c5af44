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


# --- the sender and the footer: the queue builder's rule (pack §10) ---------------------------

PUBLIC = "http://127.0.0.1:8080"  # the test settings' PUBLIC_BASE_URL


async def add_contact(client: Client, tenant: TenantFixture, clock: ManualClock, phone: str) -> int:
    contact_id: int = await client.app[DB].val(
        Sql("INSERT INTO contacts (tenant_id, phone_e164, first_name, country, consent_source, "
            "consent_at, created_at, updated_at) VALUES (:t, :p, 'Ann', 'AU', 'test', :now, "
            ":now, :now) RETURNING id"),
        t=tenant.id, p=phone, now=clock.now(),
    )  # fmt: skip
    return contact_id


async def test_a_tenant_with_a_phone_number_tests_from_it_with_reply_stop(
    client: Client, acme: TenantFixture, clock: ManualClock
) -> None:
    """An alphanumeric sender made first (and sorting first) is not chosen: the campaign's
    messages go from the phone number, so the test does."""
    db = client.app[DB]
    await add_sending_number(db, clock, tenant_id=acme.id, value="Acme")
    await add_sending_number(db, clock, tenant_id=acme.id, value="+61400000000")
    campaign_id = await campaign(client, acme, body="Sale on")

    answer = await (await send(client, acme, campaign_id, "0412000001")).json()

    assert answer["from"] == "+61400000000"
    assert answer["body"] == "Sale on\nAcme: reply STOP to opt out"


async def test_an_alphanumeric_tenant_tests_with_the_contacts_own_unsubscribe_link(
    client: Client, acme: TenantFixture, clock: ManualClock
) -> None:
    """The contact's real link for this campaign, the one its campaign message will carry
    (the queue builder reuses the token), and it works."""
    db = client.app[DB]
    await add_sending_number(db, clock, tenant_id=acme.id, value="Acme")
    await add_sending_number(db, clock, tenant_id=acme.id, value="+61400000000")
    await db.run(Sql("UPDATE sending_numbers SET active = :no WHERE kind = 'phone'"), no=False)
    contact_id = await add_contact(client, acme, clock, "+61412000001")
    campaign_id = await campaign(client, acme, body="Sale on")

    answer = await (await send(client, acme, campaign_id, "0412000001")).json()

    assert answer["from"] == "Acme"
    token = await db.val(
        Sql("SELECT token FROM unsubscribe_tokens WHERE campaign_id = :c AND contact_id = :p"),
        c=campaign_id, p=contact_id,
    )  # fmt: skip
    assert answer["body"] == f"Sale on\nAcme: opt out at {PUBLIC}/u/{token}"
    assert answer["parts"] == 1
    provider = client.app[PROVIDER]
    assert isinstance(provider, SandboxProvider)
    assert [m.outgoing.from_ for m in provider.messages] == ["Acme"]
    queued = await client.post(
        f"/api/campaigns/{campaign_id}/queue", json={}, headers=acme.auth("staff")
    )
    assert queued.status == 200, await queued.text()
    job_body = await db.val(Sql("SELECT body FROM send_jobs WHERE contact_id = :p"), p=contact_id)
    assert job_body == answer["body"]
    assert (await client.get(f"/u/{token}")).status == 200


async def test_a_test_to_a_stranger_from_an_alphanumeric_sender_carries_a_sample_link(
    client: Client, acme: TenantFixture, clock: ManualClock
) -> None:
    """No token (nor contact) is made for a number that is no contact of the tenant: the link
    is a sample of the real length that opts nobody out."""
    db = client.app[DB]
    await add_sending_number(db, clock, tenant_id=acme.id, value="Acme")
    campaign_id = await campaign(client, acme, body="Sale on")

    answer = await (await send(client, acme, campaign_id, "0412000001")).json()

    sample = f"{PUBLIC}/u/test-send-sample"
    assert answer["body"] == f"Sale on\nAcme: opt out at {sample}"
    assert len("test-send-sample") == 16  # a real token's length: the parts are the real ones
    assert await db.val(Sql("SELECT count(*) FROM unsubscribe_tokens")) == 0
    assert await db.val(Sql("SELECT count(*) FROM contacts")) == 0
    assert (await client.get("/u/test-send-sample")).status == 404
    assert (await client.post("/u/test-send-sample")).status == 404
    assert await db.val(Sql("SELECT count(*) FROM do_not_contact")) == 0


async def test_a_footer_with_the_link_gets_one_from_a_phone_number_too(
    client: Client, acme: TenantFixture, clock: ManualClock
) -> None:
    db = client.app[DB]
    await add_sending_number(db, clock, tenant_id=acme.id, value="+61400000000")
    await db.run(
        Sql("UPDATE tenants SET optout_footer = :f WHERE id = :t"),
        f="{tenant_name}: unsubscribe at {optout_link}", t=acme.id,
    )  # fmt: skip
    campaign_id = await campaign(client, acme, body="Sale on")

    answer = await (await send(client, acme, campaign_id, "0412000001")).json()

    assert answer["from"] == "+61400000000"
    assert answer["body"] == f"Sale on\nAcme: unsubscribe at {PUBLIC}/u/test-send-sample"
