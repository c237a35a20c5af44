"""Inbound messages (pack §10, §11) for both providers, on both backends: STOP, START, HELP and
replies with their effects committed before the answer, routing by the number texted,
forgeries refused with nothing written, replays ignored, one confirmation per 24 h; and the
group commit: a batch ends as one message after another would, no answer before its commit,
a failed batch loses nothing and half-applies nothing, opt-outs wait for the stop lock."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from smsapp.clock import ManualClock
from smsapp.config import DatabaseUrl, Settings
from smsapp.db import Database, Executor, Row, Sql
from smsapp.dnc import add_to_dnc
from smsapp.encoding import is_gsm7
from smsapp.engine.providers import SandboxProvider
from smsapp.inbound import (
    InboundMessage,
    InboundWriter,
    name_for_sms,
    receive,
    record_batch,
    reply_text,
)
from smsapp.keys import DB, PROVIDER
from smsapp.webhook_events import WEBHOOK_COUNTERS
from tests.conftest import TenantFactory, TenantFixture
from tests.support_db import GatedDatabase
from tests.test_campaigns import add_contact, queue, template
from tests.test_campaigns import campaign as create_campaign
from tests.test_import import commit, dry_run
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
    twilio_status_params,
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


# --- group commit ----------------------------------------------------------------------------

OTHER_NUMBER = "+61400000001"


def inbound(body: str, *, from_: str = PERSON, to: str = OUR_NUMBER,
            event_id: str | None = None) -> InboundMessage:  # fmt: skip
    sid = "SM" + uuid.uuid4().hex
    return InboundMessage(
        provider="twilio", event_id=event_id or sid, provider_message_id=sid,
        from_number=from_, to_number=to, body=body, payload={"Body": body, "From": from_},
    )  # fmt: skip


async def snapshot(db: Database, tenant_id: int) -> dict[str, Any]:
    """What inbound messages left in one tenant, named without ids (two tenants compare)."""

    async def rows(sql: str) -> list[tuple[Any, ...]]:
        return [tuple(r.values()) for r in await db.all(Sql(sql), t=tenant_id)]

    bodies = {
        r["id"]: r["body"]
        for r in await db.all(
            Sql("SELECT id, body FROM inbound_messages WHERE tenant_id = :t"), t=tenant_id
        )
    }

    return {
        "dnc": await rows(
            "SELECT phone_e164, source FROM do_not_contact WHERE tenant_id = :t ORDER BY phone_e164"
        ),
        "contacts": await rows(
            "SELECT phone_e164, consent_at IS NULL FROM contacts "
            "WHERE tenant_id = :t ORDER BY phone_e164"
        ),
        "jobs": await rows(
            "SELECT c.phone_e164, j.status, j.reason FROM send_jobs j "
            "JOIN contacts c ON c.id = j.contact_id WHERE j.tenant_id = :t "
            "ORDER BY j.id"
        ),
        "messages": await rows(
            "SELECT m.from_e164, m.body, m.classification, c.phone_e164 "
            "FROM inbound_messages m LEFT JOIN contacts c ON c.id = "
            "m.contact_id WHERE m.tenant_id = :t ORDER BY m.id"
        ),
        "events": [
            (
                r["type"],
                r["phone_e164"],
                r["campaign"],
                r["data"].get("body"),
                r["data"].get("reason"),
                bodies.get(r["data"].get("inbound_message_id")),
            )
            for r in await db.all(
                Sql(
                    "SELECT e.type, c.phone_e164, k.name AS campaign, e.data FROM events e "
                    "JOIN contacts c ON c.id = e.contact_id LEFT JOIN campaigns k "
                    "ON k.id = e.campaign_id WHERE e.tenant_id = :t AND e.type <> 'QUEUED' "
                    "ORDER BY e.id"
                ),
                t=tenant_id,
            )
        ],
        "outbox": await rows(
            "SELECT purpose, to_e164 FROM outbox WHERE tenant_id = :t ORDER BY id"
        ),
    }


async def test_a_batch_ends_exactly_as_its_messages_one_after_another(
    client: Client, clock: ManualClock, make_tenant: TenantFactory
) -> None:
    """Two tenants in the same state get the same texts: one tenant's as a single batch, the
    other's one transaction each. Everything they leave is the same, in the same order,
    including a person who writes STOP, START and STOP again within the batch, the same event
    twice in it, an event recorded by an earlier batch, and senders we never imported."""
    db = client.app[DB]
    states = {}
    for slug, our_number in (("batched", OUR_NUMBER), ("single", OTHER_NUMBER)):
        tenant = await make_tenant(slug)
        await number(db, clock, tenant.id, our_number)
        person = await add_contact(client, tenant, clock, PERSON)
        spring = await campaign(db, clock, tenant.id, name="Spring")
        await job(db, clock, tenant.id, campaign_id=spring, contact_id=person, status="sent",
                  sent_at=clock.now())  # fmt: skip
        await job(db, clock, tenant.id, campaign_id=await campaign(db, clock, tenant.id, "Later"),
                  contact_id=person, status="queued")  # fmt: skip
        listed = await add_contact(client, tenant, clock, "+61412000002")
        async with db.transaction() as tx:
            await add_to_dnc(tx, clock, tenant_id=tenant.id, phone_e164="+61412000002",
                             source="manual", reason=None, created_by=None)  # fmt: skip
        states[slug] = (tenant, our_number, listed)
    clock.advance(hours=1)

    def texts(to: str, tag: str) -> list[InboundMessage]:
        stop = inbound("STOP", to=to, event_id=f"{tag}-stop")
        return [
            inbound("seen before", to=to, event_id=f"{tag}-early"),
            stop,
            stop,  # the same event twice in one batch
            inbound("Start", to=to),
            inbound("stop please", to=to),  # listed again; confirmed less than 24 h ago
            inbound("yes", from_="+61412000002", to=to),  # on the list: an opt-in
            inbound("HELP", from_="+61412000003", to=to),  # never imported
            inbound("see you then", from_="+61412000003", to=to),
            inbound("YES", from_="+61412000004", to=to),  # not on the list: a reply
            inbound("STOP", from_="not a number", to=to),
            inbound("STOP", to="+61499999999"),  # no tenant has that number
        ]

    batched, single = texts(OUR_NUMBER, "b"), texts(OTHER_NUMBER, "s")
    assert await receive(db, clock, batched[0]) == "reply"
    assert await receive(db, clock, single[0]) == "reply"

    batch_outcomes = await record_batch(db, clock, batched)
    one_by_one = [await receive(db, clock, message) for message in single]

    assert batch_outcomes == one_by_one == [
        "duplicate", "opt_out", "duplicate", "opt_in", "opt_out", "opt_in", "help", "reply",
        "reply", "unusable_sender", "unknown_number",
    ]  # fmt: skip
    first = await snapshot(db, states["batched"][0].id)
    assert first == await snapshot(db, states["single"][0].id)
    assert first["dnc"] == [(PERSON, "stop_keyword")]
    assert [p for p, _ in first["outbox"]] == [
        "optout_confirmation", "optin_confirmation", "optin_confirmation", "help_reply",
    ]  # fmt: skip
    assert [e[0] for e in first["events"]] == [
        "REPLIED", "OPT_OUT", "CANCELLED", "RESUBSCRIBE", "OPT_OUT", "RESUBSCRIBE", "HELP",
        "REPLIED", "REPLIED",
    ]  # fmt: skip
    # Every message event names its own inbound message.
    assert all(e[3] == e[5] for e in first["events"] if e[0] != "CANCELLED")


async def test_no_message_is_answered_before_its_batch_has_committed(
    client: Client, clock: ManualClock, acme: TenantFixture
) -> None:
    db = client.app[DB]
    gated = GatedDatabase(db)
    writer = InboundWriter()
    answer = asyncio.create_task(writer.receive(gated, clock, inbound("STOP")))
    await asyncio.wait_for(gated.at_commit.wait(), 10)
    for _ in range(20):
        await asyncio.sleep(0)  # let anything that would answer early run
    assert not answer.done()
    assert await dnc(db) == []  # not committed yet: nobody sees it

    gated.gate.set()

    assert await asyncio.wait_for(answer, 10) == "opt_out"
    # Answered: the opt-out is already there for any sender that looks.
    assert len(await dnc(db)) == 1


async def test_messages_waiting_together_are_one_transaction(
    client: Client, clock: ManualClock, acme: TenantFixture
) -> None:
    db = client.app[DB]
    gated = GatedDatabase(db)
    writer = InboundWriter()
    first = asyncio.create_task(writer.receive(gated, clock, inbound("hello")))
    await asyncio.wait_for(gated.at_commit.wait(), 10)  # the first batch holds one message
    more = [
        asyncio.create_task(writer.receive(gated, clock, inbound(
            "STOP" if n % 2 else "thanks", from_=f"+6141200{n:04d}")))
        for n in range(20)
    ]  # fmt: skip
    for _ in range(20):
        await asyncio.sleep(0)
    gated.gate.set()

    outcomes = await asyncio.wait_for(asyncio.gather(first, *more), 10)

    assert outcomes == ["reply"] + ["reply", "opt_out"] * 10
    assert gated.transactions == 2 and writer.batches == 2
    assert len(await dnc(db)) == 10


async def test_a_failed_batch_writes_nothing_and_its_messages_are_written_one_by_one(
    client: Client, clock: ManualClock, acme: TenantFixture
) -> None:
    db = client.app[DB]
    gated = GatedDatabase(db)
    gated.fail = True  # the batch's transaction fails at its end; each message alone succeeds
    writer = InboundWriter()
    before = await counts(db)
    messages = [inbound("STOP", from_=f"+6141200{n:04d}") for n in range(3)]
    answers = [asyncio.create_task(writer.receive(gated, clock, m)) for m in messages]
    await asyncio.wait_for(gated.at_commit.wait(), 10)
    assert gated.transactions == 1  # the batch of three, about to fail: none of it is seen
    assert await counts(db) == before
    gated.gate.set()

    assert await asyncio.wait_for(asyncio.gather(*answers), 10) == ["opt_out"] * 3
    assert gated.transactions == 4  # the failed batch, then one per message
    assert len(await dnc(db)) == 3
    assert len(await outbox(db)) == 3
    assert len(await all_rows(db, "SELECT id FROM webhook_events")) == 3


async def test_a_bad_message_fails_only_its_own_request(
    client: Client, clock: ManualClock, acme: TenantFixture
) -> None:
    db = client.app[DB]
    writer = InboundWriter()
    bad = InboundMessage(provider="twilio", event_id="SMbad", provider_message_id="SMbad",
                         from_number=PERSON, to_number=OUR_NUMBER, body="STOP",
                         payload={"unstorable": {1, 2}})  # fmt: skip
    good = [inbound("hello", from_=f"+6141200{n:04d}") for n in range(3)]

    answers = await asyncio.gather(
        *(writer.receive(db, clock, m) for m in [good[0], bad, *good[1:]]),
        return_exceptions=True,
    )

    assert answers[0] == answers[2] == answers[3] == "reply"
    assert isinstance(answers[1], TypeError)
    assert await dnc(db) == []  # the bad STOP wrote nothing
    assert len(await all_rows(db, "SELECT id FROM inbound_messages")) == 3


class LockWatch:
    """The real database; `asked` is set once a transaction asks for a stop lock."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.dialect = db.dialect
        self.asked = asyncio.Event()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Executor]:
        async with self.db.transaction() as tx:
            real = tx.stop_lock

            async def stop_lock(tenant_id: int) -> None:
                self.asked.set()
                await real(tenant_id)

            tx.stop_lock = stop_lock  # type: ignore[method-assign]
            yield tx

    def __getattr__(self, name: str) -> Any:
        return getattr(self.db, name)


