"""Inbound messages (pack §10, §11) for both providers, on both backends: STOP, START, HELP and
replies with their effects committed before the answer, routing by the number texted,
forgeries refused with nothing written, replays ignored, one confirmation per 24 h."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from smsapp.clock import ManualClock
from smsapp.config import DatabaseUrl, Settings
from smsapp.db import Database, Row, Sql
from smsapp.encoding import is_gsm7
from smsapp.engine.providers import SandboxProvider
from smsapp.inbound import name_for_sms, reply_text
from smsapp.keys import DB, PROVIDER
from smsapp.webhook_events import WEBHOOK_COUNTERS
from tests.conftest import TenantFactory, TenantFixture
from tests.test_campaigns import add_contact, queue, template
from tests.test_campaigns import campaign as create_campaign
from tests.webhook_support import (
    OUR_NUMBER,
    PERSON,
    TWILIO_SID,
    Client,
    campaign,
    counts,
    job,
    number,
    sandbox_post,
    twilio_inbound_params,
    twilio_post,
    webhook_settings,
)

INBOUND = "/webhooks/twilio/inbound"
SANDBOX_INBOUND = "/webhooks/sandbox/inbound"


@pytest.fixture
def settings(database_url: DatabaseUrl, tmp_path: Path) -> Settings:
    return webhook_settings(database_url, tmp_path / "data")


@pytest.fixture
async def acme(client: Client, clock: ManualClock, make_tenant: TenantFactory) -> TenantFixture:
    tenant = await make_tenant("acme")
    await number(client.app[DB], clock, tenant.id)
    return tenant


async def text_us(client: Client, body: str, **options: Any) -> str:
    """A person texts `body` to our number through Twilio; answers the response text."""
    response = await twilio_post(client, INBOUND, twilio_inbound_params(body, **options))
    assert response.status == 200, await response.text()
    assert response.content_type == "text/xml"
    return await response.text()


async def all_rows(db: Database, sql: str, **params: Any) -> list[Row]:
    return await db.all(Sql(sql), **params)


async def dnc(db: Database) -> list[Row]:
    return await all_rows(db, "SELECT tenant_id, phone_e164, source FROM do_not_contact")


async def outbox(db: Database) -> list[Row]:
    return await all_rows(db, "SELECT tenant_id, purpose, to_e164, payload FROM outbox ORDER BY id")


async def event_types(db: Database, tenant_id: int) -> list[tuple[str, int | None]]:
    rows = await all_rows(
        db, "SELECT type, campaign_id FROM events WHERE tenant_id = :t AND type <> 'QUEUED' "
        "ORDER BY id", t=tenant_id,
    )  # fmt: skip
    return [(r["type"], r["campaign_id"]) for r in rows]


# --- STOP ------------------------------------------------------------------------------------


async def test_a_stop_lists_the_number_cancels_its_jobs_and_confirms_once(
    client: Client, clock: ManualClock, acme: TenantFixture
) -> None:
    """The person got a campaign message two days ago and has jobs queued in another
    campaign: the STOP is attributed to the one that reached them, the queued jobs are
    cancelled, and one GSM-7 confirmation naming the tenant is queued from our number."""
    db = client.app[DB]
    person = await add_contact(client, acme, clock, PERSON)
    earlier = await campaign(db, clock, acme.id, name="Earlier")
    await job(db, clock, acme.id, campaign_id=earlier, contact_id=person, status="delivered",
              sent_at=clock.now())  # fmt: skip
    clock.advance(days=2)
    template_id = await template(client, acme, "Hi {first_name}, sale on")
    _, upcoming = await create_campaign(client, acme, [template_id])
    assert (await queue(client, acme, upcoming["id"]))["jobs"] == 1

    answer = await text_us(client, "Stop!!", sid="SMstop1")

    assert answer == '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
    assert await dnc(db) == [{"tenant_id": acme.id, "phone_e164": PERSON, "source": "stop_keyword"}]
    queued = await all_rows(db, "SELECT status, reason FROM send_jobs WHERE campaign_id = :c",
                            c=upcoming["id"])  # fmt: skip
    assert queued == [{"status": "cancelled", "reason": "opt_out"}]
    assert await event_types(db, acme.id) == [("OPT_OUT", earlier), ("CANCELLED", upcoming["id"])]
    [confirmation] = await outbox(db)
    assert confirmation["purpose"] == "optout_confirmation"
    assert confirmation["to_e164"] == PERSON
    assert confirmation["payload"]["from"] == OUR_NUMBER
    assert confirmation["payload"]["body"].startswith("Acme: ")
    assert "START" in confirmation["payload"]["body"]
    assert is_gsm7(confirmation["payload"]["body"])
    [message] = await all_rows(db, "SELECT * FROM inbound_messages")
    assert message["classification"] == "opt_out"
    assert (message["contact_id"], message["campaign_id"]) == (person, earlier)
    assert (message["from_e164"], message["to_number"], message["body"]) == (
        PERSON, OUR_NUMBER, "Stop!!",
    )  # fmt: skip
    assert message["provider_message_id"] == "SMstop1"
    event = await db.one(Sql("SELECT id, outcome FROM webhook_events"))
    assert event == {"id": message["webhook_event_id"], "outcome": "opt_out"}


async def test_it_confirms_an_opt_out_at_most_once_per_24_hours(
    client: Client, clock: ManualClock, acme: TenantFixture
) -> None:
    db = client.app[DB]
    await text_us(client, "STOP")
    clock.advance(hours=23)
    await text_us(client, "unsubscribe")
    assert [r["purpose"] for r in await outbox(db)] == ["optout_confirmation"]
    assert [t for t, _ in await event_types(db, acme.id)] == ["OPT_OUT"]  # listed once

    clock.advance(hours=2)
    await text_us(client, "stop")
    assert [r["purpose"] for r in await outbox(db)] == ["optout_confirmation"] * 2
    assert len(await all_rows(db, "SELECT id FROM inbound_messages")) == 3


async def test_a_stop_from_an_unknown_number_makes_a_contact_that_no_campaign_takes(
    client: Client, clock: ManualClock, acme: TenantFixture
) -> None:
    db = client.app[DB]
    stranger = "+61498765432"

    await text_us(client, "remove me please", from_=stranger)

    [made] = await all_rows(db, "SELECT id, phone_e164, country, consent_at FROM contacts")
    assert (made["phone_e164"], made["country"], made["consent_at"]) == (stranger, "AU", None)
    assert await dnc(db) == [
        {"tenant_id": acme.id, "phone_e164": stranger, "source": "stop_keyword"}
    ]
    template_id = await template(client, acme, "Hi there")
    _, later = await create_campaign(client, acme, [template_id])
    assert (await queue(client, acme, later["id"]))["jobs"] == 0


async def test_it_normalises_the_sender_in_the_tenants_country(
    client: Client, clock: ManualClock, acme: TenantFixture
) -> None:
    db = client.app[DB]
    person = await add_contact(client, acme, clock, PERSON)
    await text_us(client, "STOP", from_="0412 345 678")
    assert await dnc(db) == [{"tenant_id": acme.id, "phone_e164": PERSON, "source": "stop_keyword"}]
    [message] = await all_rows(db, "SELECT contact_id, from_e164 FROM inbound_messages")
    assert message == {"contact_id": person, "from_e164": PERSON}


async def test_the_tenants_own_keywords_opt_out(
    client: Client, clock: ManualClock, acme: TenantFixture
) -> None:
    db = client.app[DB]
    await db.run(Sql("UPDATE tenants SET optout_keywords = :k WHERE id = :t"), k=["NO"], t=acme.id)
    await text_us(client, "No.")
    assert len(await dnc(db)) == 1


# --- START, HELP, replies --------------------------------------------------------------------


async def test_start_restores_a_listed_number(
    client: Client, clock: ManualClock, acme: TenantFixture
) -> None:
    db = client.app[DB]
    await text_us(client, "STOP")
    clock.advance(hours=1)

    await text_us(client, "Start")

    assert await dnc(db) == []
    assert [t for t, _ in await event_types(db, acme.id)] == ["OPT_OUT", "RESUBSCRIBE"]
    assert [r["purpose"] for r in await outbox(db)] == [
        "optout_confirmation", "optin_confirmation",
    ]  # fmt: skip
    classes = await all_rows(db, "SELECT classification FROM inbound_messages ORDER BY id")
    assert [r["classification"] for r in classes] == ["opt_out", "opt_in"]


async def test_yes_from_a_subscribed_number_is_only_a_reply(
    client: Client, clock: ManualClock, acme: TenantFixture
) -> None:
    db = client.app[DB]
    await text_us(client, "yes")
    assert [t for t, _ in await event_types(db, acme.id)] == ["REPLIED"]
    assert await outbox(db) == []


async def test_help_answers_with_the_tenants_name_and_how_to_opt_out(
    client: Client, clock: ManualClock, acme: TenantFixture
) -> None:
    db = client.app[DB]
    await text_us(client, "HELP")
    [reply] = await outbox(db)
    assert reply["purpose"] == "help_reply"
    assert reply["payload"]["body"].startswith("Acme: ")
    assert "Reply STOP to opt out" in reply["payload"]["body"]
    assert [t for t, _ in await event_types(db, acme.id)] == ["HELP"]
    assert await dnc(db) == []


async def test_a_reply_is_recorded_and_attributed(
    client: Client, clock: ManualClock, acme: TenantFixture
) -> None:
    db = client.app[DB]
    person = await add_contact(client, acme, clock, PERSON)
    spring = await campaign(db, clock, acme.id)
    await job(db, clock, acme.id, campaign_id=spring, contact_id=person, status="sent",
              sent_at=clock.now())  # fmt: skip
    clock.advance(days=8)  # outside the 7-day window: no attribution
    await text_us(client, "Too late for the sale?")
    clock.advance(days=-6)
    await text_us(client, "don't stop, I love these")

    rows = await all_rows(
        db, "SELECT type, campaign_id, data FROM events WHERE type = 'REPLIED' ORDER BY id"
    )
    assert [(r["campaign_id"], r["data"]["body"]) for r in rows] == [
        (None, "Too late for the sale?"), (spring, "don't stop, I love these"),
    ]  # fmt: skip
    assert await dnc(db) == [] and await outbox(db) == []


# --- routing, replay, refusals ---------------------------------------------------------------


async def test_a_message_to_an_unknown_number_is_recorded_and_touches_nothing(
    client: Client, clock: ManualClock, acme: TenantFixture
) -> None:
    db = client.app[DB]
    before = await counts(db)

    await text_us(client, "STOP", to="+61411111111")

    after = await counts(db)
    assert after == {**before, "webhook_events": before["webhook_events"] + 1}
    assert await db.val(Sql("SELECT outcome FROM webhook_events")) == "unknown_number"


async def test_a_replayed_stop_changes_nothing(
    client: Client, clock: ManualClock, acme: TenantFixture
) -> None:
    """Even after the number was taken off the list by hand, a replay of the STOP that put it
    there is recognised and rolled back whole."""
    db = client.app[DB]
    params = twilio_inbound_params("STOP", sid="SMreplay")
    assert (await twilio_post(client, INBOUND, params)).status == 200
    await db.run(Sql("DELETE FROM do_not_contact"))
    before = await counts(db)

    again = await twilio_post(client, INBOUND, params)

    assert again.status == 200
    assert await counts(db) == before
    assert client.app[WEBHOOK_COUNTERS].handled[("twilio", "inbound", "duplicate")] == 1


@pytest.mark.parametrize("forgery", ["wrong_token", "tampered_body", "foreign_account"])
async def test_it_refuses_forged_twilio_messages_and_writes_nothing(
    client: Client, clock: ManualClock, acme: TenantFixture, forgery: str
) -> None:
    db = client.app[DB]
    params = twilio_inbound_params("STOP")
    before = await counts(db)

    if forgery == "wrong_token":
        response = await twilio_post(client, INBOUND, params, token="guessed-token")
    elif forgery == "tampered_body":
        response = await twilio_post(
            client, INBOUND, params, signed_params={**params, "Body": "Hello"}
        )
    else:
        response = await twilio_post(client, INBOUND, {**params, "AccountSid": "AC" + "1" * 32})

    assert response.status == 403
    assert await counts(db) == before
    assert params["AccountSid"] == TWILIO_SID


async def test_it_takes_sandbox_messages_signed_by_the_standardwebhooks_package(
    client: Client, clock: ManualClock, acme: TenantFixture
) -> None:
    db = client.app[DB]
    payload = {"message_id": "SMsb1", "from": PERSON, "to": OUR_NUMBER, "body": "STOP"}

    response = await sandbox_post(client, SANDBOX_INBOUND, payload, now=clock.now())

    assert response.status == 200, await response.text()
    assert await response.json() == {"outcome": "opt_out"}
    assert len(await dnc(db)) == 1


@pytest.mark.parametrize("forgery", ["stale", "tampered_body"])
async def test_it_refuses_stale_or_tampered_sandbox_messages(
    client: Client, clock: ManualClock, acme: TenantFixture, forgery: str
) -> None:
    db = client.app[DB]
    payload = {"message_id": "SMsb2", "from": PERSON, "to": OUR_NUMBER, "body": "hello"}
    before = await counts(db)
    if forgery == "stale":
        response = await sandbox_post(
            client, SANDBOX_INBOUND, payload, now=clock.now() - timedelta(seconds=301)
        )
    else:
        forged = (
            '{"message_id": "SMsb2", "from": "+61412345678", "to": "+61400000000", "body": "STOP"}'
        )
        response = await sandbox_post(
            client, SANDBOX_INBOUND, payload, now=clock.now(), body=forged
        )
    assert response.status == 403
    assert await counts(db) == before


async def test_the_sandbox_provider_simulates_a_person_texting_us(
    client: Client, clock: ManualClock, acme: TenantFixture
) -> None:
    db = client.app[DB]
    provider = client.app[PROVIDER]
    assert isinstance(provider, SandboxProvider)
    callback = provider.inbound_callback(from_=PERSON, to=OUR_NUMBER, body="help")
    assert callback.url == "https://sms.example.com/webhooks/sandbox/inbound"

    response = await client.post(SANDBOX_INBOUND, data=callback.body, headers=callback.headers)

    assert response.status == 200
    assert await response.json() == {"outcome": "help"}
    assert [r["purpose"] for r in await outbox(db)] == ["help_reply"]


# --- confirmation texts, pure ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Acme", "Acme"),
        ("Café “Ñoño” — Pizza 🍕", 'Café "Ñoño" - Pizza'),
        ("🍕🍕", "This sender"),
        (
            "Very Long Business Name Pty Ltd Trading As Something",
            "Very Long Business Name Pty Ltd Trading",
        ),
        ("Brackets [and] {braces}", "Brackets and braces"),
    ],
)
def test_it_names_the_tenant_in_gsm7_basic_characters(name: str, expected: str) -> None:
    assert name_for_sms(name) == expected


@pytest.mark.parametrize("purpose", ["optout_confirmation", "optin_confirmation", "help_reply"])
def test_every_reply_text_is_one_gsm7_part(purpose: Any) -> None:
    text = reply_text(purpose, "W" * 100)
    assert is_gsm7(text)
    assert len(text) <= 160
