"""Status callbacks (pack §7, §11) for both providers, on both backends: signatures made by the
providers' own libraries accepted, forgeries refused with nothing written, replays ignored,
the state machine forward only, and a callback that beats the sender's save still finds its
job."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import unused_port

from smsapp.clock import ManualClock
from smsapp.config import DatabaseUrl, Settings
from smsapp.db import Database, Row, Sql
from smsapp.engine import delivery_status
from smsapp.engine.delivery_status import StatusCallback, StatusWriter, advance_job, record_batch
from smsapp.engine.providers import Outgoing, SandboxProvider
from smsapp.engine.sandbox_pump import post_due_sandbox_callbacks, retry_delay
from smsapp.engine.status_machine import transition
from smsapp.keys import DB, PROVIDER
from smsapp.webhook_events import WEBHOOK_COUNTERS
from tests.conftest import TenantFactory
from tests.webhook_support import (
    OLD_SANDBOX_SECRET,
    OUR_NUMBER,
    PERSON,
    SANDBOX_SECRET,
    TWILIO_SID,
    Client,
    Job,
    campaign,
    contact,
    counts,
    job,
    sandbox_post,
    twilio_post,
    twilio_signature_for,
    twilio_status_params,
    webhook_settings,
)


@pytest.fixture
def settings(database_url: DatabaseUrl, tmp_path: Path) -> Settings:
    return webhook_settings(database_url, tmp_path / "data")


async def new_job(
    client: Client, clock: ManualClock, make_tenant: TenantFactory, **options: Any
) -> Job:
    db = client.app[DB]
    tenant = await make_tenant("acme")
    campaign_id = await campaign(db, clock, tenant.id)
    contact_id = await contact(db, clock, tenant.id)
    return await job(db, clock, tenant.id, campaign_id=campaign_id, contact_id=contact_id,
                     **options)  # fmt: skip


async def job_row(db: Database, job_id: int) -> Row:
    row = await db.one(Sql("SELECT * FROM send_jobs WHERE id = :id"), id=job_id)
    assert row is not None
    return row


async def job_events(db: Database, job_id: int) -> list[Row]:
    return await db.all(
        Sql("SELECT type, data FROM events WHERE send_job_id = :id ORDER BY id"), id=job_id
    )


async def outcomes(db: Database) -> list[str | None]:
    rows = await db.all(Sql("SELECT outcome FROM webhook_events ORDER BY id"))
    return [r["outcome"] for r in rows]


# --- the state machine, pure -----------------------------------------------------------------

TRANSITIONS: list[tuple[str, str, tuple[str, tuple[str, ...]] | None]] = [
    ("sending", "queued", None),
    ("sending", "accepted", None),
    ("sending", "scheduled", None),
    ("sending", "sent", ("sent", ("SENT",))),
    ("sending", "delivered", ("delivered", ("SENT", "DELIVERED"))),
    ("sending", "undelivered", ("undelivered", ("SENT", "UNDELIVERED"))),
    ("sending", "failed", ("failed", ("SENT", "FAILED"))),
    ("unknown", "delivered", ("delivered", ("SENT", "DELIVERED"))),
    ("queued", "sent", ("sent", ("SENT",))),
    ("sent", "sent", None),
    ("sent", "delivered", ("delivered", ("DELIVERED",))),
    ("sent", "DELIVERED", ("delivered", ("DELIVERED",))),
    ("sent", "read", ("delivered", ("DELIVERED",))),
    ("sent", "undelivered", ("undelivered", ("UNDELIVERED",))),
    ("sent", "failed", ("failed", ("FAILED",))),
    ("delivered", "sent", None),
    ("delivered", "failed", None),
    ("undelivered", "delivered", None),
    ("failed", "delivered", None),
    ("sent", "canceled", None),
    ("sent", "receiving", None),
    ("skipped", "delivered", None),
    ("cancelled", "sent", None),
]


@pytest.mark.parametrize(("current", "provider_status", "expected"), TRANSITIONS)
def test_it_moves_jobs_forward_only(
    current: str, provider_status: str, expected: tuple[str, tuple[str, ...]] | None
) -> None:
    step = transition(current, provider_status)
    if expected is None:
        assert step is None
    else:
        assert step is not None
        assert (step.status, step.events) == expected


def test_it_backs_off_sandbox_redeliveries() -> None:
    assert [retry_delay(n).total_seconds() for n in (1, 2, 3, 8, 20)] == [5, 10, 20, 300, 300]


# --- Twilio ----------------------------------------------------------------------------------


async def test_it_takes_a_twilio_callback_signed_by_twilios_validator(
    client: Client, clock: ManualClock, make_tenant: TenantFactory
) -> None:
    db = client.app[DB]
    sent = await new_job(client, clock, make_tenant, status="sent", provider_message_id="SM1",
                         sent_at=clock.now())  # fmt: skip
    clock.advance(seconds=30)

    response = await twilio_post(
        client, f"/webhooks/twilio/status?ref={sent.attempt_id}",
        twilio_status_params("SM1", "delivered"),
    )  # fmt: skip

    assert response.status == 200, await response.text()
    row = await job_row(db, sent.id)
    assert row["status"] == "delivered"
    assert row["delivered_at"] == clock.now()
    events = await job_events(db, sent.id)
    assert [(e["type"], e["data"]) for e in events] == [
        ("DELIVERED", {"error_code": None, "provider_message_id": "SM1"})
    ]
    assert await outcomes(db) == ["delivered"]
    assert client.app[WEBHOOK_COUNTERS].handled[("twilio", "status", "delivered")] == 1


async def test_it_finds_the_job_by_the_provider_id_when_the_url_has_no_reference(
    client: Client, clock: ManualClock, make_tenant: TenantFactory
) -> None:
    db = client.app[DB]
    sent = await new_job(client, clock, make_tenant, status="sent", provider_message_id="SM2")
    params = twilio_status_params("SM2", "undelivered", error_code="30003")

    response = await twilio_post(client, "/webhooks/twilio/status", params)

    assert response.status == 200
    row = await job_row(db, sent.id)
    assert (row["status"], row["error_code"]) == ("undelivered", "30003")
    events = await job_events(db, sent.id)
    assert [(e["type"], e["data"]) for e in events] == [
        ("UNDELIVERED", {"error_code": "30003", "provider_message_id": "SM2"})
    ]


async def test_a_callback_that_beats_the_senders_save_finds_its_job_and_emits_sent_once(
    client: Client, clock: ManualClock, make_tenant: TenantFactory
) -> None:
    """The job is still `sending` and has no provider id yet: the reference in the URL finds
    it; the callback moves it out of `sending`, so it emits SENT then DELIVERED, and the
    sender's own conditional save afterwards changes nothing."""
    db = client.app[DB]
    sending = await new_job(client, clock, make_tenant, status="sending")

    response = await twilio_post(
        client, f"/webhooks/twilio/status?ref={sending.attempt_id}",
        twilio_status_params("SM3", "delivered"),
    )  # fmt: skip

    assert response.status == 200
    row = await job_row(db, sending.id)
    assert row["status"] == "delivered"
    assert row["provider_message_id"] == "SM3"
    assert row["sent_at"] == clock.now()
    assert [e["type"] for e in await job_events(db, sending.id)] == ["SENT", "DELIVERED"]
    # The sender's write after the provider answered: `… WHERE status = 'sending'`.
    saved = await db.run(
        Sql("UPDATE send_jobs SET status = 'sent', provider_message_id = 'SM3' "
            "WHERE id = :id AND status = 'sending'"), id=sending.id,
    )  # fmt: skip
    assert saved == 0
    assert (await job_row(db, sending.id))["status"] == "delivered"


