"""Provider webhooks (pack §11, §17): status callbacks and inbound messages, per provider.

    POST /webhooks/twilio/status     form fields, X-Twilio-Signature
    POST /webhooks/twilio/inbound    form fields, X-Twilio-Signature
    POST /webhooks/sandbox/status    JSON, Standard Webhooks headers
    POST /webhooks/sandbox/inbound   JSON, Standard Webhooks headers

Public routes: each request authenticates itself. Twilio's signature is checked over
PUBLIC_BASE_URL + the path and query as received (configured, never guessed from proxy
headers) and its AccountSid must be ours; the sandbox's over its Standard Webhooks headers,
with a 5-minute tolerance both ways and every configured secret (rotation). A refused request
answers 403 and writes nothing: it is counted (WEBHOOK_COUNTERS) and logged. The handlers then
parse and hand over to the domain's group-commit writers (`smsapp.engine.delivery_status`,
`smsapp.inbound`), whose transaction commits before the answer; a duplicate answers 200 and
changes nothing. See docs/webhooks.md.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Mapping
from typing import Any

from aiohttp import web
from multidict import MultiDict

from smsapp.access import Access, route
from smsapp.engine.delivery_status import STATUS_WRITER, StatusCallback
from smsapp.engine.providers import SandboxProvider
from smsapp.engine.webhook_signatures import (
    STANDARD_TOLERANCE_SECONDS,
    verify_standard,
    verify_twilio,
)
from smsapp.inbound import InboundMessage, inbound_writer
from smsapp.keys import CLOCK, DB, PROVIDER, SETTINGS
from smsapp.webhook_events import WEBHOOK_COUNTERS

log = logging.getLogger(__name__)

MAX_WEBHOOK_BYTES = 64 * 1024  # a 1,600-character body and Twilio's other fields fit many times
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
IDEMPOTENCY_HEADER = "I-Twilio-Idempotency-Token"


class Refused(Exception):
    """The request is not authentic (403) or not well formed (400): nothing is written."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def refusal(request: web.Request, provider: str, exc: Refused) -> web.Response:
    request.app[WEBHOOK_COUNTERS].reject(provider, exc.reason)
    log.warning(
        "webhook refused: %s %s answered %s (%s)",
        request.method,
        request.path,
        exc.status,
        exc.reason,
        extra={"provider": provider, "reason": exc.reason},
    )
    return web.Response(status=exc.status, text=f"{exc.reason}\n")


async def read_body(request: web.Request) -> bytes:
    if request.content_length is not None and request.content_length > MAX_WEBHOOK_BYTES:
        raise Refused(413, "too_large")
    raw = await request.read()
    if len(raw) > MAX_WEBHOOK_BYTES:
        raise Refused(413, "too_large")
    return raw


def text_field(fields: Mapping[str, Any], *names: str) -> str | None:
    """The first of `names` present as a non-blank string, stripped."""
    for name in names:
        value = fields.get(name)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


# --- Twilio ----------------------------------------------------------------------------------


async def twilio_fields(request: web.Request) -> MultiDict[str]:
    """The form fields of an authentic Twilio request, else Refused."""
    settings = request.app[SETTINGS]
    await read_body(request)
    form = await request.post()
    fields = MultiDict((k, v) for k, v in form.items() if isinstance(v, str))  # no files
    url = settings.public_base_url + request.raw_path
    signature = request.headers.get("X-Twilio-Signature")
    if not verify_twilio(settings.twilio_auth_token or "", url, fields, signature):
        raise Refused(403, "bad_signature")
    ours = settings.twilio_account_sid or ""
    theirs = fields.get("AccountSid", "")
    if not ours or not hmac.compare_digest(theirs.encode(), ours.encode()):
        raise Refused(403, "foreign_account")
    return fields


def payload_of(fields: MultiDict[str]) -> dict[str, Any]:
    return {name: fields.get(name) for name in fields}


async def twilio_status(request: web.Request) -> web.StreamResponse:
    try:
        fields = await twilio_fields(request)
        message_sid = text_field(fields, "MessageSid", "SmsSid")
        status = text_field(fields, "MessageStatus", "SmsStatus")
        if message_sid is None or status is None:
            raise Refused(400, "malformed")
    except Refused as exc:
        return refusal(request, "twilio", exc)
    event_id = request.headers.get(IDEMPOTENCY_HEADER) or f"{message_sid}:{status}"
    callback = StatusCallback(
        provider="twilio",
        event_id=event_id,
        reference=request.query.get("ref") or None,
        provider_message_id=message_sid,
        status=status,
        error_code=text_field(fields, "ErrorCode"),
        payload=payload_of(fields),
    )
    outcome = await request.app[STATUS_WRITER].record(request.app[DB], request.app[CLOCK], callback)
    request.app[WEBHOOK_COUNTERS].handle("twilio", "status", outcome)
    return web.Response(status=200)


