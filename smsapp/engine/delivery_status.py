"""Status callbacks (pack §7, §11): a provider tells us what became of a message.

`record_status` is the whole of it, for both providers; the routes only authenticate and
parse. The job is found by our reference (the attempt id that rides in the callback URL,
committed with `sending` before the provider call, so a callback that beats the save of the
provider's message id still finds it), else by the provider's message id. Then, in one
transaction that starts by claiming the event in `webhook_events` (a duplicate changes
nothing), the job moves forward only (`status_machine`), each transition that changed the
row writes its events, and the event's outcome is stored:

    sent | delivered | undelivered | failed   the job moved to that status
    stale        the callback would not move the job forward (a late `sent`)
    ignored      a status that means no change (queued, accepted, …)
    outbox       the reference is an outbox row's (a confirmation or HELP reply): no job
    unknown_message  no job has that reference or message id

Error 21610 (the recipient opted out at the carrier) also puts the number on the tenant's
do-not-contact list (source `provider`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from smsapp.clock import Clock
from smsapp.db import Database, Executor, Row
from smsapp.dnc import add_to_dnc
from smsapp.engine.status_machine import job_status_for, transition
from smsapp.webhook_events import Duplicate, Provider, claim, set_outcome

log = logging.getLogger(__name__)

OPTED_OUT_AT_CARRIER = "21610"


@dataclass(frozen=True)
class StatusCallback:
    provider: Provider
    event_id: str  # the replay key (pack §11)
    reference: str | None  # our attempt id, from the callback URL
    provider_message_id: str | None
    status: str  # the provider's word
    error_code: str | None
    payload: dict[str, Any]  # stored as received


async def find_job(db: Executor, callback: StatusCallback) -> Row | None:
    if callback.reference:
        job = await db.one("delivery_status.job_by_attempt", reference=callback.reference)
        if job is not None:
            return job
    if callback.provider_message_id:
        return await db.one(
            "delivery_status.job_by_message_id",
            provider_message_id=callback.provider_message_id,
        )
    return None


async def record_status(db: Database, clock: Clock, callback: StatusCallback) -> str:
    """Apply one authenticated status callback; answers its outcome (`duplicate` when the
    event was handled before, in which case nothing was written)."""
    # Read before the transaction: a job's tenant never changes, and knowing it first lets a
    # 21610 take the tenant's stop lock as its transaction's first statement.
    job = await find_job(db, callback)
    is_outbox = (
        job is None
        and callback.reference is not None
        and await db.one("delivery_status.outbox_by_attempt", reference=callback.reference)
        is not None
    )
    now = clock.now()
    try:
        async with db.transaction() as tx:
            if job is None:
                outcome = "outbox" if is_outbox else "unknown_message"
                await claim(tx, provider=callback.provider, event_id=callback.event_id,
                            kind="status", payload=callback.payload, now=now,
                            outcome=outcome)  # fmt: skip
                return outcome
            opted_out = callback.error_code == OPTED_OUT_AT_CARRIER and job["phone_e164"]
            if opted_out:
                # add_to_dnc takes the stop lock: first, before any row is touched.
                await add_to_dnc(tx, clock, tenant_id=job["tenant_id"],
                                 phone_e164=job["phone_e164"], source="provider",
                                 reason=f"provider error {OPTED_OUT_AT_CARRIER}",
                                 created_by=None)  # fmt: skip
            event_id = await claim(tx, provider=callback.provider, event_id=callback.event_id,
                                   kind="status", payload=callback.payload, now=now)  # fmt: skip
            outcome = await advance_job(tx, job, callback, now=now)
            await set_outcome(tx, event_id, outcome)
            return outcome
    except Duplicate:
        return "duplicate"


async def advance_job(tx: Executor, job: Row, callback: StatusCallback, *, now: datetime) -> str:
    """Move `job` (as read before the transaction) as far as `callback` says, forward only;
    answers the outcome. The read may be stale: every UPDATE names the status it moves from."""
    if job_status_for(callback.status) is None:
        return "ignored"
    current: str | None = job["status"]
    while current is not None:
        step = transition(current, callback.status)
        if step is None:
            return "stale"
        moved = await tx.one(
            "delivery_status.advance_job",
            id=job["id"],
            current=current,
            status=step.status,
            provider_message_id=callback.provider_message_id,
            error_code=callback.error_code,
            now=now,
        )
        if moved is not None:
            for event_type in step.events:
                data: dict[str, Any] = {"provider_message_id": moved["provider_message_id"]}
                if event_type != "SENT":
                    data["error_code"] = callback.error_code
                await tx.run(
                    "delivery_status.insert_event",
                    tenant_id=moved["tenant_id"],
                    campaign_id=moved["campaign_id"],
                    contact_id=moved["contact_id"],
                    send_job_id=moved["id"],
                    type=event_type,
                    data=data,
                    now=now,
                )
            return step.status
        # Another writer (the sender, another callback) moved the job since it was read:
        # plan again from where it is now. Statuses only go up, so this ends.
        current = await tx.val("delivery_status.job_status", id=job["id"])
    return "stale"
