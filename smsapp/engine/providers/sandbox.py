"""The built-in simulator, the default provider, so the demo runs end to end without an account.

It accepts messages at once, keeps them in memory (so `find` can answer), and some `latency`
later reports each one delivered, or with probability `failure_rate` undelivered/failed, as a
status callback signed like Standard Webhooks. The send loop collects those with `due_callbacks`
and POSTs them to our own /webhooks/sandbox/status, as a real provider would.

State is per process: with several processes, set SANDBOX_WEBHOOK_SECRET so that any of them
can verify a callback another one produced. The setting may hold several space-separated
secrets (rotation): the first signs, all verify.

Inbound messages are simulated too: `receive` queues a signed callback to our
/webhooks/sandbox/inbound, handed out by `due_callbacks` like the status ones, and
`inbound_callback` makes one at once (tests, the demo). The JSON it posts:
    {"type": "message.inbound", "message_id", "from", "to", "body", "timestamp"}
A callback our server did not take (a 5xx or no answer) can be handed back with `redeliver`,
to be signed afresh and handed out again later, as a real provider retries.
"""

from __future__ import annotations

import heapq
import itertools
import json
import random
import re
import uuid
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from smsapp.clock import Clock
from smsapp.engine.providers.base import (
    HELD_STATUSES,
    Accepted,
    Outgoing,
    ProviderError,
    status_callback_url,
)
from smsapp.engine.webhook_signatures import generate_standard_secret, sign_standard

_E164 = re.compile(r"\+[1-9]\d{7,14}")
# Failure outcomes, with the Twilio error codes they imitate.
_FAILURES = (("undelivered", "30003"), ("failed", "30008"))
# Kept long enough for any reconciliation (which looks back a day from the attempt).
_RETENTION = timedelta(days=2)


@dataclass
class SandboxMessage:
    id: str
    outgoing: Outgoing
    created_at: datetime
    status: str
    final_status: str
    error_code: str | None
    callback_due_at: datetime
    callback_url: str


@dataclass(frozen=True)
class SignedCallback:
    url: str
    headers: dict[str, str]
    body: bytes
    message_id: str
    reference: str  # our attempt id; "" for an inbound message
    status: str  # the message status; "inbound" for an inbound message
    kind: str = "status"  # "status" or "inbound"
    attempt: int = 1  # 1 the first time it is handed out, then 2, 3, … on redelivery


@dataclass
class _Scripted:
    error: ProviderError
    created: bool


