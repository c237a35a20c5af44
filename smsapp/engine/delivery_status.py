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

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiohttp import web

from smsapp.clock import Clock
from smsapp.db import Database, Executor, Row, json_dumps
from smsapp.dnc import add_to_dnc
from smsapp.engine.status_machine import job_status_for, transition
from smsapp.webhook_events import (
    Duplicate,
    EventKey,
    Provider,
    claim,
    claim_many,
    set_outcome,
    set_outcomes,
)

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
                            kind="status", message_id=callback.provider_message_id,
                            payload=callback.payload, now=now, outcome=outcome)  # fmt: skip
                return outcome
            opted_out = callback.error_code == OPTED_OUT_AT_CARRIER and job["phone_e164"]
            if opted_out:
                # add_to_dnc takes the stop lock: first, before any row is touched.
                await add_to_dnc(tx, clock, tenant_id=job["tenant_id"],
                                 phone_e164=job["phone_e164"], source="provider",
                                 reason=f"provider error {OPTED_OUT_AT_CARRIER}",
                                 created_by=None)  # fmt: skip
            event_id = await claim(tx, provider=callback.provider, event_id=callback.event_id,
                                   kind="status", message_id=callback.provider_message_id,
                                   payload=callback.payload, now=now)  # fmt: skip
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
                await tx.val(  # `val`, not `run`: one trip to SQLite's writer, not two
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


# --- Group commit: many callbacks, one transaction -------------------------------------------

MAX_BATCH = 500  # callbacks in one transaction; more wait for the next


@dataclass
class _JobPlan:
    """What a batch does to one job: from the status it read to where its callbacks take it."""

    job: Row
    current: str  # as read, locked
    status: str  # where the batch's callbacks take it
    provider_message_id: str | None
    error_code: str | None = None

    @property
    def moved(self) -> bool:
        return self.status != self.current


async def record_batch(
    db: Database, clock: Clock, callbacks: Sequence[StatusCallback]
) -> list[str]:
    """Apply many authenticated status callbacks in one transaction, exactly as
    `record_status` would one after another (not a 21610: that one takes the stop lock, so it
    goes alone); answers each one's outcome.

    Set-based: one statement claims every event, one reads (PostgreSQL: locks) every job they
    name, the state machine runs over them in arrival order in memory (two callbacks of one job
    in a batch move it step by step), then one statement each writes the jobs, the events and
    the outcomes. A constant number of round trips per batch, whatever its size."""
    now = clock.now()
    outcomes = ["duplicate"] * len(callbacks)
    async with db.transaction() as tx:
        keys = [EventKey(c.provider, c.event_id, c.provider_message_id, c.payload)
                for c in callbacks]  # fmt: skip
        claimed = await claim_many(tx, keys, kind="status", now=now)
        event_ids = {i: event_id for i, event_id in enumerate(claimed) if event_id is not None}
        live = list(event_ids)
        if not live:
            return outcomes
        refs = sorted({c.reference for i in live if (c := callbacks[i]).reference})
        message_ids = sorted(
            {c.provider_message_id for i in live if (c := callbacks[i]).provider_message_id}
        )
        jobs = await tx.all("delivery_status.batch_jobs", refs=refs,
                            provider_message_ids=message_ids)  # fmt: skip
        by_ref = {j["attempt_id"]: j for j in jobs if j["attempt_id"]}
        by_message: dict[str, Row] = {}
        for j in jobs:  # ordered by id: the newest job with that provider id wins
            if j["provider_message_id"]:
                by_message[j["provider_message_id"]] = j

        def job_of(callback: StatusCallback) -> Row | None:
            found = by_ref.get(callback.reference) if callback.reference else None
            if found is None and callback.provider_message_id:
                found = by_message.get(callback.provider_message_id)
            return found

        missing = sorted(
            {c.reference for i in live if (c := callbacks[i]).reference and job_of(c) is None}
        )
        outbox = (
            {r["attempt_id"] for r in await tx.all("delivery_status.batch_outbox", refs=missing)}
            if missing
            else set()
        )
        plans: dict[int, _JobPlan] = {}
        events: list[dict[str, Any]] = []
        for i in live:
            callback = callbacks[i]
            job = job_of(callback)
            if job is None:
                outcomes[i] = "outbox" if callback.reference in outbox else "unknown_message"
                continue
            plan = plans.get(job["id"]) or _JobPlan(
                job, job["status"], job["status"], job["provider_message_id"]
            )
            outcomes[i] = _plan_callback(plan, callback, events, now)
            plans[job["id"]] = plan
        moved = [p for p in plans.values() if p.moved]
        job_rows = [
            {"id": p.job["id"], "current": p.current, "status": p.status,
             "provider_message_id": p.provider_message_id, "error_code": p.error_code, "now": now}
            for p in moved
        ]  # fmt: skip
        settled = {event_id: outcomes[i] for i, event_id in event_ids.items()}
        if tx.dialect == "postgresql":
            changed = await tx.val(
                "delivery_status.write_batch",
                now=now,
                **_columns(job_rows, ("id", "current", "status", "provider_message_id",
                                      "error_code")),
                **_columns(events, ("tenant_id", "campaign_id", "contact_id", "send_job_id",
                                    "type", "data"), prefix="event_"),
                outcome_id=list(settled),
                outcome=list(settled.values()),
            )  # fmt: skip
        else:
            changed = await tx.bulk("delivery_status.advance_jobs", job_rows)
            await tx.bulk("delivery_status.insert_events", events)
            await set_outcomes(tx, settled)
        if changed != len(moved):  # cannot happen: the jobs were read under the lock
            raise RuntimeError(f"status batch: {len(moved) - changed} jobs moved meanwhile")
    return outcomes


def _columns(
    rows: Sequence[dict[str, Any]], names: Sequence[str], prefix: str = ""
) -> dict[str, list[Any]]:
    """Rows as one list per column, for PostgreSQL's unnest."""
    return {prefix + name: [row[name] for row in rows] for name in names}


def _plan_callback(
    plan: _JobPlan, callback: StatusCallback, events: list[dict[str, Any]], now: datetime
) -> str:
    """One callback's step on its job's plan (in memory), its events appended; its outcome."""
    if job_status_for(callback.status) is None:
        return "ignored"
    step = transition(plan.status, callback.status)
    if step is None:
        return "stale"
    plan.status = step.status
    plan.provider_message_id = plan.provider_message_id or callback.provider_message_id
    plan.error_code = callback.error_code or plan.error_code
    job = plan.job
    for event_type in step.events:
        data: dict[str, Any] = {"provider_message_id": plan.provider_message_id}
        if event_type != "SENT":
            data["error_code"] = callback.error_code
        events.append({
            "tenant_id": job["tenant_id"], "campaign_id": job["campaign_id"],
            "contact_id": job["contact_id"], "send_job_id": job["id"], "type": event_type,
            "data": json_dumps(data), "now": now,
        })  # fmt: skip
    return step.status


class StatusWriter:
    """Group commit of status callbacks (pack §16: ≥ 1,000 a second, none lost).

    Each request hands its callback to `record` and waits; one task writes the callbacks
    waiting at that moment as one batch (`record_batch`), and only once that transaction has
    committed does each request get its answer. The next batch starts as soon as the previous
    one commits, with whatever arrived meanwhile: no timer, so a lone callback is written at
    once, and a busy server writes many per transaction. A batch that fails answers each of
    its requests with the error (a 500: the provider retries). A 21610 goes alone through
    `record_status`: it takes the tenant's stop lock, first in its own transaction."""

    def __init__(self) -> None:
        self._waiting: list[tuple[StatusCallback, asyncio.Future[str]]] = []
        self._writing: asyncio.Task[None] | None = None

    async def record(self, db: Database, clock: Clock, callback: StatusCallback) -> str:
        if callback.error_code == OPTED_OUT_AT_CARRIER:
            return await record_status(db, clock, callback)
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._waiting.append((callback, future))
        if self._writing is None or self._writing.done():
            self._writing = asyncio.create_task(self._write(db, clock))
        return await future

    async def _write(self, db: Database, clock: Clock) -> None:
        while self._waiting:
            batch = self._waiting[:MAX_BATCH]
            del self._waiting[:MAX_BATCH]
            try:
                outcomes = await record_batch(db, clock, [c for c, _ in batch])
            except Exception as exc:
                log.exception("a batch of %d status callbacks failed", len(batch))
                for _, future in batch:
                    if not future.done():
                        future.set_exception(RuntimeError(f"status batch failed: {exc!r}"))
                continue
            except BaseException:  # cancelled (shutdown): nobody may wait forever
                for _, future in [*batch, *self._waiting]:
                    if not future.done():
                        future.cancel()
                self._waiting.clear()
                raise
            for (_, future), outcome in zip(batch, outcomes, strict=True):
                if not future.done():  # its request may have gone away meanwhile
                    future.set_result(outcome)


STATUS_WRITER = web.AppKey("status_writer", StatusWriter)