async def twilio_inbound(request: web.Request) -> web.StreamResponse:
    try:
        fields = await twilio_fields(request)
        message_sid = text_field(fields, "MessageSid", "SmsMessageSid", "SmsSid")
        from_number = text_field(fields, "From")
        to_number = text_field(fields, "To")
        if message_sid is None or from_number is None or to_number is None:
            raise Refused(400, "malformed")
    except Refused as exc:
        return refusal(request, "twilio", exc)
    message = InboundMessage(
        provider="twilio",
        event_id=request.headers.get(IDEMPOTENCY_HEADER) or message_sid,
        provider_message_id=message_sid,
        from_number=from_number,
        to_number=to_number,
        body=fields.get("Body", ""),
        payload=payload_of(fields),
    )
    outcome = await inbound_writer(request.app).receive(
        request.app[DB], request.app[CLOCK], message
    )
    request.app[WEBHOOK_COUNTERS].handle("twilio", "inbound", outcome)
    # An empty TwiML answer: Twilio sends no automatic reply (ours go through the outbox).
    return web.Response(status=200, text=EMPTY_TWIML, content_type="text/xml")


# --- The sandbox (Standard Webhooks) ---------------------------------------------------------


def sandbox_secrets(app: web.Application) -> list[str]:
    """Every secret a sandbox callback may be signed with: SANDBOX_WEBHOOK_SECRET (several,
    space-separated, while a secret is rotated) and the running sandbox provider's own."""
    secrets = (app[SETTINGS].sandbox_webhook_secret or "").split()
    provider = app.get(PROVIDER)
    if isinstance(provider, SandboxProvider) and provider.webhook_secret not in secrets:
        secrets.append(provider.webhook_secret)
    return secrets


async def sandbox_payload(request: web.Request) -> dict[str, Any]:
    """The JSON object of an authentic sandbox callback, else Refused."""
    raw = await read_body(request)
    now = request.app[CLOCK].now()
    stamp = request.headers.get("webhook-timestamp", "").strip()
    if stamp.isascii() and stamp.isdigit():
        if abs(now.timestamp() - int(stamp)) > STANDARD_TOLERANCE_SECONDS:
            raise Refused(403, "stale_timestamp")
    if not verify_standard(sandbox_secrets(request.app), request.headers, raw, now):
        raise Refused(403, "bad_signature")
    try:
        payload = json.loads(raw)
    except ValueError:
        raise Refused(400, "malformed") from None
    if not isinstance(payload, dict):
        raise Refused(400, "malformed")
    return payload


def sandbox_response(outcome: str) -> web.Response:
    return web.json_response({"outcome": outcome})


async def sandbox_status(request: web.Request) -> web.StreamResponse:
    try:
        payload = await sandbox_payload(request)
        message_id = text_field(payload, "message_id")
        status = text_field(payload, "status")
        if message_id is None or status is None:
            raise Refused(400, "malformed")
    except Refused as exc:
        return refusal(request, "sandbox", exc)
    callback = StatusCallback(
        provider="sandbox",
        event_id=request.headers["webhook-id"],
        # The body is signed, the URL is not: the body's reference wins.
        reference=text_field(payload, "reference") or request.query.get("ref") or None,
        provider_message_id=message_id,
        status=status,
        error_code=text_field(payload, "error_code"),
        payload=payload,
    )
    outcome = await request.app[STATUS_WRITER].record(request.app[DB], request.app[CLOCK], callback)
    request.app[WEBHOOK_COUNTERS].handle("sandbox", "status", outcome)
    return sandbox_response(outcome)


async def sandbox_inbound(request: web.Request) -> web.StreamResponse:
    try:
        payload = await sandbox_payload(request)
        message_id = text_field(payload, "message_id")
        from_number = text_field(payload, "from")
        to_number = text_field(payload, "to")
        body = payload.get("body", "")
        if message_id is None or from_number is None or to_number is None:
            raise Refused(400, "malformed")
        if not isinstance(body, str):
            raise Refused(400, "malformed")
    except Refused as exc:
        return refusal(request, "sandbox", exc)
    message = InboundMessage(
        provider="sandbox",
        event_id=request.headers["webhook-id"],
        provider_message_id=message_id,
        from_number=from_number,
        to_number=to_number,
        body=body,
        payload=payload,
    )
    outcome = await inbound_writer(request.app).receive(
        request.app[DB], request.app[CLOCK], message
    )
    request.app[WEBHOOK_COUNTERS].handle("sandbox", "inbound", outcome)
    return sandbox_response(outcome)


routes = [
    route("POST", "/webhooks/twilio/status", twilio_status, access=Access.PUBLIC),
    route("POST", "/webhooks/twilio/inbound", twilio_inbound, access=Access.PUBLIC),
    route("POST", "/webhooks/sandbox/status", sandbox_status, access=Access.PUBLIC),
    route("POST", "/webhooks/sandbox/inbound", sandbox_inbound, access=Access.PUBLIC),
]
