"""The send loop through the Twilio adapter against a local stand-in that speaks Twilio's API
(pack §7): what each answer does to the job, and that an ambiguous answer is settled by the
Messages list before any retry — counted in the requests the stand-in received."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from smsapp.clock import ManualClock
from smsapp.config import Settings
from smsapp.db import Database, Sql
from smsapp.engine.providers import TwilioProvider
from tests.support_sending import OPEN, scenario, sender
from tests.twilio_standin import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    Answer,
    Created,
    Drop,
    Error,
    Hang,
    TwilioStandin,
)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(OPEN)


@pytest.fixture
async def twilio(
    aiohttp_server: Callable[..., Awaitable[TestServer]], clock: ManualClock
) -> AsyncIterator[tuple[TwilioStandin, TwilioProvider]]:
    standin = TwilioStandin(clock)
    server = await aiohttp_server(standin.app)
    async with aiohttp.ClientSession() as session:
        provider = TwilioProvider(
            session, account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, clock=clock,
            public_base_url="https://sms.example.com",
            api_base_url=str(server.make_url("")).rstrip("/"),
            timeout=aiohttp.ClientTimeout(total=0.5),  # the Hang case waits this long
        )  # fmt: skip
        yield standin, provider
    standin.release()


# (what the stand-in answers first, the job's status after one round, its error code,
#  create requests received, list requests received)
CASES: list[tuple[str, Answer, str, str | None, int, int]] = [
    ("201 created", Created(), "sent", None, 1, 0),
    ("400 invalid number", Error(400, 21211, "Invalid 'To' Phone Number"), "failed", "21211", 1, 0),
    ("400 opted out at the carrier", Error(400, 21610, "unsubscribed recipient"), "failed",
     "21610", 1, 0),
    ("429 too many requests", Error(429, 20429, "Too Many Requests", retry_after="30"),
     "queued", "20429", 1, 0),
    ("500 with the message created", Error(500, 20500, "oops", created=True), "sent", None, 1, 1),
    ("500 without the message", Error(500, 20500, "oops", created=False), "queued", "20500", 1, 1),
    ("timeout after creating it", Hang(created=True), "sent", None, 1, 1),
    ("connection dropped before creating it", Drop(created=False), "queued", None, 1, 1),
]  # fmt: skip


@pytest.mark.parametrize(
    ("what", "answer", "status", "code", "creates", "lists"), CASES, ids=[c[0] for c in CASES]
)
async def test_it_settles_each_twilio_answer(
    db: Database, clock: ManualClock, settings: Settings,
    twilio: tuple[TwilioStandin, TwilioProvider], what: str, answer: Answer, status: str,
    code: str | None, creates: int, lists: int,
) -> None:  # fmt: skip
    standin, provider = twilio
    s = await scenario(db, clock, settings, contacts=1)
    standin.script(answer)
    await sender(db, clock, provider).run_once()
    job = await db.one(Sql("SELECT * FROM send_jobs"))
    assert job is not None
    assert (job["status"], job["error_code"]) == (status, code), job["last_error"]
    assert (len(standin.sends), len(standin.lists)) == (creates, lists)
    if status == "sent":
        assert job["provider_message_id"] == standin.messages[0]["sid"]
    dnc = await db.all(Sql("SELECT source FROM do_not_contact WHERE tenant_id = :t"),
                       t=s.tenant_id)  # fmt: skip
    assert dnc == ([{"source": "provider"}] if code == "21610" else [])
    request = standin.sends[0]
    assert request.form_value("StatusCallback") == (
        f"https://sms.example.com/webhooks/twilio/status?ref={job['attempt_id']}"
    )


async def test_a_retried_job_reaches_twilio_once_in_all(
    db: Database, clock: ManualClock, settings: Settings,
    twilio: tuple[TwilioStandin, TwilioProvider],
) -> None:  # fmt: skip
    standin, provider = twilio
    await scenario(db, clock, settings, contacts=1)
    standin.script(Error(500, 20500, "oops", created=False), Error(429, 20429, "slow down"))
    loop = sender(db, clock, provider)
    for _ in range(3):
        await loop.run_once()
        job: dict[str, Any] | None = await db.one(Sql("SELECT * FROM send_jobs"))
        assert job is not None
        clock.set(max(clock.now(), job["next_attempt_at"]))
    assert job is not None and job["status"] == "sent" and job["attempts"] == 3
    assert len(standin.messages) == 1 and len(standin.sends) == 3
