"""Acceptance (pack §7): real `smsapp serve` processes sending through a stand-in Twilio.

- A process killed with SIGKILL mid-campaign and started again sends no message twice: the
  jobs it left `sending` are reconciled by asking the provider, never resent blindly.
- Two processes on one PostgreSQL drain one campaign with no duplicate, and the tenant's
  per-minute limit holds over both.

The stand-in counts every create request it receives. These tests start real processes and
wait for them (boundedly), as the serve tests do.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from smsapp.clock import SystemClock
from smsapp.config import DatabaseUrl, Settings
from smsapp.db import Database, Sql, open_database
from smsapp.numbers import add_sending_number
from smsapp.queue_builder import queue_campaign
from tests.conftest import FreshDatabases, make_settings
from tests.support_sending import add_contacts, make_campaign, make_tenant, phones
from tests.test_serve_process import Server, clean_environment, free_port
from tests.twilio_standin import ACCOUNT_SID, AUTH_TOKEN, Created, Hang, TwilioStandin

pytestmark = pytest.mark.slow

ALL_DAY = {d: [["00:00", "24:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
DRAIN_LIMIT_S = 90.0
LEASE_SECONDS = 2


@pytest.fixture
async def standin() -> AsyncIterator[tuple[TwilioStandin, str]]:
    fake = TwilioStandin(SystemClock())
    runner = web.AppRunner(fake.app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield fake, f"http://127.0.0.1:{port}"
    finally:
        fake.release()
        await runner.cleanup()


async def prepared_campaign(
    db: Database, settings: Settings, contacts: int, **tenant: Any
) -> tuple[int, int]:
    clock = SystemClock()
    tenant_id = await make_tenant(
        db, clock, "acme", send_window=ALL_DAY, respect_public_holidays=False, **tenant
    )
    await add_sending_number(db, clock, tenant_id=tenant_id, value="+61400000000",
                             provider="twilio")  # fmt: skip
    await db.run(Sql("UPDATE sending_numbers SET per_minute_limit = 10000, daily_cap = 100000, "
                     "warmup_started_on = NULL"))  # fmt: skip
    await add_contacts(db, clock, tenant_id, phones(contacts))
    campaign_id = await make_campaign(db, clock, settings, tenant_id, queue=False)
    await queue_campaign(db, clock, settings, tenant_id=tenant_id, campaign_id=campaign_id)
    return tenant_id, campaign_id


def serve_env(workdir: Path, database_url: DatabaseUrl, provider_url: str) -> dict[str, str]:
    return clean_environment(
        DATABASE_URL=database_url.url,
        SMSAPP_DATA_DIR=str(workdir / "data"),
        SMSAPP_SECRET_KEY="test-secret-key-0123456789abcdef0123456789",
        SMS_PROVIDER="twilio",
        TWILIO_ACCOUNT_SID=ACCOUNT_SID,
        TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        TWILIO_API_BASE_URL=provider_url,
        SMSAPP_SEND_LEASE_SECONDS=str(LEASE_SECONDS),
    )


async def healthy(server: Server) -> None:
    deadline = time.monotonic() + 20
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                pytest.fail(f"serve exited with {server.process.returncode}:\n{server.stderr()}")
            try:
                async with http.get(f"http://127.0.0.1:{server.port}/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)  # the process is still starting
    pytest.fail(f"serve did not become healthy:\n{server.stderr()}")


async def until(what: str, condition: Any, *servers: Server) -> None:
    deadline = time.monotonic() + DRAIN_LIMIT_S
    while time.monotonic() < deadline:
        if await condition():
            return
        await asyncio.sleep(0.1)  # real processes at work
    logs = "\n".join(s.stderr()[-3000:] for s in servers)
    pytest.fail(f"timed out waiting for {what}\n{logs}")


async def unfinished(db: Database, campaign_id: int) -> int:
    return int(await db.val(
        Sql("SELECT count(*) FROM send_jobs WHERE campaign_id = :c "
            "AND status IN ('queued', 'sending')"), c=campaign_id,
    ))  # fmt: skip


def sends_per_recipient(fake: TwilioStandin) -> Counter[str]:
    return Counter(r.form_value("To") or "" for r in fake.sends)


async def test_a_process_killed_mid_campaign_and_restarted_sends_no_message_twice(
    db: Database, settings: Settings, database_url: DatabaseUrl, tmp_path: Path,
    standin: tuple[TwilioStandin, str],
) -> None:  # fmt: skip
    fake, url = standin
    contacts = 120
    _, campaign_id = await prepared_campaign(db, settings, contacts)
    # The provider answers 30 sends, then holds the next 15 open (it has created them): the
    # process dies with calls answered, calls in flight and jobs not yet called.
    fake.script(*[Created()] * 30, *[Hang(created=True)] * 15)
    env = serve_env(tmp_path, database_url, url)
    first = Server(tmp_path, free_port(), env)
    try:
        await healthy(first)
        await until("the provider to hold 15 calls open", lambda: _gt(len(fake.sends), 44), first)
        first.kill()
    finally:
        first.stop()
    in_flight = await db.val(Sql("SELECT count(*) FROM send_jobs WHERE status = 'sending'"))
    assert in_flight > 0, "the kill should leave jobs in `sending`"
    fake.release()  # the held requests end (their client is gone anyway)

    second = Server(tmp_path, free_port(), env)
    try:
        await healthy(second)
        await until("the campaign to drain", lambda: _zero(unfinished(db, campaign_id)), second)
    finally:
        second.stop()
    per_recipient = sends_per_recipient(fake)
    assert len(per_recipient) == contacts
    assert max(per_recipient.values()) == 1, [p for p, n in per_recipient.items() if n > 1]
    statuses = await db.all(Sql("SELECT status, count(*) AS n FROM send_jobs GROUP BY status"))
    assert statuses == [{"status": "sent", "n": contacts}]
    assert len(fake.messages) == contacts


async def test_two_processes_on_postgresql_drain_one_campaign_once_within_the_limit(
    fresh_databases: FreshDatabases, tmp_path: Path, standin: tuple[TwilioStandin, str]
) -> None:
    # Several processes need PostgreSQL (SQLite refuses a second serve): this one only.
    database_url = fresh_databases.make("postgresql")
    settings = make_settings(database_url, tmp_path / "data")
    db = await open_database(database_url)
    try:
        await _two_processes(db, settings, database_url, tmp_path, standin)
    finally:
        await db.close()


async def _two_processes(
    db: Database, settings: Settings, database_url: DatabaseUrl, tmp_path: Path,
    standin: tuple[TwilioStandin, str],
) -> None:  # fmt: skip
    fake, url = standin
    contacts, per_minute = 150, 100
    tenant_id, campaign_id = await prepared_campaign(db, settings, contacts,
                                                     rate_limit_per_minute=per_minute)  # fmt: skip
    env = serve_env(tmp_path, database_url, url)
    servers = [Server(tmp_path, free_port(), env) for _ in range(2)]
    try:
        await asyncio.gather(*(healthy(s) for s in servers))
        await until("the campaign to drain", lambda: _zero(unfinished(db, campaign_id)),
                    *servers)  # fmt: skip
    finally:
        for server in servers:
            server.stop()
    per_recipient = sends_per_recipient(fake)
    assert len(per_recipient) == contacts and max(per_recipient.values()) == 1
    windows = await db.all(
        Sql("SELECT starts_at, segments FROM send_windows WHERE scope = 'tenant' "
            "AND scope_id = :t AND period = 'minute' ORDER BY starts_at"), t=tenant_id,
    )  # fmt: skip
    assert sum(w["segments"] for w in windows) == contacts
    assert all(w["segments"] <= per_minute for w in windows), windows


async def _gt(value: int, bound: int) -> bool:
    return value > bound


async def _zero(count: Any) -> bool:
    return int(await count) == 0


async def test_the_demo_sends_through_the_sandbox_and_hears_back_delivered(
    db: Database, settings: Settings, database_url: DatabaseUrl, tmp_path: Path
) -> None:
    """The built-in sandbox end to end: sent by the loop, then its signed status callbacks
    come back to our own webhook and settle every job (delivered, or failed as carriers
    sometimes do)."""
    contacts = 20
    _, campaign_id = await prepared_campaign(db, settings, contacts)
    await db.run(Sql("UPDATE sending_numbers SET provider = 'sandbox'"))
    port = free_port()
    env = clean_environment(
        DATABASE_URL=database_url.url,
        SMSAPP_DATA_DIR=str(tmp_path / "data"),
        SMSAPP_SECRET_KEY="test-secret-key-0123456789abcdef0123456789",
        PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
    )
    server = Server(tmp_path, port, env)
    try:
        await healthy(server)

        async def all_settled() -> bool:  # the sandbox fails a few, as carriers do
            n = await db.val(Sql("SELECT count(*) FROM send_jobs WHERE campaign_id = :c AND "
                                 "status IN ('delivered', 'undelivered', 'failed')"),
                             c=campaign_id)  # fmt: skip
            return int(n) == contacts

        await until("every job to hear back", all_settled, server)
    finally:
        server.stop()
    rows = await db.all(Sql("SELECT type, count(*) AS n FROM events WHERE campaign_id = :c "
                            "GROUP BY type"), c=campaign_id)  # fmt: skip
    events = {r["type"]: r["n"] for r in rows}
    assert events.pop("QUEUED") == events.pop("SENT") == contacts
    assert set(events) <= {"DELIVERED", "UNDELIVERED", "FAILED"}
    assert sum(events.values()) == contacts and events.get("DELIVERED", 0) > 0
