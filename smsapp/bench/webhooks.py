"""`smsapp bench webhooks [--backend sqlite|postgresql] [--kind status|inbound]
[--callbacks 5000] [--connections 50]`: Twilio webhooks against a real listening app (pack §16
target: ≥ 1,000 status callbacks/s, none lost).

`status`: one campaign's jobs, each `sent` with its attempt id and provider id, each gets a
signed `delivered` callback carrying its reference, as Twilio posts them. `inbound`: each of
as many contacts texts us once, nine in ten a reply and one in ten a STOP (DNC, OPT_OUT and a
confirmation in the outbox). Every request is signed like Twilio's (X-Twilio-Signature over
PUBLIC_BASE_URL + path and query) and goes through the whole handler: signature, replay claim
in webhook_events, the state machine or the opt-out matrix, events; each answered once its
group commit's transaction has committed.

The ceiling is a bare aiohttp app whose only handler parses the same form and answers 200,
measured in the same run with the same client. Each server runs in its own (spawned) process;
the client is aiohttp with N concurrent tasks, each request awaited to its answer. Afterwards
the rows are counted: every callback answered 200 must be in the database (none lost).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import statistics
import time
import uuid
from multiprocessing.queues import Queue
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp import web

from smsapp.bench.processes import ServerProcess, serve_until_terminated
from smsapp.bench.scratch import DEFAULT_PG_URL, scratch_database
from smsapp.clock import SystemClock
from smsapp.config import DatabaseUrl, Settings
from smsapp.db import Sql, open_database
from smsapp.engine.webhook_signatures import twilio_signature
from smsapp.tenancy import create_tenant

PUBLIC_BASE_URL = "https://bench.example"  # what requests are signed for; the app is told so
ACCOUNT_SID = "AC" + "0" * 32
AUTH_TOKEN = "bench-auth-token-0123456789abcdef"  # noqa: S105 (a benchmark's own)
OUR_NUMBER = "+61400000000"
FORM = "application/x-www-form-urlencoded"


@dataclasses.dataclass(frozen=True)
class Request:
    path: str
    body: bytes
    headers: dict[str, str]


# --- The servers, each in its own process ----------------------------------------------------


async def _bare_handler(request: web.Request) -> web.StreamResponse:
    await request.post()
    return web.Response(status=200)


def _bare_app() -> web.Application:
    app = web.Application()
    app.router.add_post("/webhooks/twilio/status", _bare_handler)
    app.router.add_post("/webhooks/twilio/inbound", _bare_handler)
    return app


async def _serve(kind: str, settings: Settings | None, ports: Queue[int]) -> None:
    if kind == "bare":
        app = _bare_app()
    else:
        from smsapp.app import create_app

        assert settings is not None
        app = create_app(settings, run_background=False)
    await serve_until_terminated(app, ports)


def _server_main(kind: str, settings: Settings | None, ports: Queue[int]) -> None:
    import logging

    logging.disable(logging.INFO)  # the request log line is not what is measured
    asyncio.run(_serve(kind, settings, ports))


# --- The load --------------------------------------------------------------------------------


@dataclasses.dataclass
class Load:
    requests: int  # answered
    ok: int  # answered 200
    seconds: float
    p99_ms: float

    def figures(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "ok": self.ok,
            "per_second": round(self.requests / self.seconds, 1),
            "p99_ms": round(self.p99_ms, 2),
        }


async def post_all(port: int, requests: list[Request], connections: int) -> Load:
    """N tasks share the list, each sending one request after another; every request is
    awaited to its answer."""
    latencies: list[float] = []
    statuses: list[int] = []
    pending = iter(requests)
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()

        async def worker() -> None:
            for request in pending:
                sent = time.perf_counter()
                url = f"http://127.0.0.1:{port}{request.path}"
                async with session.post(url, data=request.body, headers=request.headers) as r:
                    await r.read()
                    statuses.append(r.status)
                latencies.append(time.perf_counter() - sent)

        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - started
    p99 = statistics.quantiles(latencies, n=100)[98] if len(latencies) > 1 else latencies[0]
    return Load(len(statuses), statuses.count(200), elapsed, p99 * 1000)


def signed(path: str, params: dict[str, str]) -> Request:
    signature = twilio_signature(AUTH_TOKEN, PUBLIC_BASE_URL + path, params)
    headers = {"Content-Type": FORM, "X-Twilio-Signature": signature}
    return Request(path, urlencode(params).encode(), headers)


def phone(n: int) -> str:
    return f"+6141{n:07d}"


# --- Seeding and counting --------------------------------------------------------------------


async def seed(url: DatabaseUrl, kind: str, callbacks: int) -> list[Request]:
    """One tenant with our number and one campaign; one contact per callback, each with a
    `sent` job; and the signed requests."""
    db = await open_database(url)
    clock = SystemClock()
    try:
        tenant_id = await create_tenant(db, clock, name="Bench", slug="bench")
        now = clock.now()
        await db.run(
            Sql("INSERT INTO sending_numbers (tenant_id, phone_e164, created_at, updated_at) "
                "VALUES (:t, :p, :now, :now)"),
            t=tenant_id, p=OUR_NUMBER, now=now,
        )  # fmt: skip
        campaign_id = await db.val(
            Sql("INSERT INTO campaigns (tenant_id, name, status, created_at, updated_at) "
                "VALUES (:t, 'Bench', 'sending', :now, :now) RETURNING id"),
            t=tenant_id, now=now,
        )  # fmt: skip
        await db.run_many(
            Sql("INSERT INTO contacts (tenant_id, phone_e164, country, consent_source, "
                "consent_at, created_at, updated_at) VALUES (:t, :p, 'AU', 'bench', :now, "
                ":now, :now)"),
            [{"t": tenant_id, "p": phone(n), "now": now} for n in range(callbacks)],
        )  # fmt: skip
        contacts = await db.all(Sql("SELECT id, phone_e164 FROM contacts ORDER BY id"))
        jobs = [
            {"t": tenant_id, "c": campaign_id, "p": c["id"], "att": f"att_{uuid.uuid4().hex}",
             "sid": f"SM{uuid.uuid4().hex}", "now": now}
            for c in contacts
        ]  # fmt: skip
        await db.run_many(
            Sql("INSERT INTO send_jobs (tenant_id, campaign_id, contact_id, body, parts, "
                "encoding, status, next_attempt_at, attempts, attempt_id, provider_message_id, "
                "sent_at, created_at, updated_at) VALUES (:t, :c, :p, 'Hello', 1, 'GSM-7', "
                "'sent', :now, 1, :att, :sid, :now, :now, :now)"),
            jobs,
        )  # fmt: skip
    finally:
        await db.close()
    if kind == "status":
        return [
            signed(f"/webhooks/twilio/status?ref={job['att']}", {
                "AccountSid": ACCOUNT_SID, "MessageSid": job["sid"], "SmsSid": job["sid"],
                "MessageStatus": "delivered", "SmsStatus": "delivered", "To": contact["phone_e164"],
                "From": OUR_NUMBER, "ApiVersion": "2010-04-01", "ErrorCode": "",
            })
            for job, contact in zip(jobs, contacts, strict=True)
        ]  # fmt: skip
    return [
        signed("/webhooks/twilio/inbound", {
            "AccountSid": ACCOUNT_SID, "MessageSid": f"SM{uuid.uuid4().hex}",
            "From": contact["phone_e164"], "To": OUR_NUMBER,
            "Body": "STOP" if n % 10 == 9 else "Thanks, see you on Friday!",
            "NumMedia": "0", "NumSegments": "1", "ApiVersion": "2010-04-01",
        })
        for n, contact in enumerate(contacts)
    ]  # fmt: skip


async def recorded(url: DatabaseUrl) -> dict[str, int]:
    db = await open_database(url)
    try:
        row = await db.one(
            Sql("SELECT (SELECT count(*) FROM webhook_events) AS webhook_events, "
                "(SELECT count(*) FROM send_jobs WHERE status = 'delivered') AS delivered_jobs, "
                "(SELECT count(*) FROM events WHERE type = 'DELIVERED') AS delivered_events, "
                "(SELECT count(*) FROM inbound_messages) AS inbound_messages, "
                "(SELECT count(*) FROM events WHERE type IN ('REPLIED', 'OPT_OUT')) "
                "AS inbound_events, "
                "(SELECT count(*) FROM do_not_contact) AS do_not_contact, "
                "(SELECT count(*) FROM outbox) AS outbox")
        )  # fmt: skip
    finally:
        await db.close()
    assert row is not None
    return {k: int(v) for k, v in row.items()}


def none_lost(kind: str, answered: int, counts: dict[str, int], callbacks: int) -> bool:
    if counts["webhook_events"] != answered or answered != callbacks:
        return False
    if kind == "status":
        return counts["delivered_jobs"] == counts["delivered_events"] == answered
    stops = callbacks // 10
    return (
        counts["inbound_messages"] == counts["inbound_events"] == answered
        and counts["do_not_contact"] == counts["outbox"] == stops
    )


def run(settings: Settings, argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="smsapp bench webhooks")
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    parser.add_argument("--kind", choices=("status", "inbound"), default="status")
    parser.add_argument("--callbacks", type=int, default=5000)
    parser.add_argument("--connections", type=int, default=50)
    args = parser.parse_args(argv)
    if args.callbacks < 1:
        raise ValueError("--callbacks must be at least 1")
    if args.connections < 1:
        raise ValueError("--connections must be at least 1")

    with scratch_database(args.backend, args.pg_url) as url:
        requests = asyncio.run(seed(url, args.kind, args.callbacks))
        with ServerProcess(_server_main, "bare", None) as port:
            ceiling = asyncio.run(post_all(port, requests, args.connections))
        app_settings = dataclasses.replace(
            settings,
            database=url,
            public_base_url=PUBLIC_BASE_URL,
            twilio_account_sid=ACCOUNT_SID,
            twilio_auth_token=AUTH_TOKEN,
        )
        with ServerProcess(_server_main, "app", app_settings) as port:
            ours = asyncio.run(post_all(port, requests, args.connections))
        counts = asyncio.run(recorded(url))
    ratio = (ours.requests / ours.seconds) / (ceiling.requests / ceiling.seconds)
    return {
        "benchmark": "webhooks",
        "backend": args.backend,
        "kind": args.kind,
        "callbacks": args.callbacks,
        "connections": args.connections,
        "ours": ours.figures(),
        "ceiling": ceiling.figures(),
        "ratio": round(ratio, 3),
        "recorded": counts,
        "none_lost": ours.ok == ours.requests
        and none_lost(args.kind, ours.ok, counts, args.callbacks),
    }