async def stop_lock_waiting(db: Database, tenant_id: int) -> bool:
    """Whether a transaction waits for the tenant's stop lock (asked, not granted)."""
    if db.dialect == "postgresql":
        waiting = await db.val(Sql(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
            "AND objid = :t"), t=tenant_id)  # fmt: skip
        return bool(waiting)
    lock = db.stop_locks[tenant_id]  # type: ignore[attr-defined]
    return bool(lock._writers_waiting)


async def test_an_opt_out_waits_for_the_senders_already_checked_and_a_reply_does_not(
    client: Client, clock: ManualClock, acme: TenantFixture
) -> None:
    """A sender holds the tenant's stop lock shared (its provider calls under way): a STOP is
    not answered, nor written, until the sender is done; a plain reply needs no lock."""
    db = client.app[DB]
    watch = LockWatch(db)
    writer = InboundWriter()
    async with db.sender_session(acme.id) as session:
        async with session.transaction():
            pass  # the claim committed; the session keeps the lock shared
        assert await writer.receive(watch, clock, inbound("see you")) == "reply"
        assert not watch.asked.is_set()
        stop = asyncio.create_task(writer.receive(watch, clock, inbound("STOP")))
        await asyncio.wait_for(watch.asked.wait(), 10)
        for _ in range(200):
            if await stop_lock_waiting(db, acme.id):
                break
        assert await stop_lock_waiting(db, acme.id)
        assert not stop.done()
        assert await dnc(db) == []
    # The sender is done: the STOP takes the lock, commits and is answered.
    assert await asyncio.wait_for(stop, 10) == "opt_out"
    assert len(await dnc(db)) == 1


