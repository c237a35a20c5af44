"""The send loop (pack §7): gates at send time, `sending` before the provider call, outcomes
written forward only, on both backends, with time injected."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from smsapp.clock import ManualClock
from smsapp.config import Settings
from smsapp.db import Database, Sql
from smsapp.engine.providers import ProviderError
from tests.support_sending import (
    OPEN,
    event_counts,
    job_statuses,
    sandbox,
    scenario,
    sender,
)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(OPEN)


async def test_it_sends_every_queued_job_once_and_completes_the_campaign(
    db: Database, clock: ManualClock, settings: Settings
) -> None:
    s = await scenario(db, clock, settings, contacts=5)
    provider = sandbox(clock)
    done = await sender(db, clock, provider).run_once()
    assert (done.claimed, done.sent) == (5, 5)
    assert await job_statuses(db, s.campaign_id) == {"sent": 5}
    assert sorted(m.outgoing.to for m in provider.messages) == sorted(
        r["phone_e164"] for r in await db.all(Sql("SELECT phone_e164 FROM contacts"))
    )
    assert (await event_counts(db, s.campaign_id))["SENT"] == 5
    again = await sender(db, clock, provider).run_once()
    assert again.claimed == 0 and len(provider.messages) == 5
    campaign = await db.one(Sql("SELECT status FROM campaigns WHERE id = :c"), c=s.campaign_id)
    assert campaign == {"status": "completed"}
    costs = await db.val(Sql("SELECT sum(amount) FROM costs WHERE campaign_id = :c"),
                         c=s.campaign_id)  # fmt: skip
    assert costs == 5 * 55_000
    row = await db.one(Sql("SELECT * FROM send_jobs WHERE campaign_id = :c LIMIT 1"),
                       c=s.campaign_id)  # fmt: skip
    assert row is not None and row["attempt_id"] and row["provider_message_id"]
    assert row["sent_at"] == clock.now() and row["sending_number_id"] == s.number_ids[0]


async def test_it_holds_jobs_outside_the_window_until_it_opens(
    db: Database, clock: ManualClock, settings: Settings
) -> None:
    clock.set(OPEN - timedelta(hours=3))  # 00:00 UTC: 08:00 in Perth, 11:00 in Sydney
    s = await scenario(db, clock, settings, contacts=2, state=None)  # location unknown
    provider = sandbox(clock)
    done = await sender(db, clock, provider).run_once()
    assert done.claimed == 0 and done.deferred == 2 and provider.messages == []
    held = await db.all(Sql("SELECT held_by, next_attempt_at FROM send_jobs"))
    assert {(r["held_by"], r["next_attempt_at"]) for r in held} == {
        ("quiet_hours", OPEN - timedelta(hours=2))  # 09:00 in Perth
    }
    clock.set(OPEN - timedelta(hours=2))
    assert (await sender(db, clock, provider).run_once()).sent == 2
    assert await job_statuses(db, s.campaign_id) == {"sent": 2}


async def test_it_skips_a_number_put_on_the_dnc_list_after_enqueue(
    db: Database, clock: ManualClock, settings: Settings
) -> None:
    from smsapp.dnc import add_to_dnc

    s = await scenario(db, clock, settings, contacts=3)
    victim = await db.val(Sql("SELECT phone_e164 FROM contacts WHERE id = :c"), c=s.contact_ids[1])
    async with db.transaction() as tx:
        await add_to_dnc(tx, clock, tenant_id=s.tenant_id, phone_e164=victim, source="api",
                         reason=None, created_by=None)  # fmt: skip
    provider = sandbox(clock)
    await sender(db, clock, provider).run_once()
    assert victim not in {m.outgoing.to for m in provider.messages}
    assert len(provider.messages) == 2
    skipped = await db.one(Sql("SELECT status, reason FROM send_jobs WHERE contact_id = :c"),
                           c=s.contact_ids[1])  # fmt: skip
    assert skipped == {"status": "skipped", "reason": "dnc"}
    assert (await event_counts(db, s.campaign_id)).get("SKIPPED") == 1


async def test_it_skips_a_contact_suppressed_after_enqueue(
    db: Database, clock: ManualClock, settings: Settings
) -> None:
    s = await scenario(db, clock, settings, contacts=2)
    await db.run(
        Sql("INSERT INTO suppression_rules (tenant_id, contact_id, kind, created_at) "
            "VALUES (:t, :c, 'complaint', :now)"),
        t=s.tenant_id, c=s.contact_ids[0], now=clock.now(),
    )  # fmt: skip
    provider = sandbox(clock)
    await sender(db, clock, provider).run_once()
    assert len(provider.messages) == 1
    assert await job_statuses(db, s.campaign_id) == {"sent": 1, "skipped": 1}


async def test_it_caps_each_minute_at_the_numbers_limit_in_segments(
    db: Database, clock: ManualClock, settings: Settings
) -> None:
    s = await scenario(db, clock, settings, contacts=7, number_limits={"per_minute_limit": 3})
    provider = sandbox(clock)
    loop = sender(db, clock, provider)
    sent_per_minute = []
    for _ in range(4):
        before = len(provider.messages)
        await loop.run_once()
        await loop.run_once()  # a second round in the same minute sends nothing more
        sent_per_minute.append(len(provider.messages) - before)
        clock.advance(minutes=1)
    assert sent_per_minute == [3, 3, 1, 0]
    assert await job_statuses(db, s.campaign_id) == {"sent": 7}


async def test_it_caps_the_tenant_across_its_numbers(
    db: Database, clock: ManualClock, settings: Settings
) -> None:
    await scenario(db, clock, settings, contacts=9, numbers=("+61400000001", "+61400000002"),
                   tenant={"rate_limit_per_minute": 4})  # fmt: skip
    provider = sandbox(clock)
    await sender(db, clock, provider).run_once()
    assert len(provider.messages) == 4
    assert len({m.outgoing.from_ for m in provider.messages}) == 2


async def test_it_caps_a_warming_number_per_local_day(
    db: Database, clock: ManualClock, settings: Settings
) -> None:
    s = await scenario(db, clock, settings, contacts=5, number_limits={"daily_cap": 2})
    provider = sandbox(clock)
    loop = sender(db, clock, provider)
    await loop.run_once()
    clock.advance(minutes=1)
    await loop.run_once()
    assert len(provider.messages) == 2
    held = await db.all(Sql("SELECT DISTINCT held_by, next_attempt_at FROM send_jobs "
                            "WHERE status = 'queued'"))  # fmt: skip
    # Sydney's next midnight: 13:00 UTC (AEDT, UTC+11).
    assert held == [{"held_by": "warmup", "next_attempt_at": OPEN.replace(hour=13)}]
    clock.set(OPEN.replace(hour=22))  # Tuesday 09:00 in Sydney
    await loop.run_once()
    assert len(provider.messages) == 4
    assert await job_statuses(db, s.campaign_id) == {"sent": 4, "queued": 1}


async def test_it_holds_jobs_over_budget_until_the_next_day(
    db: Database, clock: ManualClock, settings: Settings
) -> None:
    s = await scenario(db, clock, settings, contacts=5)
    await db.run(Sql("INSERT INTO budgets (tenant_id, daily_limit, created_at, updated_at) "
                     "VALUES (:t, :limit, :now, :now)"),
                 t=s.tenant_id, limit=2 * 55_000, now=clock.now())  # fmt: skip
    provider = sandbox(clock)
    await sender(db, clock, provider).run_once()
    assert len(provider.messages) == 2
    held = await db.all(Sql("SELECT DISTINCT held_by FROM send_jobs WHERE status = 'queued'"))
    assert held == [{"held_by": "budget"}]
    spent = await db.val(Sql("SELECT sum(amount) FROM costs WHERE tenant_id = :t"), t=s.tenant_id)
    assert spent == 2 * 55_000


# --- what the provider answers ---------------------------------------------------------


def error(kind: str, **kw: Any) -> ProviderError:
    return ProviderError(f"scripted {kind}", kind=kind, **kw)  # type: ignore[arg-type]


async def only_job(db: Database) -> dict[str, Any]:
    row = await db.one(Sql("SELECT * FROM send_jobs"))
    assert row is not None
    return row


async def test_it_retries_a_429_with_backoff_then_fails_after_five_attempts(
    db: Database, clock: ManualClock, settings: Settings
) -> None:
    s = await scenario(db, clock, settings, contacts=1)
    provider = sandbox(clock)
    loop = sender(db, clock, provider)
    waits = []
    for attempt in range(1, 6):
        provider.fail_next(error("rate_limited", http_status=429))
        await loop.run_once()
        job = await only_job(db)
        assert job["attempts"] == attempt
        if attempt < 5:
            assert job["status"] == "queued" and job["held_by"] is None
            waits.append(job["next_attempt_at"] - clock.now())
            clock.set(job["next_attempt_at"])
    assert job["status"] == "failed" and provider.messages == []
    for n, wait in enumerate(waits):  # 10 s doubling, jittered by 0.5×–1.5×
        base = timedelta(seconds=10 * 2**n)
        assert base / 2 <= wait <= base * 1.5, waits
    assert await event_counts(db, s.campaign_id) == {"QUEUED": 1, "FAILED": 1}
    assert await db.val(Sql("SELECT count(*) FROM costs")) == 0  # reservation released


async def test_it_honours_the_providers_retry_after(
    db: Database, clock: ManualClock, settings: Settings
) -> None:
    await scenario(db, clock, settings, contacts=1)
    provider = sandbox(clock)
    provider.fail_next(error("rate_limited", http_status=429, retry_after=120.0))
    await sender(db, clock, provider).run_once()
    assert (await only_job(db))["next_attempt_at"] == clock.now() + timedelta(seconds=120)


async def test_it_settles_an_ambiguous_failure_as_sent_when_the_provider_holds_it(
    db: Database, clock: ManualClock, settings: Settings
) -> None:
    s = await scenario(db, clock, settings, contacts=1)
    provider = sandbox(clock)
    provider.fail_next(error("ambiguous", http_status=500), created=True)
    done = await sender(db, clock, provider).run_once()
    job = await only_job(db)
    assert done.sent == 1 and job["status"] == "sent"
    assert job["provider_message_id"] == provider.messages[0].id
    assert len(provider.messages) == 1
    assert (await event_counts(db, s.campaign_id))["SENT"] == 1


async def test_it_retries_an_ambiguous_failure_only_when_the_provider_has_no_such_message(
    db: Database, clock: ManualClock, settings: Settings
) -> None:
    await scenario(db, clock, settings, contacts=1)
    provider = sandbox(clock)
    provider.fail_next(error("ambiguous", http_status=500), created=False)
    loop = sender(db, clock, provider)
    await loop.run_once()
    job = await only_job(db)
    assert job["status"] == "queued" and provider.messages == []
    clock.set(job["next_attempt_at"])
    await loop.run_once()
    assert (await only_job(db))["status"] == "sent" and len(provider.messages) == 1


async def test_it_marks_unknown_what_a_provider_that_cannot_reconcile_left_ambiguous(
    db: Database, clock: ManualClock, settings: Settings
) -> None:
    await scenario(db, clock, settings, contacts=1)
    provider = sandbox(clock)
    provider.can_reconcile = False
    provider.fail_next(error("ambiguous", http_status=504))
    done = await sender(db, clock, provider).run_once()
    assert done.unknown == 1 and (await only_job(db))["status"] == "unknown"


async def test_it_fails_a_rejected_message_at_once(
    db: Database, clock: ManualClock, settings: Settings
) -> None:
    s = await scenario(db, clock, settings, contacts=1)
    provider = sandbox(clock)
    provider.fail_next(error("rejected", http_status=400, code="21211"))
    await sender(db, clock, provider).run_once()
    job = await only_job(db)
    assert (job["status"], job["error_code"], job["attempts"]) == ("failed", "21211", 1)
    events = await db.all(Sql("SELECT type, data FROM events WHERE type = 'FAILED'"))
    assert events == [{"type": "FAILED", "data": {"error_code": "21211", "reason": "rejected"}}]
    assert await event_counts(db, s.campaign_id) == {"QUEUED": 1, "FAILED": 1}


async def test_it_puts_a_carrier_opt_out_on_the_dnc_list_and_never_retries(
    db: Database, clock: ManualClock, settings: Settings
) -> None:
    s = await scenario(db, clock, settings, contacts=1)
    provider = sandbox(clock)
    provider.fail_next(error("rejected", http_status=400, code="21610", opted_out=True))
    await sender(db, clock, provider).run_once()
    assert (await only_job(db))["status"] == "failed"
    dnc = await db.one(Sql("SELECT tenant_id, source FROM do_not_contact"))
    assert dnc == {"tenant_id": s.tenant_id, "source": "provider"}


async def test_it_pauses_the_tenant_when_the_provider_refuses_our_credentials(
    db: Database, clock: ManualClock, settings: Settings
) -> None:
    s = await scenario(db, clock, settings, contacts=2)
    provider = sandbox(clock)
    provider.fail_next(error("rejected", http_status=401, code="20003"))
    loop = sender(db, clock, provider)
    await loop.run_once()
    tenant = await db.one(Sql("SELECT paused, pause_reason FROM tenants WHERE id = :t"),
                          t=s.tenant_id)  # fmt: skip
    assert tenant is not None and tenant["paused"] and "credentials" in tenant["pause_reason"]
    statuses = await job_statuses(db, s.campaign_id)
    assert statuses.get("failed") is None and statuses.get("queued", 0) >= 1
    clock.advance(minutes=1)
    await loop.run_once()
    assert await db.val(Sql("SELECT count(*) FROM send_jobs WHERE held_by = 'pause'")) >= 1


# --- held jobs go as soon as what held them changes ----------------------------------------


async def test_it_sends_jobs_held_by_a_pause_as_soon_as_the_tenant_resumes(
    db: Database, clock: ManualClock, settings: Settings
) -> None:
    from smsapp.tenant_settings import pause_tenant, resume_tenant

    s = await scenario(db, clock, settings, contacts=3)
    async with db.transaction() as tx:
        await pause_tenant(tx, clock, tenant_id=s.tenant_id, user_id=None, reason="hold on")
    provider = sandbox(clock)
    loop = sender(db, clock, provider, batch_size=1)
    await loop.run_once()
    # One batch looked at one job, but every due job of the paused tenant is held at once.
    held = await db.all(Sql("SELECT held_by, count(*) AS n FROM send_jobs GROUP BY held_by"))
    assert held == [{"held_by": "pause", "n": 3}] and provider.messages == []
    async with db.transaction() as tx:
        await resume_tenant(tx, clock, tenant_id=s.tenant_id)
    for _ in range(3):
        await loop.run_once()
    assert await job_statuses(db, s.campaign_id) == {"sent": 3}


async def test_it_sends_a_paused_campaigns_jobs_when_the_campaign_resumes(
    db: Database, clock: ManualClock, settings: Settings
) -> None:
    from smsapp.campaigns import change_status

    s = await scenario(db, clock, settings, contacts=2)
    await change_status(db, clock, tenant_id=s.tenant_id, campaign_id=s.campaign_id,
                        action="pause")  # fmt: skip
    provider = sandbox(clock)
    await sender(db, clock, provider).run_once()
    assert provider.messages == []
    await change_status(db, clock, tenant_id=s.tenant_id, campaign_id=s.campaign_id,
                        action="resume")  # fmt: skip
    await sender(db, clock, provider).run_once()
    assert len(provider.messages) == 2


async def test_it_sends_budget_held_jobs_when_the_budget_is_raised(
    db: Database, clock: ManualClock, settings: Settings
) -> None:
    from smsapp.budget_settings import set_budget

    s = await scenario(db, clock, settings, contacts=3)
    async with db.transaction() as tx:
        await set_budget(tx, clock, tenant_id=s.tenant_id, body={"daily_limit": 5.5})
    provider = sandbox(clock)
    await sender(db, clock, provider).run_once()
    assert len(provider.messages) == 1
    async with db.transaction() as tx:
        await set_budget(tx, clock, tenant_id=s.tenant_id, body={"daily_limit": 100})
    await sender(db, clock, provider).run_once()
    assert len(provider.messages) == 3


async def test_it_prices_and_sends_jobs_held_for_an_unknown_price_once_the_price_is_set(
    db: Database, clock: ManualClock, settings: Settings
) -> None:
    from smsapp.budget_settings import set_budget
    from smsapp.tenant_settings import update_settings

    s = await scenario(db, clock, settings, contacts=2, tenant={"price_book": {}})
    async with db.transaction() as tx:
        await set_budget(tx, clock, tenant_id=s.tenant_id, body={"daily_limit": 100})
    provider = sandbox(clock)
    await sender(db, clock, provider).run_once()
    held = await db.all(Sql("SELECT DISTINCT held_by, unit_price FROM send_jobs"))
    assert held == [{"held_by": "price_unknown", "unit_price": None}]
    async with db.transaction() as tx:
        await update_settings(tx, clock, tenant_id=s.tenant_id,
                              body={"price_per_segment": {"AU": 6}})  # fmt: skip
    await sender(db, clock, provider).run_once()
    assert len(provider.messages) == 2
    costs = await db.all(Sql("SELECT unit_price, amount FROM costs"))
    assert costs == [{"unit_price": 60_000, "amount": 60_000}] * 2


async def test_it_sends_at_a_numbers_new_limit_at_once(
    db: Database, clock: ManualClock, settings: Settings
) -> None:
    from smsapp.numbers import update_number

    s = await scenario(db, clock, settings, contacts=4, number_limits={"per_minute_limit": 1})
    provider = sandbox(clock)
    await sender(db, clock, provider).run_once()
    assert len(provider.messages) == 1
    async with db.transaction() as tx:
        await update_number(tx, clock, tenant_id=s.tenant_id, number_id=s.number_ids[0],
                            body={"per_minute_limit": 10}, today=clock.now().date())  # fmt: skip
    await sender(db, clock, provider).run_once()
    assert len(provider.messages) == 4


async def test_it_completes_a_campaign_whose_last_jobs_were_skipped_at_send_time(
    db: Database, clock: ManualClock, settings: Settings
) -> None:
    from smsapp.dnc import add_to_dnc

    s = await scenario(db, clock, settings, contacts=2)
    for phone in [r["phone_e164"] for r in await db.all(Sql("SELECT phone_e164 FROM contacts"))]:
        async with db.transaction() as tx:
            await add_to_dnc(tx, clock, tenant_id=s.tenant_id, phone_e164=phone, source="api",
                             reason=None, created_by=None)  # fmt: skip
    await sender(db, clock, sandbox(clock)).run_once()
    assert await job_statuses(db, s.campaign_id) == {"skipped": 2}
    status = await db.val(Sql("SELECT status FROM campaigns WHERE id = :c"), c=s.campaign_id)
    assert status == "completed"