async def test_out_of_order_callbacks_leave_the_job_delivered(
    client: Client, clock: ManualClock, make_tenant: TenantFactory
) -> None:
    db = client.app[DB]
    sending = await new_job(client, clock, make_tenant, status="sending")
    path = f"/webhooks/twilio/status?ref={sending.attempt_id}"

    delivered = await twilio_post(client, path, twilio_status_params("SM4", "delivered"))
    late_sent = await twilio_post(client, path, twilio_status_params("SM4", "sent"))
    late_queued = await twilio_post(client, path, twilio_status_params("SM4", "queued"))

    assert (delivered.status, late_sent.status, late_queued.status) == (200, 200, 200)
    assert (await job_row(db, sending.id))["status"] == "delivered"
    assert [e["type"] for e in await job_events(db, sending.id)] == ["SENT", "DELIVERED"]
    assert await outcomes(db) == ["delivered", "stale", "ignored"]


async def test_a_duplicate_callback_changes_nothing(
    client: Client, clock: ManualClock, make_tenant: TenantFactory
) -> None:
    db = client.app[DB]
    sending = await new_job(client, clock, make_tenant, status="sending")
    path = f"/webhooks/twilio/status?ref={sending.attempt_id}"
    params = twilio_status_params("SM5", "sent")

    first = await twilio_post(client, path, params)
    before = await counts(db)
    row_before = await job_row(db, sending.id)
    again = await twilio_post(client, path, params)

    assert (first.status, again.status) == (200, 200)
    assert await counts(db) == before
    assert await job_row(db, sending.id) == row_before
    assert client.app[WEBHOOK_COUNTERS].handled[("twilio", "status", "duplicate")] == 1


