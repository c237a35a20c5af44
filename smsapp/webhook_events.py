"""Webhook replay protection (pack §11) and the webhook counters.

Every authenticated webhook is first claimed in `webhook_events`, unique on (provider,
provider_event_id), inside the transaction that applies it: a duplicate finds the key taken
and changes nothing. Rejected requests write nothing; they are counted in `WebhookCounters`
(kept in the app under `WEBHOOK_COUNTERS`, for /metrics) and logged.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from aiohttp import web

from smsapp.db import Executor, json_dumps

Provider = Literal["sandbox", "twilio"]
Kind = Literal["status", "inbound"]
MAX_EVENT_ID = 200


class Duplicate(Exception):
    """Raised inside a webhook's transaction when its event was handled before: the
    transaction rolls back, so a duplicate changes nothing."""


@dataclass
class WebhookCounters:
    """In-process counts since start: requests refused (by provider and reason) and requests
    handled (by provider, kind and outcome, `duplicate` included)."""

    rejected: Counter[tuple[str, str]] = field(default_factory=Counter)
    handled: Counter[tuple[str, str, str]] = field(default_factory=Counter)

    def reject(self, provider: str, reason: str) -> None:
        self.rejected[(provider, reason)] += 1

    def handle(self, provider: str, kind: str, outcome: str) -> None:
        self.handled[(provider, kind, outcome)] += 1


WEBHOOK_COUNTERS = web.AppKey("webhook_counters", WebhookCounters)


async def claim(
    tx: Executor,
    *,
    provider: Provider,
    event_id: str,
    kind: Kind,
    message_id: str | None,
    payload: dict[str, Any],
    now: datetime,
    outcome: str | None = None,
) -> int:
    """Record the event (its id), or raise Duplicate when it was recorded before. `message_id`:
    the provider's id of the message it is about (a contact's erasure finds it by that)."""
    new_id = await tx.val(
        "webhook_events.insert",
        provider=provider,
        provider_event_id=event_id[:MAX_EVENT_ID],
        kind=kind,
        message_id=message_id,
        payload=payload,
        outcome=outcome,
        now=now,
    )
    if new_id is None:
        raise Duplicate(event_id)
    return int(new_id)


async def set_outcome(tx: Executor, event_id: int, outcome: str) -> None:
    await tx.val("webhook_events.set_outcome", id=event_id, outcome=outcome)


@dataclass(frozen=True)
class EventKey:
    provider: Provider
    event_id: str
    message_id: str | None  # the provider's id of the message it is about
    payload: dict[str, Any]


async def claim_many(
    tx: Executor, events: Sequence[EventKey], *, kind: Kind, now: datetime
) -> list[int | None]:
    """Record many events in one statement: for each, in the order given, its new row's id,
    or None when it was recorded before (also by an earlier one of `events`)."""
    keys = [(e.provider, e.event_id[:MAX_EVENT_ID]) for e in events]
    # Inserted in key order: two batches sharing keys take their index locks in one order.
    order = sorted(range(len(events)), key=lambda i: keys[i])
    if tx.dialect == "postgresql":
        rows = await tx.all(
            "webhook_events.claim_many",
            provider=[keys[i][0] for i in order],
            event_id=[keys[i][1] for i in order],
            message_id=[events[i].message_id for i in order],
            payload=[json_dumps(events[i].payload) for i in order],
            kind=kind,
            now=now,
        )
    else:
        rows = await tx.all(
            "webhook_events.claim_many",
            rows=[
                {
                    "provider": keys[i][0],
                    "event_id": keys[i][1],
                    "message_id": events[i].message_id,
                    "payload": events[i].payload,
                }
                for i in order
            ],
            kind=kind,
            now=now,
        )
    new = {(r["provider"], r["provider_event_id"]): int(r["id"]) for r in rows}
    claimed: list[int | None] = []
    for key in keys:
        claimed.append(new.pop(key, None))  # a key given twice: the first one has it
    return claimed


async def set_outcomes(tx: Executor, outcomes: Mapping[int, str]) -> None:
    """Many outcomes at once, SQLite only (PostgreSQL's batch writes them in its one write)."""
    await tx.bulk(
        "webhook_events.set_outcomes", [{"id": i, "outcome": o} for i, o in outcomes.items()]
    )