class SandboxProvider:
    name = "sandbox"
    can_reconcile = True

    def __init__(
        self,
        clock: Clock,
        *,
        public_base_url: str = "http://127.0.0.1:8080",
        webhook_secret: str | None = None,
        latency: timedelta = timedelta(seconds=2),
        failure_rate: float = 0.0,
        rng: random.Random | None = None,
        opted_out: Iterable[str] = (),
    ) -> None:
        if not 0.0 <= failure_rate <= 1.0:
            raise ValueError("failure_rate must be between 0 and 1")
        self.clock = clock
        self.public_base_url = public_base_url
        # Exposed so the webhook verifier checks with the same secret.
        # Several space-separated secrets (a rotation): the first one signs.
        configured = (webhook_secret or "").split()
        self.webhook_secret = configured[0] if configured else generate_standard_secret()
        self.latency = latency
        self.failure_rate = failure_rate
        self.rng = rng or random.Random()
        self.opted_out = frozenset(opted_out)
        self._messages: dict[str, SandboxMessage] = {}
        self._order: deque[str] = deque()  # ids, oldest first, for pruning and `find`
        self._pending: list[tuple[datetime, int, SandboxMessage]] = []  # heap by due time
        # Inbound callbacks and redeliveries, a heap by due time; signed when handed out.
        self._later: list[tuple[datetime, int, SignedCallback]] = []
        self._sequence = itertools.count()
        self._script: deque[_Scripted] = deque()

    def fail_next(self, error: ProviderError, *, created: bool = False) -> None:
        """Make the next send raise `error`; with created=True the message is kept anyway, as
        when a provider's 5xx or timeout hides a message it did create."""
        self._script.append(_Scripted(error, created))

    @property
    def messages(self) -> list[SandboxMessage]:
        return [self._messages[i] for i in self._order]

    async def send(self, outgoing: Outgoing) -> Accepted:
        scripted = self._script.popleft() if self._script else None
        if scripted is not None and not scripted.created:
            raise scripted.error
        self._validate(outgoing)
        now = self.clock.now()
        self._prune(now)
        if self.rng.random() < self.failure_rate:
            final_status, error_code = self.rng.choice(_FAILURES)
        else:
            final_status, error_code = "delivered", None
        message = SandboxMessage(
            id="SB" + uuid.uuid4().hex,
            outgoing=outgoing,
            created_at=now,
            status="queued",
            final_status=final_status,
            error_code=error_code,
            callback_due_at=now + self.latency,
            callback_url=outgoing.status_callback_url
            or status_callback_url(self.public_base_url, self.name, outgoing.reference),
        )
        self._messages[message.id] = message
        self._order.append(message.id)
        heapq.heappush(self._pending, (message.callback_due_at, next(self._sequence), message))
        if scripted is not None:
            raise scripted.error
        return Accepted(message.id, message.status)

    async def find(self, outgoing: Outgoing, since: datetime) -> Accepted | None:
        cutoff = since - timedelta(days=1)
        for message_id in reversed(self._order):
            message = self._messages[message_id]
            if message.created_at < cutoff:
                break
            if message.outgoing == outgoing and message.status in HELD_STATUSES:
                return Accepted(message.id, message.status)
        return None

    def due_callbacks(self, now: datetime) -> list[SignedCallback]:
        """The callbacks whose time has come (status, inbound, redeliveries), each handed out
        once, oldest first."""
        due: list[tuple[datetime, int, SignedCallback]] = []
        while self._pending and self._pending[0][0] <= now:
            at, order, message = heapq.heappop(self._pending)
            due.append((at, order, self._callback(message, now)))
        while self._later and self._later[0][0] <= now:
            at, order, callback = heapq.heappop(self._later)
            due.append((at, order, self._resigned(callback, now)))
        due.sort(key=lambda item: (item[0], item[1]))
        return [callback for _, _, callback in due]

    def receive(self, *, from_: str, to: str, body: str, delay: timedelta = timedelta(0)) -> str:
        """Simulate a person texting `body` from `from_` to our number `to`: a signed inbound
        callback is handed out by `due_callbacks` once `delay` has passed. Answers its id."""
        now = self.clock.now()
        callback = self._inbound(from_=from_, to=to, body=body, at=now + delay, now=now)
        heapq.heappush(self._later, (now + delay, next(self._sequence), callback))
        return callback.message_id

    def inbound_callback(
        self, *, from_: str, to: str, body: str, now: datetime | None = None
    ) -> SignedCallback:
        """A signed inbound callback, at once (not queued)."""
        at = now or self.clock.now()
        return self._inbound(from_=from_, to=to, body=body, at=at, now=at)

    def redeliver(self, callback: SignedCallback, at: datetime) -> None:
        """Hand `callback` out again at `at`, signed afresh then (same webhook-id, so our
        server recognises a delivery it did take after all as a replay)."""
        retry = replace(callback, attempt=callback.attempt + 1)
        heapq.heappush(self._later, (at, next(self._sequence), retry))

    def _inbound(
        self, *, from_: str, to: str, body: str, at: datetime, now: datetime
    ) -> SignedCallback:
        message_id = "SM" + uuid.uuid4().hex
        payload = {
            "type": "message.inbound",
            "message_id": message_id,
            "from": from_,
            "to": to,
            "body": body,
            "timestamp": at.isoformat(),
        }
        raw = json.dumps(payload, separators=(",", ":")).encode()
        webhook_id = f"msg_{message_id}_inbound"
        url = f"{self.public_base_url.rstrip('/')}/webhooks/{self.name}/inbound"
        return SignedCallback(
            url=url,
            headers=self._signed_headers(webhook_id, raw, now),
            body=raw,
            message_id=message_id,
            reference="",
            status="inbound",
            kind="inbound",
        )

    def _resigned(self, callback: SignedCallback, now: datetime) -> SignedCallback:
        webhook_id = callback.headers["webhook-id"]
        return replace(callback, headers=self._signed_headers(webhook_id, callback.body, now))

    def _signed_headers(self, webhook_id: str, body: bytes, now: datetime) -> dict[str, str]:
        timestamp = int(now.timestamp())
        return {
            "Content-Type": "application/json",
            "webhook-id": webhook_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign_standard(self.webhook_secret, webhook_id, timestamp, body),
        }

    def _callback(self, message: SandboxMessage, now: datetime) -> SignedCallback:
        message.status = message.final_status
        payload: dict[str, str] = {
            "type": "message.status",
            "message_id": message.id,
            "reference": message.outgoing.reference,
            "status": message.status,
            "to": message.outgoing.to,
            "from": message.outgoing.from_,
            "timestamp": message.callback_due_at.isoformat(),
        }
        if message.error_code:
            payload["error_code"] = message.error_code
        body = json.dumps(payload, separators=(",", ":")).encode()
        # Stable per (message, status), so a redelivered callback is recognised as a replay.
        webhook_id = f"msg_{message.id}_{message.status}"
        return SignedCallback(
            url=message.callback_url,
            headers=self._signed_headers(webhook_id, body, now),
            body=body,
            message_id=message.id,
            reference=message.outgoing.reference,
            status=message.status,
        )

    def _validate(self, outgoing: Outgoing) -> None:
        if not _E164.fullmatch(outgoing.to):
            raise ProviderError(
                "The 'To' number is not a valid phone number",
                kind="rejected",
                code="21211",
                http_status=400,
            )
        if outgoing.to in self.opted_out:
            raise ProviderError(
                "Attempt to send to unsubscribed recipient",
                kind="rejected",
                code="21610",
                http_status=400,
                opted_out=True,
            )
        if not outgoing.body:
            raise ProviderError(
                "Message body is required", kind="rejected", code="21602", http_status=400
            )

    def _prune(self, now: datetime) -> None:
        while self._order:
            oldest = self._messages[self._order[0]]
            # "queued": its callback has not been handed out yet.
            if oldest.created_at >= now - _RETENTION or oldest.status == "queued":
                break
            self._order.popleft()
            del self._messages[oldest.id]