async def test_twilios_idempotency_token_is_the_replay_key_when_present(
    client: Client, clock: ManualClock, make_tenant: TenantFactory
) -> None:
    db = client.app[DB]
    sent = await new_job(client, clock, make_tenant, status="sent", provider_message_id="SM6")
    path = f"/webhooks/twilio/status?ref={sent.attempt_id}"
    token = {"I-Twilio-Idempotency-Token": "idem-1"}

    await twilio_post(client, path, twilio_status_params("SM6", "delivered"), headers=token)
    await twilio_post(client, path, twilio_status_params("SM6", "delivered"), headers=token)

    keys = await db.all(Sql("SELECT provider, provider_event_id FROM webhook_events"))
    assert keys == [{"provider": "twilio", "provider_event_id": "idem-1"}]


async def test_a_carrier_opt_out_fails_the_job_and_lists_the_number(
    client: Client, clock: ManualClock, make_tenant: TenantFactory
) -> None:
    db = client.app[DB]
    sent = await new_job(client, clock, make_tenant, status="sent", provider_message_id="SM7")

    response = await twilio_post(
        client, f"/webhooks/twilio/status?ref={sent.attempt_id}",
        twilio_status_params("SM7", "failed", error_code="21610"),
    )  # fmt: skip

    assert response.status == 200
    row = await job_row(db, sent.id)
    assert (row["status"], row["error_code"]) == ("failed", "21610")
    entry = await db.one(Sql("SELECT tenant_id, phone_e164, source FROM do_not_contact"))
    assert entry == {"tenant_id": sent.tenant_id, "phone_e164": PERSON, "source": "provider"}
    events = await job_events(db, sent.id)
    assert [(e["type"], e["data"]["error_code"]) for e in events] == [("FAILED", "21610")]


async def test_an_unknown_or_outbox_reference_touches_no_job(
    client: Client, clock: ManualClock, make_tenant: TenantFactory
) -> None:
    db = client.app[DB]
    sent = await new_job(client, clock, make_tenant, status="sent", provider_message_id="SM8")
    await db.run(
        Sql("INSERT INTO outbox (tenant_id, kind, purpose, to_e164, payload, available_at, "
            "attempts, attempt_id, created_at, updated_at) VALUES (:t, 'sms', 'help_reply', "
            ":to, '{}', :now, 1, 'att_outbox_1', :now, :now)"),
        t=sent.tenant_id, to=PERSON, now=clock.now(),
    )  # fmt: skip
    before = await job_row(db, sent.id)

    outbox = await twilio_post(client, "/webhooks/twilio/status?ref=att_outbox_1",
                               twilio_status_params("SM9", "delivered"))  # fmt: skip
    unknown = await twilio_post(client, "/webhooks/twilio/status?ref=att_nobody",
                                twilio_status_params("SM10", "delivered"))  # fmt: skip

    assert (outbox.status, unknown.status) == (200, 200)
    assert await outcomes(db) == ["outbox", "unknown_message"]
    assert await job_row(db, sent.id) == before
    assert await db.val(Sql("SELECT count(*) FROM events")) == 0


async def test_a_callback_planned_on_a_stale_read_never_moves_a_job_back(
    client: Client, clock: ManualClock, make_tenant: TenantFactory
) -> None:
    """The job was read as `sending`, then the sender and a callback moved it on before this
    callback's transaction: the conditional UPDATE finds it moved, re-reads, and stops."""
    db = client.app[DB]
    moved_on = await new_job(client, clock, make_tenant, status="delivered",
                             provider_message_id="SM13")  # fmt: skip
    stale_read = {**(await job_row(db, moved_on.id)), "status": "sending"}
    callback = StatusCallback(provider="twilio", event_id="e1", reference=moved_on.attempt_id,
                              provider_message_id="SM13", status="sent", error_code=None,
                              payload={})  # fmt: skip

    async with db.transaction() as tx:
        outcome = await advance_job(tx, stale_read, callback, now=clock.now())

    assert outcome == "stale"
    assert (await job_row(db, moved_on.id))["status"] == "delivered"
    assert await job_events(db, moved_on.id) == []


