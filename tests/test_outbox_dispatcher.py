"""The outbox dispatcher: transactional SMS at most once per row (pack §7, §10). Every outcome
of a provider call, a process that died mid-send, and concurrent dispatchers."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import aiohttp
import pytest
from pytest_aiohttp import AiohttpServer

from smsapp.clock import ManualClock
from smsapp.config import DatabaseUrl, Settings
from smsapp.db import Database, Row, Sql, open_database
from smsapp.engine.outbox_dispatcher import LEASE, MAX_ATTEMPTS, dispatch_due, retry_delay
from smsapp.engine.providers import (
    Accepted,
    Outgoing,
    ProviderError,
    SandboxProvider,
    TwilioProvider,
)
from smsapp.outbox import enqueue_sms
from smsapp.tenancy import create_tenant
from tests.twilio_standin import ACCOUNT_SID, AUTH_TOKEN, Error, TwilioStandin

TO = "+61412000001"
FROM = "+61400000000"
BODY = "Acme: you are unsubscribed and will get no more messages."


@pytest.fixture
async def tenant_id(db: Database, clock: ManualClock) -> int:
    return await create_tenant(db, clock, name="Acme", slug="acme")


@pytest.fixture
def sandbox(clock: ManualClock) -> SandboxProvider:
    return SandboxProvider(clock)


async def enqueue(
    db: Database, clock: ManualClock, tenant_id: int, *, to: str = TO, body: str = BODY,
    campaign_id: int | None = None,
) -> int:  # fmt: skip
    async with db.transaction() as tx:
        return await enqueue_sms(
            tx, tenant_id=tenant_id, purpose="optout_confirmation", to_e164=to, from_=FROM,
            body=body, now=clock.now(), campaign_id=campaign_id,
        )  # fmt: skip


async def row(db: Database, outbox_id: int) -> Row:
    found = await db.one(Sql("SELECT * FROM outbox WHERE id = :id"), id=outbox_id)
    assert found is not None
    return found


async def costs(db: Database) -> list[Row]:
    return await db.all(
        Sql("SELECT outbox_id, campaign_id, parts, unit_price, amount FROM costs ORDER BY id")
    )


async def dispatch(
    db: Database, clock: ManualClock, settings: Settings, provider: Any, **options: Any
) -> int:
    return await dispatch_due(db, clock, settings, provider, rng=random.Random(1), **options)


# --- accepted ----------------------------------------------------------------------------------


async def test_it_sends_a_due_row_once_with_its_attempt_id_and_records_the_cost(
    db: Database, clock: ManualClock, settings: Settings, sandbox: SandboxProvider, tenant_id: int
) -> None:
    campaign_id = await db.val(
        Sql(
            "INSERT INTO campaigns (tenant_id, name, status, created_at, updated_at) "
            "VALUES (:t, 'C', 'sending', :now, :now) RETURNING id"
        ),
        t=tenant_id,
        now=clock.now(),
    )
    outbox_id = await enqueue(db, clock, tenant_id, campaign_id=campaign_id)

    assert await dispatch(db, clock, settings, sandbox) == 1

    [message] = sandbox.messages
    sent = await row(db, outbox_id)
    assert (message.outgoing.to, message.outgoing.from_, message.outgoing.body) == (TO, FROM, BODY)
    assert message.outgoing.reference == sent["attempt_id"] and len(sent["attempt_id"]) == 32
    assert sent["processed_at"] == clock.now() and sent["last_error"] is None
    assert sent["provider_message_id"] == message.id and sent["attempts"] == 1
    assert await costs(db) == [
        {"outbox_id": outbox_id, "campaign_id": campaign_id, "parts": 1, "unit_price": 55_000,
         "amount": 55_000},
    ]  # fmt: skip
    clock.advance(hours=1)
    assert await dispatch(db, clock, settings, sandbox) == 0
    assert len(sandbox.messages) == 1


async def test_it_counts_parts_and_leaves_the_amount_empty_when_the_price_is_unknown(
    db: Database, clock: ManualClock, settings: Settings, sandbox: SandboxProvider, tenant_id: int
) -> None:
    await enqueue(db, clock, tenant_id, to="+6421123456", body="x" * 200)  # New Zealand: no price

    assert await dispatch(db, clock, settings, sandbox) == 1

    [cost] = await costs(db)
    assert (cost["parts"], cost["unit_price"], cost["amount"]) == (2, None, None)


async def test_it_waits_for_available_at_and_sends_oldest_first_within_the_limit(
    db: Database, clock: ManualClock, settings: Settings, sandbox: SandboxProvider, tenant_id: int
) -> None:
    later = await enqueue(db, clock, tenant_id, body="later")
    await db.run(
        Sql("UPDATE outbox SET available_at = :at WHERE id = :id"),
        at=clock.now() + timedelta(minutes=1),
        id=later,
    )
    for n in range(3):
        clock.advance(seconds=1)
        await enqueue(db, clock, tenant_id, body=f"now {n}")

    assert await dispatch(db, clock, settings, sandbox, limit=2) == 2
    assert sorted(m.outgoing.body for m in sandbox.messages) == ["now 0", "now 1"]
    assert await dispatch(db, clock, settings, sandbox) == 1
    clock.advance(minutes=1)
    assert await dispatch(db, clock, settings, sandbox) == 1
    assert sorted(m.outgoing.body for m in sandbox.messages) == ["later", "now 0", "now 1", "now 2"]


async def test_it_skips_campaign_gates_a_paused_tenant_and_the_dnc_list(
    db: Database, clock: ManualClock, settings: Settings, sandbox: SandboxProvider, tenant_id: int
) -> None:
    await db.run(Sql("UPDATE tenants SET paused = TRUE WHERE id = :id"), id=tenant_id)
    await db.run(
        Sql(
            "INSERT INTO do_not_contact (tenant_id, phone_e164, source, created_at) "
            "VALUES (:t, :p, 'stop_keyword', :now)"
        ),
        t=tenant_id,
        p=TO,
        now=clock.now(),
    )
    outbox_id = await enqueue(db, clock, tenant_id)

    assert await dispatch(db, clock, settings, sandbox) == 1
    assert len(sandbox.messages) == 1
    assert (await row(db, outbox_id))["processed_at"] is not None


async def test_it_leaves_other_kinds_and_processed_rows_alone(
    db: Database, clock: ManualClock, settings: Settings, sandbox: SandboxProvider, tenant_id: int
) -> None:
    await db.run(
        Sql(
            "INSERT INTO outbox (tenant_id, kind, payload, available_at, attempts, created_at, "
            "updated_at) VALUES (:t, 'email', :p, :now, 0, :now, :now)"
        ),
        t=tenant_id,
        p={"to": "a@example.com", "from": "x", "body": "y"},
        now=clock.now(),
    )
    done = await enqueue(db, clock, tenant_id)
    await db.run(Sql("UPDATE outbox SET processed_at = :now WHERE id = :id"), now=clock.now(),
                 id=done)  # fmt: skip

    assert await dispatch(db, clock, settings, sandbox) == 0
    assert sandbox.messages == []


async def test_it_closes_a_row_whose_payload_cannot_be_sent(
    db: Database, clock: ManualClock, settings: Settings, sandbox: SandboxProvider, tenant_id: int
) -> None:
    outbox_id = await db.val(
        Sql(
            "INSERT INTO outbox (tenant_id, kind, payload, available_at, attempts, created_at, "
            "updated_at) VALUES (:t, 'sms', :p, :now, 0, :now, :now) RETURNING id"
        ),
        t=tenant_id,
        p={"to": TO},
        now=clock.now(),
    )
    assert await dispatch(db, clock, settings, sandbox) == 1
    closed = await row(db, outbox_id)
    assert closed["processed_at"] is not None and "invalid payload" in closed["last_error"]
    assert sandbox.messages == []


# --- rejected ----------------------------------------------------------------------------------


async def test_it_closes_a_rejected_row_for_good(
    db: Database, clock: ManualClock, settings: Settings, sandbox: SandboxProvider, tenant_id: int
) -> None:
    outbox_id = await enqueue(db, clock, tenant_id, to="+6140000")  # the sandbox refuses it

    assert await dispatch(db, clock, settings, sandbox) == 1

    rejected = await row(db, outbox_id)
    assert rejected["processed_at"] == clock.now()
    assert rejected["last_error"].startswith("rejected:") and "21211" in rejected["last_error"]
    assert await costs(db) == []
    assert await db.val(Sql("SELECT count(*) FROM do_not_contact")) == 0
    clock.advance(days=1)
    assert await dispatch(db, clock, settings, sandbox) == 0


async def test_it_puts_a_carrier_opt_out_on_the_dnc_list_and_never_retries(
    db: Database, clock: ManualClock, settings: Settings, tenant_id: int
) -> None:
    sandbox = SandboxProvider(clock, opted_out=[TO])
    outbox_id = await enqueue(db, clock, tenant_id)

    assert await dispatch(db, clock, settings, sandbox) == 1

    closed = await row(db, outbox_id)
    assert closed["processed_at"] is not None and "21610" in closed["last_error"]
    dnc = await db.one(Sql("SELECT tenant_id, phone_e164, source FROM do_not_contact"))
    assert dnc == {"tenant_id": tenant_id, "phone_e164": TO, "source": "provider"}
    clock.advance(days=1)
    assert await dispatch(db, clock, settings, sandbox) == 0


# --- rate limited, unreached ---------------------------------------------------------------


async def test_it_retries_a_rate_limited_row_after_retry_after(
    db: Database, clock: ManualClock, settings: Settings, sandbox: SandboxProvider, tenant_id: int
) -> None:
    outbox_id = await enqueue(db, clock, tenant_id)
    sandbox.fail_next(ProviderError("slow down", kind="rate_limited", retry_after=30))

    assert await dispatch(db, clock, settings, sandbox) == 1

    waiting = await row(db, outbox_id)
    assert waiting["attempt_id"] is None and waiting["processed_at"] is None
    assert waiting["available_at"] == clock.now() + timedelta(seconds=30)
    assert waiting["attempts"] == 1 and waiting["last_error"].startswith("rate_limited")
    clock.advance(seconds=29)
    assert await dispatch(db, clock, settings, sandbox) == 0
    clock.advance(seconds=1)
    assert await dispatch(db, clock, settings, sandbox) == 1
    sent = await row(db, outbox_id)
    assert sent["processed_at"] is not None and sent["attempts"] == 2
    assert [m.outgoing.reference for m in sandbox.messages] == [sent["attempt_id"]]


async def test_it_backs_off_on_unreached_and_gives_up_after_five_attempts(
    db: Database, clock: ManualClock, settings: Settings, sandbox: SandboxProvider, tenant_id: int
) -> None:
    outbox_id = await enqueue(db, clock, tenant_id)
    waits = []
    for _ in range(MAX_ATTEMPTS):
        sandbox.fail_next(ProviderError("no route", kind="unreached"))
        assert await dispatch(db, clock, settings, sandbox) == 1
        current = await row(db, outbox_id)
        if current["processed_at"] is None:
            waits.append(current["available_at"] - clock.now())
            clock.set(current["available_at"])

    closed = await row(db, outbox_id)
    assert closed["attempts"] == MAX_ATTEMPTS and closed["processed_at"] is not None
    assert closed["last_error"].startswith("gave up after 5 attempts: unreached")
    assert len(waits) == MAX_ATTEMPTS - 1
    for n, wait in enumerate(waits, start=1):  # 5 s, 10 s, 20 s, 40 s, each with jitter
        ceiling = timedelta(seconds=5 * 2 ** (n - 1))
        assert ceiling / 2 <= wait <= ceiling
    assert sandbox.messages == []
    clock.advance(days=1)
    assert await dispatch(db, clock, settings, sandbox) == 0


@pytest.mark.parametrize(
    ("attempts", "retry_after", "low", "high"),
    [
        (1, None, 2.5, 5),
        (2, None, 5, 10),
        (3, None, 10, 20),
        (8, None, 300, 600),  # capped at 10 minutes
        (30, None, 300, 600),
        (1, 42.0, 42, 42),
        (4, 0.5, 0.5, 0.5),
        (2, 0.0, 5, 10),  # a zero Retry-After means nothing: back off
    ],
)
def test_it_computes_the_retry_delay(
    attempts: int, retry_after: float | None, low: float, high: float
) -> None:
    for seed in range(20):
        delay = retry_delay(attempts, retry_after, random.Random(seed)).total_seconds()
        assert low <= delay <= high


# --- ambiguous ---------------------------------------------------------------------------------


async def test_it_settles_an_ambiguous_send_the_provider_holds_without_resending(
    db: Database, clock: ManualClock, settings: Settings, sandbox: SandboxProvider, tenant_id: int
) -> None:
    outbox_id = await enqueue(db, clock, tenant_id)
    sandbox.fail_next(ProviderError("502", kind="ambiguous", http_status=502), created=True)

    assert await dispatch(db, clock, settings, sandbox) == 1

    [message] = sandbox.messages
    settled = await row(db, outbox_id)
    assert settled["processed_at"] is not None and settled["provider_message_id"] == message.id
    assert len(await costs(db)) == 1


async def test_it_retries_an_ambiguous_send_the_provider_does_not_hold(
    db: Database, clock: ManualClock, settings: Settings, sandbox: SandboxProvider, tenant_id: int
) -> None:
    outbox_id = await enqueue(db, clock, tenant_id)
    sandbox.fail_next(ProviderError("502", kind="ambiguous", http_status=502))

    assert await dispatch(db, clock, settings, sandbox) == 1
    waiting = await row(db, outbox_id)
    assert waiting["attempt_id"] is None and waiting["processed_at"] is None
    assert "does not hold it" in waiting["last_error"]
    clock.set(waiting["available_at"])
    assert await dispatch(db, clock, settings, sandbox) == 1
    assert len(sandbox.messages) == 1
    assert (await row(db, outbox_id))["provider_message_id"] == sandbox.messages[0].id


@dataclass
class Blind:
    """A provider that cannot say whether it holds a message."""

    inner: SandboxProvider
    name: str = "blind"
    can_reconcile: bool = False

    async def send(self, outgoing: Outgoing) -> Accepted:
        return await self.inner.send(outgoing)

    async def find(self, outgoing: Outgoing, since: datetime) -> Accepted | None:
        raise AssertionError("never asked")


async def test_it_marks_an_ambiguous_send_unknown_when_the_provider_cannot_be_asked(
    db: Database, clock: ManualClock, settings: Settings, sandbox: SandboxProvider, tenant_id: int
) -> None:
    outbox_id = await enqueue(db, clock, tenant_id)
    sandbox.fail_next(ProviderError("timeout", kind="ambiguous"))

    assert await dispatch(db, clock, settings, Blind(sandbox)) == 1

    closed = await row(db, outbox_id)
    assert closed["processed_at"] is not None and closed["last_error"].startswith("unknown: ")
    clock.advance(days=1)
    assert await dispatch(db, clock, settings, Blind(sandbox)) == 0
    assert sandbox.messages == []


@dataclass
class Mute:
    """Sends through the sandbox; `find` fails (the provider's list API is down) a few times."""

    inner: SandboxProvider
    find_failures: int
    finds: list[datetime] = field(default_factory=list)
    name: str = "mute"
    can_reconcile: bool = True

    async def send(self, outgoing: Outgoing) -> Accepted:
        return await self.inner.send(outgoing)

    async def find(self, outgoing: Outgoing, since: datetime) -> Accepted | None:
        self.finds.append(since)
        if self.find_failures:
            self.find_failures -= 1
            raise ProviderError("list failed", kind="unreached")
        return await self.inner.find(outgoing, since)


async def test_it_keeps_asking_when_the_provider_cannot_answer_yet(
    db: Database, clock: ManualClock, settings: Settings, sandbox: SandboxProvider, tenant_id: int
) -> None:
    outbox_id = await enqueue(db, clock, tenant_id)
    claimed_at = clock.now()
    sandbox.fail_next(ProviderError("timeout", kind="ambiguous"), created=True)
    provider = Mute(sandbox, find_failures=1)

    assert await dispatch(db, clock, settings, provider) == 1
    held = await row(db, outbox_id)
    assert held["attempt_id"] is not None and held["processed_at"] is None  # still claimed
    clock.advance(seconds=30)
    assert await dispatch(db, clock, settings, provider) == 0  # within the lease
    clock.advance(LEASE)
    assert await dispatch(db, clock, settings, provider) == 1

    assert provider.finds == [claimed_at, claimed_at]  # both ask about the claim's time
    settled = await row(db, outbox_id)
    assert settled["processed_at"] is not None
    assert settled["provider_message_id"] == sandbox.messages[0].id
    assert len(sandbox.messages) == 1


# --- a process that died mid-send ------------------------------------------------------------


class Died(BaseException):
    """The process ending: nothing after it runs."""


@dataclass
class Dying:
    """Dies during `send`: after the provider got the message (`reached`) or before."""

    inner: SandboxProvider
    reached: bool
    name: str = "sandbox"
    can_reconcile: bool = True

    async def send(self, outgoing: Outgoing) -> Accepted:
        if self.reached:
            await self.inner.send(outgoing)
        raise Died()

    async def find(self, outgoing: Outgoing, since: datetime) -> Accepted | None:
        return await self.inner.find(outgoing, since)


@pytest.mark.parametrize("reached", [True, False])
async def test_it_reconciles_a_row_left_claimed_by_a_dead_process_and_never_sends_twice(
    db: Database, clock: ManualClock, settings: Settings, sandbox: SandboxProvider, tenant_id: int,
    reached: bool,
) -> None:  # fmt: skip
    outbox_id = await enqueue(db, clock, tenant_id)
    with pytest.raises(Died):
        await dispatch(db, clock, settings, Dying(sandbox, reached=reached))
    left = await row(db, outbox_id)
    assert left["attempt_id"] is not None and left["processed_at"] is None  # committed claim
    assert len(sandbox.messages) == (1 if reached else 0)

    # A restarted process: the claim is not touched within its lease.
    clock.advance(LEASE - timedelta(seconds=1))
    assert await dispatch(db, clock, settings, sandbox) == 0
    clock.advance(seconds=2)
    assert await dispatch(db, clock, settings, sandbox) == 1
    current = await row(db, outbox_id)
    if reached:
        assert current["processed_at"] is not None
        assert current["provider_message_id"] == sandbox.messages[0].id
        assert current["attempt_id"] == left["attempt_id"]
    else:
        assert current["processed_at"] is None and current["attempt_id"] is None
        clock.set(current["available_at"])
        assert await dispatch(db, clock, settings, sandbox) == 1
        current = await row(db, outbox_id)
        assert current["processed_at"] is not None and current["attempts"] == 2
    assert len(sandbox.messages) == 1
    assert len(await costs(db)) == 1
    clock.advance(days=1)
    assert await dispatch(db, clock, settings, sandbox) == 0
    assert len(sandbox.messages) == 1


# --- concurrency -------------------------------------------------------------------------------


@dataclass
class Slow:
    """The sandbox, yielding to other tasks inside every send (as a network call would)."""

    inner: SandboxProvider
    name: str = "sandbox"
    can_reconcile: bool = True

    async def send(self, outgoing: Outgoing) -> Accepted:
        for _ in range(3):
            await asyncio.sleep(0)
        return await self.inner.send(outgoing)

    async def find(self, outgoing: Outgoing, since: datetime) -> Accepted | None:
        return await self.inner.find(outgoing, since)


@pytest.fixture
async def second_db(database_url: DatabaseUrl, backend: str, db: Database) -> AsyncIterator[Any]:
    """Another process's connection pool on PostgreSQL; SQLite has one process, so the same."""
    if backend == "sqlite":
        yield db
        return
    other = await open_database(database_url)
    yield other
    await other.close()


async def test_it_never_sends_a_row_twice_from_concurrent_dispatchers(
    db: Database, second_db: Database, clock: ManualClock, settings: Settings,
    sandbox: SandboxProvider, tenant_id: int,
) -> None:  # fmt: skip
    ids = [await enqueue(db, clock, tenant_id, body=f"message {n}") for n in range(40)]
    provider = Slow(sandbox)

    handled = 0
    for _ in range(4):
        counts = await asyncio.gather(
            *(
                dispatch(d, clock, settings, provider, limit=7)
                for d in (db, second_db, db, second_db)
            )
        )
        handled += sum(counts)

    assert handled == 40
    bodies = [m.outgoing.body for m in sandbox.messages]
    assert sorted(bodies) == sorted(f"message {n}" for n in range(40))  # each exactly once
    references = {m.outgoing.reference for m in sandbox.messages}
    rows = [await row(db, i) for i in ids]
    assert all(r["processed_at"] is not None and r["attempts"] == 1 for r in rows)
    assert {r["attempt_id"] for r in rows} == references
    assert len(await costs(db)) == 40


# --- Twilio: a 500 that created the message ------------------------------------------------


@pytest.fixture
async def twilio_rig(
    aiohttp_server: AiohttpServer, clock: ManualClock
) -> AsyncIterator[tuple[TwilioStandin, TwilioProvider]]:
    standin = TwilioStandin(clock)
    server = await aiohttp_server(standin.app)
    async with aiohttp.ClientSession() as session:
        provider = TwilioProvider(
            session,
            account_sid=ACCOUNT_SID,
            auth_token=AUTH_TOKEN,
            api_base_url=str(server.make_url("")).rstrip("/"),
            public_base_url="https://sms.example.com",
            clock=clock,
        )
        yield standin, provider
    standin.release()


async def test_it_settles_a_twilio_500_that_created_the_message_without_resending(
    db: Database, clock: ManualClock, settings: Settings, tenant_id: int,
    twilio_rig: tuple[TwilioStandin, TwilioProvider],
) -> None:  # fmt: skip
    standin, twilio = twilio_rig
    outbox_id = await enqueue(db, clock, tenant_id)
    standin.script(Error(500, 20500, "Internal Server Error", created=True))

    assert await dispatch(db, clock, settings, twilio) == 1

    assert len(standin.sends) == 1 and len(standin.lists) == 1
    [message] = standin.messages
    settled = await row(db, outbox_id)
    assert settled["processed_at"] is not None and settled["provider_message_id"] == message["sid"]
    clock.advance(days=1)
    assert await dispatch(db, clock, settings, twilio) == 0
    assert len(standin.sends) == 1


async def test_it_resends_after_a_twilio_500_that_created_nothing(
    db: Database, clock: ManualClock, settings: Settings, tenant_id: int,
    twilio_rig: tuple[TwilioStandin, TwilioProvider],
) -> None:  # fmt: skip
    standin, twilio = twilio_rig
    outbox_id = await enqueue(db, clock, tenant_id)
    standin.script(Error(500, 20500, "Internal Server Error"))

    assert await dispatch(db, clock, settings, twilio) == 1
    waiting = await row(db, outbox_id)
    assert waiting["processed_at"] is None and waiting["attempt_id"] is None
    clock.set(waiting["available_at"])
    assert await dispatch(db, clock, settings, twilio) == 1

    assert len(standin.sends) == 2 and len(standin.messages) == 1
    settled = await row(db, outbox_id)
    assert settled["provider_message_id"] == standin.messages[0]["sid"]
    assert settled["attempts"] == 2
