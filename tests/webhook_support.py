"""Helpers shared by the webhook tests: settings with provider credentials, requests signed by
the providers' own reference libraries (Twilio's RequestValidator, the standardwebhooks
package), a job in a given state, and row counts to show that a refusal wrote nothing."""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient
from standardwebhooks.webhooks import Webhook
from twilio.request_validator import RequestValidator

from smsapp.clock import Clock
from smsapp.config import DatabaseUrl, Settings
from smsapp.db import Database, Sql
from smsapp.numbers import add_sending_number
from tests.conftest import make_settings

Client = TestClient[Any, Any]

PUBLIC_BASE_URL = "https://sms.example.com"
TWILIO_SID = "AC" + "0123456789abcdef" * 2
TWILIO_TOKEN = "twilio-test-auth-token-0123456789"
SANDBOX_SECRET = "whsec_" + base64.b64encode(b"webhook-tests-secret-32-bytes-ok").decode()
OLD_SANDBOX_SECRET = "whsec_" + base64.b64encode(b"the-previous-secret-still-valid!").decode()
OUR_NUMBER = "+61400000000"
PERSON = "+61412345678"

TABLES = ("webhook_events", "events", "do_not_contact", "inbound_messages", "outbox", "contacts")


def webhook_settings(database_url: DatabaseUrl, data_dir: Path) -> Settings:
    return make_settings(
        database_url,
        data_dir,
        PUBLIC_BASE_URL=PUBLIC_BASE_URL,
        TWILIO_ACCOUNT_SID=TWILIO_SID,
        TWILIO_AUTH_TOKEN=TWILIO_TOKEN,
        # Two secrets, as during a rotation: callbacks signed with either are taken.
        SANDBOX_WEBHOOK_SECRET=f"{SANDBOX_SECRET} {OLD_SANDBOX_SECRET}",
    )


def twilio_signature_for(path: str, params: dict[str, str], token: str = TWILIO_TOKEN) -> str:
    """What Twilio's own validator computes for a POST to PUBLIC_BASE_URL + path."""
    return str(RequestValidator(token).compute_signature(PUBLIC_BASE_URL + path, params))


async def twilio_post(
    client: Client,
    path: str,
    params: dict[str, str],
    *,
    token: str = TWILIO_TOKEN,
    signed_params: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> ClientResponse:
    """POST a form as Twilio does, signed over PUBLIC_BASE_URL + path (query included) by
    Twilio's own validator. `signed_params` signs other values than those sent (tampering)."""
    signature = twilio_signature_for(
        path, signed_params if signed_params is not None else params, token
    )
    return await client.post(
        path, data=params, headers={"X-Twilio-Signature": signature, **(headers or {})}
    )


def twilio_status_params(sid: str, status: str, error_code: str = "") -> dict[str, str]:
    return {
        "AccountSid": TWILIO_SID,
        "MessageSid": sid,
        "SmsSid": sid,
        "MessageStatus": status,
        "SmsStatus": status,
        "To": PERSON,
        "From": OUR_NUMBER,
        "ApiVersion": "2010-04-01",
        "ErrorCode": error_code,
    }


def twilio_inbound_params(body: str, *, sid: str | None = None, to: str = OUR_NUMBER,
                          from_: str = PERSON) -> dict[str, str]:  # fmt: skip
    sid = sid or "SM" + uuid.uuid4().hex
    return {
        "AccountSid": TWILIO_SID,
        "MessageSid": sid,
        "SmsMessageSid": sid,
        "SmsSid": sid,
        "From": from_,
        "To": to,
        "Body": body,
        "NumMedia": "0",
        "NumSegments": "1",
        "ApiVersion": "2010-04-01",
    }


async def sandbox_post(
    client: Client,
    path: str,
    payload: dict[str, Any],
    *,
    now: datetime,
    secret: str = SANDBOX_SECRET,
    msg_id: str | None = None,
    body: str | None = None,
) -> ClientResponse:
    """POST JSON signed by the standardwebhooks package at `now`; `body` sends other text
    than the signed one (tampering)."""
    signed = json.dumps(payload)
    msg_id = msg_id or "msg_" + uuid.uuid4().hex
    headers = {
        "Content-Type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, now, signed),
    }
    return await client.post(path, data=body if body is not None else signed, headers=headers)


async def counts(db: Database) -> dict[str, int]:
    found = {}
    for table in TABLES:
        found[table] = int(await db.val(Sql(f"SELECT count(*) FROM {table}")))
    return found


@dataclass(frozen=True)
class Job:
    id: int
    tenant_id: int
    campaign_id: int
    contact_id: int
    attempt_id: str


async def campaign(db: Database, clock: Clock, tenant_id: int, name: str = "Spring") -> int:
    now = clock.now()
    campaign_id: int = await db.val(
        Sql("INSERT INTO campaigns (tenant_id, name, status, created_at, updated_at) "
            "VALUES (:t, :name, 'sending', :now, :now) RETURNING id"),
        t=tenant_id, name=name, now=now,
    )  # fmt: skip
    return campaign_id


async def contact(db: Database, clock: Clock, tenant_id: int, phone: str = PERSON) -> int:
    now = clock.now()
    contact_id: int = await db.val(
        Sql("INSERT INTO contacts (tenant_id, phone_e164, first_name, country, consent_source, "
            "consent_at, created_at, updated_at) VALUES (:t, :p, 'Ann', 'AU', 'test', :now, "
            ":now, :now) RETURNING id"),
        t=tenant_id, p=phone, now=now,
    )  # fmt: skip
    return contact_id


async def job(
    db: Database,
    clock: Clock,
    tenant_id: int,
    *,
    campaign_id: int,
    contact_id: int,
    status: str = "sending",
    provider_message_id: str | None = None,
    sent_at: datetime | None = None,
) -> Job:
    """A job as the send loop leaves it: `sending` with its attempt id committed (the provider
    call under way), or later states with the provider's id."""
    now = clock.now()
    attempt_id = "att_" + uuid.uuid4().hex
    job_id: int = await db.val(
        Sql("INSERT INTO send_jobs (tenant_id, campaign_id, contact_id, body, parts, encoding, "
            "status, next_attempt_at, attempts, attempt_id, provider_message_id, sent_at, "
            "created_at, updated_at) VALUES (:t, :c, :p, 'Hello', 1, 'GSM-7', :status, :now, 1, "
            ":attempt, :pmid, :sent_at, :now, :now) RETURNING id"),
        t=tenant_id, c=campaign_id, p=contact_id, status=status, now=now, attempt=attempt_id,
        pmid=provider_message_id, sent_at=sent_at,
    )  # fmt: skip
    return Job(job_id, tenant_id, campaign_id, contact_id, attempt_id)


async def number(db: Database, clock: Clock, tenant_id: int, phone: str = OUR_NUMBER) -> int:
    return await add_sending_number(db, clock, tenant_id=tenant_id, value=phone)
