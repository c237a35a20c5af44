"""The replies inbox: GET /api/inbound-messages, the /admin/inbox page, and inbound messages on
the contact timeline. Messages are inserted directly (the webhooks write them in production)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from smsapp.clock import ManualClock
from smsapp.db import Database, Sql
from smsapp.keys import DB
from tests.conftest import SignIn, TenantFactory, TenantFixture

Client = TestClient[Any, Any]


@pytest.fixture
async def acme(make_tenant: TenantFactory) -> TenantFixture:
    return await make_tenant("acme")


def db_of(client: Client) -> Database:
    db: Database = client.app[DB]
    return db


async def contact(client: Client, tenant: TenantFixture, clock: ManualClock, phone: str,
                  name: str = "Ann") -> int:  # fmt: skip
    contact_id: int = await db_of(client).val(
        Sql(
            "INSERT INTO contacts (tenant_id, phone_e164, first_name, country, created_at, "
            "updated_at) VALUES (:t, :p, :n, 'AU', :now, :now) RETURNING id"
        ),
        t=tenant.id,
        p=phone,
        n=name,
        now=clock.now(),
    )
    return contact_id


async def campaign(client: Client, tenant: TenantFixture, clock: ManualClock, name: str) -> int:
    campaign_id: int = await db_of(client).val(
        Sql(
            "INSERT INTO campaigns (tenant_id, name, status, created_at, updated_at) "
            "VALUES (:t, :n, 'sending', :now, :now) RETURNING id"
        ),
        t=tenant.id,
        n=name,
        now=clock.now(),
    )
    return campaign_id


async def inbound(
    client: Client, tenant: TenantFixture, clock: ManualClock, *, contact_id: int | None,
    body: str, classification: str = "reply", campaign_id: int | None = None,
    minutes: int = 0, from_e164: str = "+61412000001",
) -> int:  # fmt: skip
    message_id: int = await db_of(client).val(
        Sql(
            "INSERT INTO inbound_messages (tenant_id, contact_id, campaign_id, from_e164, "
            "to_number, body, classification, received_at, created_at) VALUES (:t, :c, :g, "
            ":f, '+61400000000', :b, :k, :at, :at) RETURNING id"
        ),
        t=tenant.id,
        c=contact_id,
        g=campaign_id,
        f=from_e164,
        b=body,
        k=classification,
        at=clock.now() + timedelta(minutes=minutes),
    )
    return message_id


async def on_dnc(client: Client, tenant: TenantFixture, clock: ManualClock, phone: str) -> None:
    await db_of(client).run(
        Sql(
            "INSERT INTO do_not_contact (tenant_id, phone_e164, source, created_at) "
            "VALUES (:t, :p, 'stop_keyword', :now)"
        ),
        t=tenant.id,
        p=phone,
        now=clock.now(),
    )


async def api(client: Client, tenant: TenantFixture, query: str = "", role: str = "viewer") -> Any:
    response = await client.get(f"/api/inbound-messages{query}", headers=tenant.auth(role))
    return response.status, await response.json()


async def test_it_lists_messages_newest_first_with_campaign_classification_and_dnc_state(
    client: Client, acme: TenantFixture, clock: ManualClock
) -> None:
    ann = await contact(client, acme, clock, "+61412000001", "Ann")
    bob = await contact(client, acme, clock, "+61412000002", "Bob")
    spring = await campaign(client, acme, clock, "Spring sale")
    await on_dnc(client, acme, clock, "+61412000001")
    first = await inbound(client, acme, clock, contact_id=ann, body="Is this real?",
                          campaign_id=spring, minutes=1)  # fmt: skip
    stop = await inbound(client, acme, clock, contact_id=ann, body="STOP",
                         classification="opt_out", campaign_id=spring, minutes=2)  # fmt: skip
    help_ = await inbound(client, acme, clock, contact_id=bob, body="help",
                          classification="help", minutes=3, from_e164="+61412000002")  # fmt: skip

    status, answer = await api(client, acme)

    assert status == 200
    assert [m["id"] for m in answer["messages"]] == [help_, stop, first]
    assert answer["total"] == 3
    assert answer["counts"] == {"opt_out": 1, "opt_in": 0, "help": 1, "reply": 1}
    by_id = {m["id"]: m for m in answer["messages"]}
    assert by_id[stop] == {
        "id": stop, "received_at": "2026-01-05T00:02:00Z", "classification": "opt_out",
        "body": "STOP", "from": "+61412000001", "to": "+61400000000", "contact_id": ann,
        "contact_name": "Ann", "do_not_contact": True, "campaign_id": spring,
        "campaign_name": "Spring sale",
    }  # fmt: skip
    assert by_id[help_]["do_not_contact"] is False and by_id[help_]["campaign_id"] is None


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("?classification=opt_out", ["stop"]),
        ("?classification=opt-out", ["stop"]),  # as the page labels it
        ("?classification=reply", ["thanks", "hello"]),
        ("?classification=help", []),
        ("?contact_id={bob}", ["thanks"]),
        ("?contact_id={ann}&classification=reply", ["hello"]),
        ("?contact_id={ann}&limit=1", ["stop"]),
        ("?contact_id={ann}&limit=1&offset=1", ["hello"]),
        ("?classification=&contact_id=", ["thanks", "stop", "hello"]),
    ],
)
async def test_it_filters_by_classification_and_contact(
    client: Client, acme: TenantFixture, clock: ManualClock, query: str, expected: list[str]
) -> None:
    ann = await contact(client, acme, clock, "+61412000001", "Ann")
    bob = await contact(client, acme, clock, "+61412000002", "Bob")
    await inbound(client, acme, clock, contact_id=ann, body="hello", minutes=1)
    await inbound(client, acme, clock, contact_id=ann, body="stop", classification="opt_out",
                  minutes=2)  # fmt: skip
    await inbound(client, acme, clock, contact_id=bob, body="thanks", minutes=3)
    status, answer = await api(client, acme, query.format(ann=ann, bob=bob))
    assert status == 200, answer
    assert [m["body"] for m in answer["messages"]] == expected


@pytest.mark.parametrize(
    "query", ["?classification=spam", "?contact_id=abc", "?contact_id=-1", "?limit=0"]
)
async def test_it_refuses_bad_filters(client: Client, acme: TenantFixture, query: str) -> None:
    status, answer = await api(client, acme, query)
    assert status == 400 and answer["error"]["code"] == "bad_request"


async def test_it_keeps_tenants_apart(
    client: Client, acme: TenantFixture, make_tenant: TenantFactory, clock: ManualClock
) -> None:
    other = await make_tenant("other")
    ann = await contact(client, acme, clock, "+61412000001", "Ann")
    theirs = await contact(client, other, clock, "+61412000001", "Zed")
    await inbound(client, acme, clock, contact_id=ann, body="ours")
    await inbound(client, other, clock, contact_id=theirs, body="theirs")

    _, answer = await api(client, acme)
    assert [m["body"] for m in answer["messages"]] == ["ours"]
    status, answer = await api(client, acme, f"?contact_id={theirs}")
    assert status == 404 and answer["error"]["code"] == "not_found"
    status, answer = await api(client, other)
    assert [m["body"] for m in answer["messages"]] == ["theirs"]
    admin = await client.get(f"/admin/inbox?contact_id={theirs}", headers=acme.auth("admin"))
    assert admin.status == 404 and "theirs" not in await admin.text()
    page = await client.get("/admin/inbox", headers=acme.auth("admin"))
    assert "theirs" not in await page.text()


@pytest.mark.parametrize("role", ["viewer", "staff", "admin"])
async def test_it_lets_every_member_read(
    client: Client, acme: TenantFixture, clock: ManualClock, sign_in: SignIn, role: str
) -> None:
    ann = await contact(client, acme, clock, "+61412000001")
    await inbound(client, acme, clock, contact_id=ann, body="hi there")
    status, answer = await api(client, acme, role=role)
    assert status == 200 and len(answer["messages"]) == 1
    user = await sign_in(f"{role}@example.com", tenant_id=acme.id, role=role)
    page = await client.get("/admin/inbox", headers=user.headers())
    text = await page.text()
    assert page.status == 200 and "hi there" in text
    assert '<a href="/admin/inbox"' in text  # the nav link
    anonymous = await client.get("/api/inbound-messages")
    assert anonymous.status == 401


async def test_it_shows_the_page_with_links_filters_and_escaped_text(
    client: Client, acme: TenantFixture, clock: ManualClock, sign_in: SignIn
) -> None:
    ann = await contact(client, acme, clock, "+61412000001", "Ann")
    spring = await campaign(client, acme, clock, "Spring sale")
    await on_dnc(client, acme, clock, "+61412000001")
    await inbound(client, acme, clock, contact_id=ann, body="<script>alert(1)</script>",
                  campaign_id=spring)  # fmt: skip
    await inbound(client, acme, clock, contact_id=ann, body="STOP", classification="opt_out",
                  minutes=1)  # fmt: skip
    user = await sign_in("v@example.com", tenant_id=acme.id, role="viewer")

    page = await client.get("/admin/inbox", headers=user.headers())
    text = await page.text()
    assert "<script>alert(1)</script>" not in text and "&lt;script&gt;" in text
    assert f'href="/admin/campaigns/{spring}">Spring sale</a>' in text
    assert f'href="/admin/contacts/{ann}" data-testid="dnc-state"' in text
    assert "on the list" in text and f"contact_id={ann}" in text
    assert "2 messages." in text

    filtered = await client.get("/admin/inbox?classification=opt_out", headers=user.headers())
    text = await filtered.text()
    assert "1 message." in text and "STOP" in text and "&lt;script&gt;" not in text
    assert '<option value="opt_out" selected>' in text
    mine = await client.get(f"/admin/inbox?contact_id={ann}", headers=user.headers())
    assert 'data-testid="contact-filter"' in await mine.text()
    bad = await client.get("/admin/inbox?classification=spam", headers=user.headers())
    assert bad.status == 400


async def test_it_pages_like_the_contacts_page(
    client: Client, acme: TenantFixture, clock: ManualClock, sign_in: SignIn
) -> None:
    ann = await contact(client, acme, clock, "+61412000001")
    for n in range(51):
        await inbound(client, acme, clock, contact_id=ann, body=f"message {n:02d}", minutes=n)
    user = await sign_in("v@example.com", tenant_id=acme.id, role="viewer")
    first = await (await client.get("/admin/inbox", headers=user.headers())).text()
    assert "message 50" in first and "message 01" in first and "message 00" not in first
    assert 'href="?page=2">Next' in first
    second = await (await client.get("/admin/inbox?page=2", headers=user.headers())).text()
    assert "message 00" in second and "message 01" not in second and "Previous" in second


# --- the contact timeline ----------------------------------------------------------------------


async def test_it_shows_inbound_messages_on_the_contact_timeline(
    client: Client, acme: TenantFixture, clock: ManualClock, sign_in: SignIn
) -> None:
    db = db_of(client)
    ann = await contact(client, acme, clock, "+61412000001")
    reply = await inbound(client, acme, clock, contact_id=ann, body="See you Friday!")
    await db.run(
        Sql(
            "INSERT INTO events (tenant_id, contact_id, type, occurred_at, data, created_at) "
            "VALUES (:t, :c, 'REPLIED', :now, :data, :now)"
        ),
        t=acme.id,
        c=ann,
        now=clock.now(),
        data={"inbound_message_id": reply, "body": "See you Friday!"},
    )
    # A second STOP from a number already on the list: recorded, no event.
    await inbound(client, acme, clock, contact_id=ann, body="STOP again",
                  classification="opt_out", minutes=5)  # fmt: skip

    response = await client.get(f"/api/contacts/{ann}/timeline", headers=acme.auth("viewer"))
    [event] = (await response.json())["events"]
    assert event["type"] == "REPLIED"
    assert event["message"] == {"id": reply, "body": "See you Friday!",
                                "classification": "reply",
                                "received_at": "2026-01-05T00:00:00Z"}  # fmt: skip

    user = await sign_in("v@example.com", tenant_id=acme.id, role="viewer")
    text = await (await client.get(f"/admin/contacts/{ann}", headers=user.headers())).text()
    assert text.count('data-testid="inbound-text"') == 2
    assert "See you Friday!" in text and "STOP again" in text
    assert text.index("See you Friday!") < text.index("STOP again")  # in time order


async def test_it_erases_the_texts_with_the_contact(
    client: Client, acme: TenantFixture, clock: ManualClock
) -> None:
    ann = await contact(client, acme, clock, "+61412000001")
    await inbound(client, acme, clock, contact_id=ann, body="my address is 1 Main St")
    erased = await client.delete(f"/api/contacts/{ann}", headers=acme.auth("admin"))
    assert erased.status == 200
    _, answer = await api(client, acme)
    [message] = answer["messages"]
    assert message["body"] == "[erased]" and message["from"] == "[erased]"
    assert message["contact_name"] == f"Erased contact #{ann}"