async def test_a_busy_stop_lock_holds_up_only_the_opt_outs_it_concerns(
    client: Client, clock: ManualClock, acme: TenantFixture, make_tenant: TenantFactory
) -> None:
    """Acme's sender has provider calls under way. Acme's STOP waits for them, set aside in a
    queue of its own; the rest of its batch (Acme's reply, another tenant's STOP and reply) is
    written at once on PostgreSQL. (SQLite has one writer, and a transaction waiting for a
    stop lock holds it: there everything waits, as any write does.)"""
    db = client.app[DB]
    beta = await make_tenant("beta")
    await number(db, clock, beta.id, OTHER_NUMBER)
    writer = InboundWriter(lock_wait=0.01)
    texts = [
        inbound("STOP"),
        inbound("see you", from_="+61412000001"),
        inbound("STOP", to=OTHER_NUMBER),
        inbound("thanks", from_="+61412000001", to=OTHER_NUMBER),
    ]
    async with db.sender_session(acme.id) as session:
        async with session.transaction():
            pass
        answers = [asyncio.create_task(writer.receive(db, clock, t)) for t in texts]
        if db.dialect == "postgresql":
            others = await asyncio.wait_for(asyncio.gather(*answers[1:]), 10)
            assert others == ["reply", "opt_out", "reply"]
            assert not answers[0].done()
            assert await dnc(db) == [
                {"tenant_id": beta.id, "phone_e164": PERSON, "source": "stop_keyword"}
            ]
    assert await asyncio.wait_for(asyncio.gather(*answers), 10) == [
        "opt_out", "reply", "opt_out", "reply",
    ]  # fmt: skip
    assert sorted(r["tenant_id"] for r in await dnc(db)) == sorted([acme.id, beta.id])