async def test_an_unknown_job_is_settled_by_its_callback(
    client: Client, clock: ManualClock, make_tenant: TenantFactory
) -> None:
    db = client.app[DB]
    unsettled = await new_job(client, clock, make_tenant, status="unknown")

    await twilio_post(client, f"/webhooks/twilio/status?ref={unsettled.attempt_id}",
                      twilio_status_params("SM11", "delivered"))  # fmt: skip

    assert (await job_row(db, unsettled.id))["status"] == "delivered"
    assert [e["type"] for e in await job_events(db, unsettled.id)] == ["SENT", "DELIVERED"]


@pytest.mark.parametrize(
    "forgery", ["wrong_token", "tampered_body", "tampered_query", "foreign_account", "unsigned"]
)
async def test_it_refuses_forged_twilio_callbacks_and_writes_nothing(
    client: Client, clock: ManualClock, make_tenant: TenantFactory, forgery: str
) -> None:
    db = client.app[DB]
    sending = await new_job(client, clock, make_tenant, status="sending")
    path = f"/webhooks/twilio/status?ref={sending.attempt_id}"
    params = twilio_status_params("SM12", "delivered", error_code="21610")
    before, row_before = await counts(db), await job_row(db, sending.id)

    if forgery == "wrong_token":
        response = await twilio_post(client, path, params, token="not-our-token")
    elif forgery == "tampered_body":
        signed = {**params, "MessageStatus": "sent", "SmsStatus": "sent"}
        response = await twilio_post(client, path, params, signed_params=signed)
    elif forgery == "tampered_query":
        response = await client.post(
            path + "x", data=params,
            headers={"X-Twilio-Signature": twilio_signature_for(path, params)},
        )  # fmt: skip
    elif forgery == "foreign_account":
        response = await twilio_post(client, path, {**params, "AccountSid": "AC" + "9" * 32})
    else:
        response = await client.post(path, data=params)

    assert response.status == 403
    assert await counts(db) == before
    assert await job_row(db, sending.id) == row_before
    reason = "foreign_account" if forgery == "foreign_account" else "bad_signature"
    assert client.app[WEBHOOK_COUNTERS].rejected[("twilio", reason)] == 1


async def test_a_signed_callback_without_a_message_id_is_refused_as_malformed(
    client: Client, clock: ManualClock
) -> None:
    db = client.app[DB]
    before = await counts(db)
    response = await twilio_post(client, "/webhooks/twilio/status",
                                 {"AccountSid": TWILIO_SID, "MessageStatus": "sent"})  # fmt: skip
    assert response.status == 400
    assert await counts(db) == before


# --- group commit ----------------------------------------------------------------------------


def status(job: Job | None, status: str, event_id: str, sid: str = "SMb") -> StatusCallback:
    return StatusCallback(provider="twilio", event_id=event_id,
                          reference=job.attempt_id if job else "att_nobody",
                          provider_message_id=sid, status=status, error_code=None,
                          payload={"MessageStatus": status})  # fmt: skip


async def test_a_batch_applies_its_callbacks_in_order_as_one_by_one_would(
    client: Client, clock: ManualClock, make_tenant: TenantFactory
) -> None:
    db = client.app[DB]
    tenant = await make_tenant("acme")
    spring = await campaign(db, clock, tenant.id)
    fresh = await job(db, clock, tenant.id, campaign_id=spring,
                      contact_id=await contact(db, clock, tenant.id, "+61412000001"))  # fmt: skip
    done = await job(db, clock, tenant.id, campaign_id=spring, status="delivered",
                     provider_message_id="SMdone",
                     contact_id=await contact(db, clock, tenant.id, "+61412000002"))  # fmt: skip
    await twilio_post(client, f"/webhooks/twilio/status?ref={done.attempt_id}",
                      twilio_status_params("SMdone", "failed"))  # recorded before  # fmt: skip
    batch = [
        status(fresh, "sent", "e1", "SMfresh"),
        status(fresh, "queued", "e2", "SMfresh"),
        status(fresh, "delivered", "e3", "SMfresh"),
        status(fresh, "delivered", "e3", "SMfresh"),  # the same event twice in one batch
        status(done, "sent", "e4", "SMdone"),
        status(done, "failed", "SMdone:failed", "SMdone"),  # the one recorded before
        status(None, "delivered", "e5", "SMnobody"),
    ]

    outcomes = await record_batch(db, clock, batch)

    assert outcomes == [
        "sent", "ignored", "delivered", "duplicate", "stale", "duplicate", "unknown_message",
    ]  # fmt: skip
    row = await job_row(db, fresh.id)
    assert (row["status"], row["provider_message_id"], row["sent_at"], row["delivered_at"]) == (
        "delivered", "SMfresh", clock.now(), clock.now(),
    )  # fmt: skip
    assert [(e["type"], e["data"]) for e in await job_events(db, fresh.id)] == [
        ("SENT", {"provider_message_id": "SMfresh"}),
        ("DELIVERED", {"provider_message_id": "SMfresh", "error_code": None}),
    ]
    assert (await job_row(db, done.id))["status"] == "delivered"
    recorded = await db.all(Sql("SELECT provider_event_id, outcome FROM webhook_events "
                                "ORDER BY provider_event_id"))  # fmt: skip
    assert {r["provider_event_id"]: r["outcome"] for r in recorded} == {
        "SMdone:failed": "stale", "e1": "sent", "e2": "ignored", "e3": "delivered",
        "e4": "stale", "e5": "unknown_message",
    }  # fmt: skip


