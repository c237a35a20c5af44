"""The stop rule (pack §7): once a pause, a DNC call or a budget change has answered, no
provider call it forbids starts — with a batch's calls in flight, and with two senders."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from yarl import URL

from smsapp.budget_settings import set_budget
from smsapp.clock import ManualClock
from smsapp.config import DatabaseUrl, Settings
from smsapp.db import Database, Sql, open_database
from smsapp.db.sqlite import SqliteDatabase
from smsapp.db.stop_lock import STOP_LOCK_CLASS
from smsapp.dnc import add_to_dnc
from smsapp.engine.providers import Accepted, Outgoing, SandboxProvider, TwilioProvider
from smsapp.engine.sender import Attempt, Outcome, Sender
from smsapp.keys import DB, PROVIDER
from smsapp.tenant_settings import pause_tenant
from tests.support_sending import OPEN, scenario, sender
from tests.twilio_standin import ACCOUNT_SID, AUTH_TOKEN, TwilioStandin

WAIT_LIMIT_SECONDS = 10  # only a broken lock waits this long


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(OPEN)


class RecordingProvider:
    """The sandbox, noting when each call started (in order with the stops' answers)."""

    name = "sandbox"
    can_reconcile = True

    def __init__(self, inner: SandboxProvider, log: list[tuple[str, str]]) -> None:
        self.inner = inner
        self.log = log

    async def send(self, outgoing: Outgoing) -> Accepted:
        self.log.append(("call", outgoing.to))
        return await self.inner.send(outgoing)

    async def find(self, outgoing: Outgoing, since: datetime) -> Accepted | None:
        return await self.inner.find(outgoing, since)


class HeldSender(Sender):
    """Stops between its claim's commit and its provider calls until told to go on: the
    window a stop must not slip into."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.claimed = asyncio.Event()
        self.go = asyncio.Event()

    async def _call_provider(self, attempts: Sequence[Attempt]) -> list[Outcome]:
        if attempts:
            self.claimed.set()
            await self.go.wait()
        return await super()._call_provider(attempts)


async def a_stop_is_waiting(db: Database, tenant_id: int) -> bool:
    if isinstance(db, SqliteDatabase):
        return db.stop_locks[tenant_id].writers_waiting > 0
    waiting = await db.val(
        Sql(
            "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
            "WHERE d.datname = current_database() AND l.locktype = 'advisory' "
            "AND l.classid = :class AND l.objid = :tenant AND NOT l.granted"
        ),
        **{"class": STOP_LOCK_CLASS, "tenant": tenant_id},
    )
    return int(waiting) > 0


async def until(condition: Callable[[], Awaitable[bool]]) -> None:
    async def poll() -> None:
        while not await condition():  # noqa: ASYNC110 (the state is outside this process)
            await asyncio.sleep(0.005)

    await asyncio.wait_for(poll(), WAIT_LIMIT_SECONDS)


async def pause(db: Database, clock: ManualClock, tenant_id: int, phone: str) -> None:
    async with db.transaction() as tx:
        await pause_tenant(tx, clock, tenant_id=tenant_id, user_id=None, reason="stop")


async def dnc(db: Database, clock: ManualClock, tenant_id: int, phone: str) -> None:
    async with db.transaction() as tx:
        await add_to_dnc(tx, clock, tenant_id=tenant_id, phone_e164=phone, source="api",
                         reason=None, created_by=None)  # fmt: skip


async def zero_budget(db: Database, clock: ManualClock, tenant_id: int, phone: str) -> None:
    async with db.transaction() as tx:
        await set_budget(tx, clock, tenant_id=tenant_id, body={"daily_limit": 0})


STOPS = {"pause": pause, "dnc": dnc, "budget": zero_budget}


@pytest.mark.parametrize("stop", STOPS)
async def test_it_answers_a_stop_only_after_the_calls_it_raced_have_started_and_none_after(
    db: Database, clock: ManualClock, settings: Settings, stop: str
) -> None:
    s = await scenario(db, clock, settings, contacts=6)
    log: list[tuple[str, str]] = []
    provider = RecordingProvider(SandboxProvider(clock), log)
    loop = HeldSender(db, clock, provider)
    loop.config = type(loop.config)(batch_size=3)
    target = await db.val(Sql("SELECT phone_e164 FROM contacts ORDER BY id DESC LIMIT 1"))

    batch = asyncio.create_task(loop.run_once())
    await asyncio.wait_for(loop.claimed.wait(), WAIT_LIMIT_SECONDS)
    stopping = asyncio.create_task(STOPS[stop](db, clock, s.tenant_id, target))
    stopping.add_done_callback(lambda _: log.append(("stop answered", "")))
    await until(lambda: a_stop_is_waiting(db, s.tenant_id))
    assert not stopping.done()
    loop.go.set()
    await batch
    await stopping
    answered = log.index(("stop answered", ""))
    assert [entry for entry in log[:answered] if entry[0] == "call"] == log[:answered]
    assert len(log[:answered]) == 3  # the raced batch went out, then the stop answered

    await loop.run_once()
    after = [to for kind, to in log[answered + 1 :] if kind == "call"]
    if stop == "dnc":
        assert target not in after and len(after) == 2
    else:
        assert after == []


async def test_two_senders_never_overshoot_the_budget_nor_send_a_job_twice(
    db: Database, clock: ManualClock, settings: Settings, database_url: DatabaseUrl
) -> None:
    s = await scenario(db, clock, settings, contacts=60, number_limits={"per_minute_limit": 1000})
    cap = 25 * 55_000
    await db.run(
        Sql("INSERT INTO budgets (tenant_id, daily_limit, created_at, updated_at) "
            "VALUES (:t, :cap, :now, :now)"),
        t=s.tenant_id, cap=cap, now=clock.now(),
    )  # fmt: skip
    # On PostgreSQL the second sender has its own pool, as a second process would.
    other_db = db if isinstance(db, SqliteDatabase) else await open_database(database_url)
    provider = SandboxProvider(clock)
    try:
        first = sender(db, clock, provider, batch_size=7)
        second = sender(other_db, clock, provider, batch_size=7)
        for _ in range(6):
            await asyncio.gather(first.run_once(), second.run_once())
    finally:
        if other_db is not db:
            await other_db.close()
    recipients = [m.outgoing.to for m in provider.messages]
    assert len(recipients) == 25 == len(set(recipients))
    spent = await db.val(Sql("SELECT sum(amount) FROM costs WHERE tenant_id = :t"), t=s.tenant_id)
    assert spent == cap
    statuses = await db.all(Sql("SELECT status, held_by, count(*) AS n FROM send_jobs "
                                "GROUP BY status, held_by ORDER BY status"))  # fmt: skip
    assert statuses == [
        {"status": "queued", "held_by": "budget", "n": 35},
        {"status": "sent", "held_by": None, "n": 25},
    ]


async def test_no_message_leaves_for_a_number_after_its_stop_webhook_answered(
    client: TestClient[Any, Any], clock: ManualClock, settings: Settings,
    aiohttp_server: Callable[..., Awaitable[TestServer]],
) -> None:  # fmt: skip
    """Issue 8: a STOP texted while the campaign is sending to that person, against a stand-in
    Twilio that records every request as it arrives. The webhook answers only after the calls
    already checked have arrived; after it has answered, no request for that number arrives —
    neither from the batch in flight nor from later rounds."""
    db = client.app[DB]
    inbound_provider = client.app[PROVIDER]
    assert isinstance(inbound_provider, SandboxProvider)
    s = await scenario(db, clock, settings, contacts=6)
    phones_in_order = [r["phone_e164"] for r in await db.all(
        Sql("SELECT phone_e164 FROM contacts ORDER BY id"))]  # fmt: skip
    standin = TwilioStandin(clock)
    server = await aiohttp_server(standin.app)
    answered_after: dict[str, int] = {}  # number → requests arrived when its STOP was answered

    async def stop_texted_by(phone: str) -> None:
        callback = inbound_provider.inbound_callback(from_=phone, to="+61400000000", body="Stop")
        response = await client.post(
            URL(callback.url).path, data=callback.body, headers=callback.headers
        )
        assert response.status == 200, await response.text()
        answered_after[phone] = len(standin.sends)

    async with aiohttp.ClientSession() as session:
        twilio = TwilioProvider(
            session, account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, clock=clock,
            public_base_url="https://sms.example.com",
            api_base_url=str(server.make_url("")).rstrip("/"),
        )  # fmt: skip
        loop = HeldSender(db, clock, twilio)
        loop.config = type(loop.config)(batch_size=3)
        in_flight, later = phones_in_order[1], phones_in_order[4]
        batch = asyncio.create_task(loop.run_once())
        await asyncio.wait_for(loop.claimed.wait(), WAIT_LIMIT_SECONDS)
        stops = [asyncio.create_task(stop_texted_by(p)) for p in (in_flight, later)]
        await until(lambda: a_stop_is_waiting(db, s.tenant_id))
        loop.go.set()
        await batch
        await asyncio.gather(*stops)
        for _ in range(3):
            clock.advance(minutes=1)
            await loop.run_once()

    arrivals = [r.form_value("To") or "" for r in standin.sends]
    for phone in (in_flight, later):
        assert phone not in arrivals[answered_after[phone] :], arrivals
    assert in_flight in arrivals and later not in arrivals
    assert sorted(arrivals) == sorted(set(phones_in_order) - {later})
    dnc = {r["phone_e164"] for r in await db.all(Sql("SELECT phone_e164 FROM do_not_contact"))}
    assert dnc == {in_flight, later}


async def test_a_transaction_may_take_its_stop_lock_twice(db: Database) -> None:
    async def twice() -> None:
        async with db.transaction() as tx:
            await tx.stop_lock(1)
            await tx.stop_lock(1)  # e.g. a STOP handler, then add_to_dnc

    await asyncio.wait_for(twice(), WAIT_LIMIT_SECONDS)
    await asyncio.wait_for(twice(), WAIT_LIMIT_SECONDS)  # and it was released