# --- Erasure ---------------------------------------------------------------------------------

BOB = "+61413000111"


async def status_callback(client: Client, reference: str, sid: str, to: str) -> None:
    params = {**twilio_status_params(sid, "delivered"), "To": to}
    response = await twilio_post(client, f"/webhooks/twilio/status?ref={reference}", params)
    assert response.status == 200, await response.text()


async def test_erasing_a_person_who_texted_us_leaves_their_number_and_words_nowhere(
    client: Client, clock: ManualClock, acme: TenantFixture
) -> None:
    """Imported (and in an upload not yet committed), sent a campaign message (its status
    callback in), they text STOP — confirmed, sent, its status callback in — then HELP, whose
    answer waits in the outbox. Erased, their number and texts are gone from the import lines,
    the callbacks as received and our texts to them; the waiting answer is cancelled, the upload
    commits without them, and another person's rows are untouched."""
    db = client.app[DB]
    csv = (
        "Mobile,Email,First Name,Last Name,State,Tags,Tier\n"
        "0412 345 678,ann@example.com,Ann,Lee,NSW,vip,gold\n"
        "0413 000 111,bob@example.com,Bob,Ray,VIC,,\n"
    )
    status, imported = await dry_run(client, acme, csv)
    assert status == 201, imported
    assert (await commit(client, acme, imported["import_id"]))[0] == 200
    status, pending = await dry_run(client, acme, csv.replace("Ann,Lee", "Ann,Li"))
    assert status == 201, pending
    ann = await db.val(Sql("SELECT id FROM contacts WHERE phone_e164 = :p"), p=PERSON)
    bob = await db.val(Sql("SELECT id FROM contacts WHERE phone_e164 = :p"), p=BOB)
    spring = await campaign(db, clock, acme.id)
    for contact_id, sid, to in ((ann, "SMann", PERSON), (bob, "SMbob", BOB)):
        sent = await job(db, clock, acme.id, campaign_id=spring, contact_id=contact_id,
                         status="sent", provider_message_id=sid)  # fmt: skip
        await status_callback(client, sent.attempt_id, sid, to)
    await text_us(client, "STOP", sid="SMstop")
    await db.run(
        Sql("UPDATE outbox SET processed_at = :now, attempt_id = 'a1', "
            "provider_message_id = 'SMconfirm'"),
        now=clock.now(),
    )  # fmt: skip
    await status_callback(client, "a1", "SMconfirm", PERSON)
    await text_us(client, "HELP", sid="SMhelp")

    erased = await client.delete(f"/api/contacts/{ann}", headers=acme.auth("admin"))
    assert erased.status == 200, await erased.text()

    lines = await all_rows(
        db, "SELECT import_batch_id AS batch, row_number, data, raw, decision, reasons, "
        "contact_id, previous_phone_e164 FROM import_rows ORDER BY import_batch_id, row_number",
    )  # fmt: skip
    anns = [line for line in lines if line["row_number"] == 2]
    assert [(line["decision"], line["reasons"]) for line in anns] == [
        ("create", []),  # committed: the decision that was applied stays
        ("invalid_phone", ["erased"]),  # not committed: it can no longer bring them back
    ]
    for line in anns:
        assert line["data"] == {"row": 2, "phone_raw": "", "phone_e164": None, "problem": "erased"}
        assert (line["raw"], line["previous_phone_e164"]) == ([], None)
    bobs = [line for line in lines if line["row_number"] == 3]
    assert [line["raw"][2] for line in bobs] == ["Bob", "Bob"]
    callbacks = await all_rows(
        db, "SELECT kind, message_id, payload FROM webhook_events ORDER BY id"
    )
    assert [(c["kind"], c["message_id"]) for c in callbacks] == [
        ("status", "SMann"), ("status", "SMbob"), ("inbound", "SMstop"),
        ("status", "SMconfirm"), ("inbound", "SMhelp"),
    ]  # fmt: skip
    assert [c["payload"] == {"erased": True} for c in callbacks] == [
        True, False, True, True, True,
    ]  # fmt: skip
    assert callbacks[1]["payload"]["To"] == BOB
    texts = await all_rows(
        db, "SELECT purpose, to_e164, payload, processed_at IS NOT NULL AS done, last_error "
        "FROM outbox ORDER BY id",
    )  # fmt: skip
    assert [(t["purpose"], t["to_e164"], t["payload"], bool(t["done"]), t["last_error"])
            for t in texts] == [
        ("optout_confirmation", None, {"erased": True}, True, None),
        ("help_reply", None, {"erased": True}, True, "erased"),
    ]  # fmt: skip
    everything = [lines, callbacks[:1] + callbacks[2:], texts,
                  await all_rows(db, "SELECT from_e164, body FROM inbound_messages")]  # fmt: skip
    assert PERSON not in repr(everything) and "412345678" not in repr(everything)
    assert "Ann" not in repr(everything) and "ann@example.com" not in repr(everything)

    assert (await commit(client, acme, pending["import_id"]))[0] == 200
    phones = await all_rows(db, "SELECT phone_e164 FROM contacts ORDER BY id")
    assert [p["phone_e164"] for p in phones] == [None, BOB]