async def test_the_writer_answers_each_request_once_its_batch_has_committed(
    client: Client, clock: ManualClock, make_tenant: TenantFactory
) -> None:
    db = client.app[DB]
    tenant = await make_tenant("acme")
    spring = await campaign(db, clock, tenant.id)
    jobs = [
        await job(db, clock, tenant.id, campaign_id=spring,
                  contact_id=await contact(db, clock, tenant.id, f"+6141200{n:04d}"))
        for n in range(30)
    ]  # fmt: skip
    writer = StatusWriter()

    outcomes = await asyncio.gather(*(
        writer.record(db, clock, status(j, "delivered", f"e{n}", f"SM{n}"))
        for n, j in enumerate(jobs)
    ))  # fmt: skip

    assert outcomes == ["delivered"] * 30
    delivered = await db.val(Sql("SELECT count(*) FROM send_jobs WHERE status = 'delivered'"))
    assert delivered == 30
    assert await db.val(Sql("SELECT count(*) FROM events WHERE type = 'SENT'")) == 30


async def test_a_failed_batch_fails_its_requests_and_the_next_batch_goes_on(
    client: Client, clock: ManualClock, make_tenant: TenantFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = client.app[DB]
    sending = await new_job(client, clock, make_tenant, status="sending")
    writer = StatusWriter()
    real = delivery_status.record_batch

    async def broken(*args: Any) -> list[str]:
        raise ConnectionError("database went away")

    monkeypatch.setattr(delivery_status, "record_batch", broken)
    with pytest.raises(RuntimeError, match="database went away"):
        await writer.record(db, clock, status(sending, "delivered", "e1"))
    monkeypatch.setattr(delivery_status, "record_batch", real)
    assert await writer.record(db, clock, status(sending, "delivered", "e1")) == "delivered"


# --- the sandbox (Standard Webhooks) ---------------------------------------------------------


def sandbox_status_payload(job: Job, status: str, message_id: str = "SB1") -> dict[str, str]:
    return {
        "type": "message.status",
        "message_id": message_id,
        "reference": job.attempt_id,
        "status": status,
        "to": PERSON,
        "from": OUR_NUMBER,
        "timestamp": "2026-01-05T00:00:05+00:00",
    }


@pytest.mark.parametrize("secret", [SANDBOX_SECRET, OLD_SANDBOX_SECRET])
async def test_it_takes_a_sandbox_callback_signed_by_the_standardwebhooks_package(
    client: Client, clock: ManualClock, make_tenant: TenantFactory, secret: str
) -> None:
    db = client.app[DB]
    sending = await new_job(client, clock, make_tenant, status="sending")

    response = await sandbox_post(
        client, f"/webhooks/sandbox/status?ref={sending.attempt_id}",
        sandbox_status_payload(sending, "delivered"), now=clock.now(), secret=secret,
    )  # fmt: skip

    assert response.status == 200, await response.text()
    assert await response.json() == {"outcome": "delivered"}
    assert (await job_row(db, sending.id))["status"] == "delivered"


@pytest.mark.parametrize(
    "forgery", ["wrong_secret", "tampered_body", "stale", "future", "unsigned"]
)
async def test_it_refuses_forged_or_stale_sandbox_callbacks_and_writes_nothing(
    client: Client, clock: ManualClock, make_tenant: TenantFactory, forgery: str
) -> None:
    db = client.app[DB]
    sending = await new_job(client, clock, make_tenant, status="sending")
    path = f"/webhooks/sandbox/status?ref={sending.attempt_id}"
    payload = sandbox_status_payload(sending, "delivered")
    before, row_before = await counts(db), await job_row(db, sending.id)
    now = clock.now()

    if forgery == "wrong_secret":
        other = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVowMTIzNDU="
        response = await sandbox_post(client, path, payload, now=now, secret=other)
    elif forgery == "tampered_body":
        tampered = '{"message_id": "SB1", "status": "failed", "error_code": "21610"}'
        response = await sandbox_post(client, path, payload, now=now, body=tampered)
    elif forgery == "stale":
        response = await sandbox_post(client, path, payload, now=now - timedelta(minutes=6))
    elif forgery == "future":
        response = await sandbox_post(client, path, payload, now=now + timedelta(minutes=6))
    else:
        response = await client.post(path, json=payload)

    assert response.status == 403
    assert await counts(db) == before
    assert await job_row(db, sending.id) == row_before
    reason = "stale_timestamp" if forgery in ("stale", "future") else "bad_signature"
    assert client.app[WEBHOOK_COUNTERS].rejected[("sandbox", reason)] == 1


async def test_it_takes_a_timestamp_within_five_minutes_either_way(
    client: Client, clock: ManualClock, make_tenant: TenantFactory
) -> None:
    sending = await new_job(client, clock, make_tenant, status="sending")
    path = f"/webhooks/sandbox/status?ref={sending.attempt_id}"
    late = await sandbox_post(client, path, sandbox_status_payload(sending, "sent"),
                              now=clock.now() - timedelta(minutes=4))  # fmt: skip
    early = await sandbox_post(client, path, sandbox_status_payload(sending, "delivered"),
                               now=clock.now() + timedelta(minutes=4))  # fmt: skip
    assert (late.status, early.status) == (200, 200)


async def test_the_sandbox_callbacks_reach_the_webhook_through_the_pump(
    client: Client, clock: ManualClock, make_tenant: TenantFactory
) -> None:
    """End to end with the real provider and a real listening server: the sandbox accepts a
    message whose job is still `sending` (no provider id saved), and its signed callback,
    POSTed by the pump once due, settles the job; posting again delivers nothing twice."""
    db = client.app[DB]
    provider = client.app[PROVIDER]
    assert isinstance(provider, SandboxProvider)
    sending = await new_job(client, clock, make_tenant, status="sending")
    callback_url = str(client.make_url(f"/webhooks/sandbox/status?ref={sending.attempt_id}"))
    accepted = await provider.send(
        Outgoing(to=PERSON, from_=OUR_NUMBER, body="Hello", reference=sending.attempt_id,
                 status_callback_url=callback_url)
    )  # fmt: skip

    async with aiohttp.ClientSession() as session:
        assert await post_due_sandbox_callbacks(session, provider, clock.now()) == 0
        clock.advance(provider.latency)
        assert await post_due_sandbox_callbacks(session, provider, clock.now()) == 1
        assert await post_due_sandbox_callbacks(session, provider, clock.now()) == 0

    row = await job_row(db, sending.id)
    assert row["status"] == "delivered"
    assert row["provider_message_id"] == accepted.provider_message_id
    assert [e["type"] for e in await job_events(db, sending.id)] == ["SENT", "DELIVERED"]


async def test_the_pump_redelivers_what_the_server_did_not_take(clock: ManualClock) -> None:
    nobody = f"http://127.0.0.1:{unused_port()}"  # nothing listens there
    provider = SandboxProvider(clock, public_base_url=nobody, webhook_secret=SANDBOX_SECRET)
    message_id = provider.receive(from_=PERSON, to=OUR_NUMBER, body="hi")

    async with aiohttp.ClientSession() as session:
        assert await post_due_sandbox_callbacks(session, provider, clock.now()) == 0

    assert provider.due_callbacks(clock.now()) == []  # not before its backoff
    clock.advance(retry_delay(1))
    again = provider.due_callbacks(clock.now())
    assert [(c.kind, c.attempt, c.message_id) for c in again] == [("inbound", 2, message_id)]
    assert again[0].headers["webhook-id"] == f"msg_{message_id}_inbound"
    assert again[0].headers["webhook-timestamp"] == str(int(clock.now().timestamp()))
