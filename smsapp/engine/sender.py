"""The send loop (pack §7, §13): claims due jobs, checks every gate in order, commits
`sending` with an attempt id before calling the provider, then writes what the provider said.

One batch is one tenant's due jobs:

1. In a *sender session* (the tenant's stop lock held shared, see `smsapp.db.stop_lock`), one
   transaction reads the jobs (SKIP LOCKED on PostgreSQL; the single writer on SQLite) and the
   gate context (tenant row locked on PostgreSQL, so budgets and rate windows are spent by one
   sender at a time across processes), decides every job with `smsapp.gates.decide`, and
   writes the decisions: claims (status `sending`, a fresh attempt id, the sending number, the
   cost reserved as a cost row, the rate windows spent), deferrals, skips. It commits.
2. Still inside the session, the provider calls of the claimed jobs start and return. Then the
   session ends, releasing the lock: a STOP, DNC, pause or budget change waiting for it takes
   it exclusively, and every later batch sees its write.
3. The outcomes are written in one transaction: `sent` (with the provider's id); retries back
   to `queued` with backoff and jitter; ambiguous answers reconciled by asking the provider
   (`find`) before any retry; permanent refusals `failed`; what cannot be settled `unknown`.

Jobs left in `sending` by a process that died (lease expired) are reconciled the same way,
never resent blindly.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from smsapp import gates
from smsapp.budget_settings import periods, spend
from smsapp.clock import Clock
from smsapp.db import Database, Executor, Row
from smsapp.db import json_dumps as _json
from smsapp.dnc import add_to_dnc, numbers_on_dnc
from smsapp.engine.providers import Accepted, Outgoing, Provider, ProviderError
from smsapp.numbers import warmup_allowance
from smsapp.suppression import active_suppressed_numbers

log = logging.getLogger("smsapp.sender")

AUTH_FAILURE_STATUSES = (401, 403)
PAUSE_REASON_AUTH = (
    "the SMS provider refused our credentials (HTTP {status}); check them, then resume"
)
WINDOW_RETENTION = timedelta(days=3)

# What asking the provider about an ambiguous attempt gave.
NOT_FOUND = "not_found"
CANNOT_ASK = "cannot_ask"
ASK_LATER = "ask_later"
Lookup = Accepted | str


@dataclass(frozen=True)
class SenderConfig:
    batch_size: int = 500
    lease: timedelta = timedelta(minutes=5)  # well over the provider's request timeout
    concurrency: int = 50  # provider calls in flight per batch
    max_attempts: int = 5
    backoff_base: timedelta = timedelta(seconds=10)
    backoff_cap: timedelta = timedelta(minutes=15)
    idle_poll_seconds: float = 1.0
    reconcile_give_up: timedelta = timedelta(days=1)


@dataclass
class BatchResult:
    claimed: int = 0
    sent: int = 0
    deferred: int = 0
    skipped: int = 0
    failed: int = 0
    retried: int = 0
    unknown: int = 0

    def add(self, other: BatchResult) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass(frozen=True)
class Attempt:
    """One claimed job and its provider call."""

    job_id: int
    tenant_id: int
    campaign_id: int
    contact_id: int
    attempt_id: str
    claimed_at: datetime
    outgoing: Outgoing


@dataclass
class Outcome:
    attempt: Attempt
    accepted: Accepted | None = None
    error: ProviderError | None = None


@dataclass
class _Writes:
    """Rows a batch writes, gathered while deciding, written in bulk."""

    claims: list[dict[str, Any]] = field(default_factory=list)
    reservations: list[dict[str, Any]] = field(default_factory=list)
    defers: list[dict[str, Any]] = field(default_factory=list)
    finishes: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    windows: dict[tuple[str, int, str, datetime], int] = field(
        default_factory=lambda: defaultdict(int)
    )


def event_row(
    *, tenant_id: int, campaign_id: int | None, contact_id: int | None, job_id: int | None,
    type_: str, now: datetime, data: dict[str, Any],
) -> dict[str, Any]:  # fmt: skip
    return {"tenant_id": tenant_id, "campaign_id": campaign_id, "contact_id": contact_id,
            "send_job_id": job_id, "type": type_, "now": now, "data": _json(data)}  # fmt: skip


class Sender:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        provider: Provider,
        *,
        config: SenderConfig | None = None,
        before_round: Callable[[], Awaitable[object]] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.provider = provider
        self.config = config or SenderConfig()
        # The fast lane: transactional messages (and the sandbox's callbacks), each round first.
        self.before_round = before_round
        self.rng = rng or random.Random()
        self.last_tick: float | None = None  # time.monotonic() of the last finished round

    # --- the loop -------------------------------------------------------------------------

    async def run_once(self) -> BatchResult:
        """One round: the fast lane, orphaned attempts, then one batch per tenant with due
        jobs. Answers what the round did (the loop goes round again at once when it did
        anything)."""
        total = BatchResult()
        if self.before_round is not None:
            await self.before_round()
        total.add(await self.reconcile_expired())
        now = self.clock.now()
        for row in await self.db.all("sender.due_tenants", now=now):
            total.add(await self.send_batch(row["id"]))
        await self.db.run("sender.complete_campaigns", now=self.clock.now())
        self.last_tick = time.monotonic()
        return total

    async def run_forever(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            try:
                done = await self.run_once()
                busy = done.claimed or done.deferred or done.skipped or done.retried
            except Exception:  # a bad round must not stop sending for good
                log.exception("send round failed")
                busy = 0
            if not busy:
                try:
                    await asyncio.wait_for(stopping.wait(), self.config.idle_poll_seconds)
                except TimeoutError:
                    pass

    def seconds_since_last_round(self) -> float | None:
        """For /readyz: None before the first round."""
        return None if self.last_tick is None else time.monotonic() - self.last_tick

    async def recover_at_start(self) -> BatchResult:
        """SQLite has one serving process (a second refuses to start), so every job found
        `sending` at start-up was left by a process that died: reconcile them all now rather
        than when their leases end. PostgreSQL's other processes may be alive: leases
        decide there."""
        if self.db.dialect != "sqlite":
            return BatchResult()
        total = BatchResult()
        while True:
            done = await self.reconcile_expired(now=self.clock.now() + self.config.lease * 2)
            total.add(done)
            if not (done.sent or done.retried or done.failed or done.unknown):
                return total

    async def prune_windows(self) -> int:
        return await self.db.run("sender.prune_windows", before=self.clock.now() - WINDOW_RETENTION)

    # --- one batch ------------------------------------------------------------------------

    async def send_batch(self, tenant_id: int) -> BatchResult:
        result = BatchResult()
        async with self.db.sender_session(tenant_id) as session:
            async with session.transaction() as tx:
                now = self.clock.now()
                attempts = await self._claim(tx, tenant_id, now, result)
            # Committed: every claimed job is `sending` with its attempt id. The calls start
            # (and return) while the session holds the stop lock shared.
            outcomes = await self._call_provider(attempts)
        await self._settle(outcomes, result)
        return result

    async def _claim(
        self, tx: Executor, tenant_id: int, now: datetime, result: BatchResult
    ) -> list[Attempt]:
        tenant = await tx.one("sender.tenant_for_send", tenant_id=tenant_id)
        if tenant is None:
            return []
        rows = await tx.all(
            "sender.due_jobs", tenant_id=tenant_id, now=now, limit=self.config.batch_size
        )
        if not rows:
            return []
        ctx = await self._context(tx, tenant, rows, now)
        bodies = {r["id"]: r["body"] for r in rows}
        jobs = [_job(r) for r in rows]
        writes = _Writes()
        attempts: list[Attempt] = []
        paused_campaigns: set[int] = set()
        lease_until = now + self.config.lease
        for decision in gates.decide(jobs, ctx):
            job = decision.job
            if isinstance(decision, gates.Claim):
                number = decision.number
                attempt_id = uuid.uuid4().hex
                writes.claims.append({"id": job.id, "attempt_id": attempt_id,
                                      "lease_until": lease_until, "number_id": number.id,
                                      "now": now})  # fmt: skip
                writes.reservations.append({
                    "tenant_id": tenant_id, "campaign_id": job.campaign_id, "send_job_id": job.id,
                    "parts": job.parts, "unit_price": job.unit_price,
                    "amount": None if job.unit_price is None else job.cost_estimate, "now": now,
                })  # fmt: skip
                writes.windows[("tenant", tenant_id, "minute", _minute(now))] += job.parts
                writes.windows[("number", number.id, "minute", _minute(now))] += job.parts
                writes.windows[("number", number.id, "day", ctx.day_start)] += job.parts
                attempts.append(Attempt(
                    job.id, tenant_id, job.campaign_id, job.contact_id, attempt_id, now,
                    Outgoing(to=job.phone_e164, from_=number.phone_e164, body=bodies[job.id],
                             reference=attempt_id),
                ))  # fmt: skip
            elif isinstance(decision, gates.Defer):
                writes.defers.append({"id": job.id, "held_by": decision.gate,
                                      "reason": decision.reason, "until": decision.until,
                                      "now": now})  # fmt: skip
                if decision.gate == "pause":
                    paused_campaigns.add(job.campaign_id)
            elif isinstance(decision, gates.Skip):
                writes.finishes.append({"id": job.id, "status": "skipped",
                                        "reason": decision.reason, "now": now})  # fmt: skip
                writes.events.append(event_row(
                    tenant_id=tenant_id, campaign_id=job.campaign_id, contact_id=job.contact_id,
                    job_id=job.id, type_="SKIPPED", now=now, data={"reason": decision.reason},
                ))  # fmt: skip
            else:
                writes.finishes.append({"id": job.id, "status": "cancelled",
                                        "reason": "campaign_cancelled", "now": now})  # fmt: skip
                writes.events.append(event_row(
                    tenant_id=tenant_id, campaign_id=job.campaign_id, contact_id=job.contact_id,
                    job_id=job.id, type_="CANCELLED", now=now,
                    data={"reason": "campaign_cancelled"},
                ))  # fmt: skip
        claimed = await tx.bulk("sender.claim", writes.claims)
        # SKIP LOCKED (PostgreSQL) and the single writer (SQLite) make every read job ours.
        assert claimed == len(writes.claims), "a claimed job changed under its claim"
        await tx.bulk("sender.reserve", writes.reservations)
        await tx.bulk("sender.defer", writes.defers)
        await tx.bulk("sender.finish", writes.finishes)
        await tx.bulk("sender.insert_events", writes.events)
        if writes.windows:
            await tx.run_many("sender.spend_window", [
                {"tenant_id": tenant_id, "scope": scope, "scope_id": scope_id, "period": period,
                 "starts_at": starts_at, "segments": segments, "now": now}
                for (scope, scope_id, period, starts_at), segments in writes.windows.items()
            ])  # fmt: skip
        # A paused tenant or campaign: hold all its due jobs now, not one batch a round.
        until = now + gates.PAUSE_RECHECK
        if tenant["paused"]:
            await tx.run("sender.defer_paused", tenant_id=tenant_id, campaign_id=None,
                         until=until, now=now)  # fmt: skip
        else:
            for campaign_id in paused_campaigns:
                await tx.run("sender.defer_paused", tenant_id=tenant_id,
                             campaign_id=campaign_id, until=until, now=now)  # fmt: skip
        result.claimed += len(writes.claims)
        result.deferred += len(writes.defers)
        result.skipped += len(writes.finishes)
        return attempts

    async def _context(
        self, tx: Executor, tenant: Row, rows: Sequence[Row], now: datetime
    ) -> gates.Context:
        tenant_id = tenant["id"]
        p = periods(now, tenant["timezone"])
        spent_today = spent_month = 0
        if tenant["daily_limit"] is not None or tenant["monthly_limit"] is not None:
            current = await spend(tx, tenant_id=tenant_id, tz=tenant["timezone"], now=now)
            spent_today, spent_month = current.today, current.month
        used = {
            (w["scope"], w["scope_id"], w["period"]): w["segments"]
            for w in await tx.all(
                "sender.windows", tenant_id=tenant_id, minute=_minute(now), day=p.day_start
            )
        }
        numbers = [
            gates.Number(
                id=n["id"],
                phone_e164=n["phone_e164"],
                kind=n["kind"],
                per_minute_limit=n["per_minute_limit"],
                day_allowance=warmup_allowance(n["warmup_started_on"], p.day, n["daily_cap"]),
                minute_used=used.get(("number", n["id"], "minute"), 0),
                day_used=used.get(("number", n["id"], "day"), 0),
            )
            for n in await tx.all("sender.active_numbers", tenant_id=tenant_id)
        ]
        phones = sorted({r["phone_e164"] for r in rows})
        on_dnc = await numbers_on_dnc(tx, tenant_id=tenant_id, phones=phones)
        suppressed = await active_suppressed_numbers(tx, tenant_id, phones, now)
        recent: dict[int, set[int]] = defaultdict(set)
        if tenant["cooldown_hours"]:
            for r in await tx.all(
                "sender.recent_campaigns",
                tenant_id=tenant_id,
                contact_ids=sorted({r["contact_id"] for r in rows}),
                since=now - timedelta(hours=tenant["cooldown_hours"]),
            ):
                recent[r["contact_id"]].add(r["campaign_id"])
        return gates.Context(
            now=now,
            tenant_paused=bool(tenant["paused"]),
            tenant_timezone=tenant["timezone"],
            window=tenant["send_window"],
            respect_holidays=bool(tenant["respect_public_holidays"]),
            rate_limit_per_minute=tenant["rate_limit_per_minute"],
            tenant_minute_used=used.get(("tenant", tenant_id, "minute"), 0),
            minute_end=_minute(now) + timedelta(minutes=1),
            day_start=p.day_start,
            day_end=p.day_end,
            month_end=p.month_end,
            daily_limit=tenant["daily_limit"],
            monthly_limit=tenant["monthly_limit"],
            spent_today=spent_today,
            spent_month=spent_month,
            numbers=numbers,
            on_dnc=frozenset(on_dnc),
            suppressed_phones=frozenset(suppressed),
            recent_campaigns={k: frozenset(v) for k, v in recent.items()},
            cooldown=bool(tenant["cooldown_hours"]),
        )

    # --- provider calls -------------------------------------------------------------------

    async def _call_provider(self, attempts: Sequence[Attempt]) -> list[Outcome]:
        slots = asyncio.Semaphore(self.config.concurrency)

        async def call(attempt: Attempt) -> Outcome:
            async with slots:
                try:
                    return Outcome(attempt, accepted=await self.provider.send(attempt.outgoing))
                except ProviderError as exc:
                    return Outcome(attempt, error=exc)
                except Exception as exc:  # a bug or a transport surprise: never assume unsent
                    log.exception("provider call raised", extra={"job_id": attempt.job_id})
                    return Outcome(attempt, error=ProviderError(repr(exc), kind="ambiguous"))

        return list(await asyncio.gather(*(call(a) for a in attempts)))

    # --- outcomes -------------------------------------------------------------------------

    async def _settle(self, outcomes: Sequence[Outcome], result: BatchResult) -> None:
        """Write what the provider said. Ambiguous answers are first looked up at the
        provider (outside any transaction), so the write knows sent from not sent."""
        if not outcomes:
            return
        found: dict[str, Lookup] = {}
        for outcome in outcomes:
            if outcome.error is not None and outcome.error.kind == "ambiguous":
                found[outcome.attempt.attempt_id] = await self._lookup(outcome.attempt)
        await self._write_outcomes(outcomes, found, result)

    async def _lookup(self, attempt: Attempt) -> Lookup:
        """The provider's copy of the attempt, NOT_FOUND, CANNOT_ASK (the adapter has no way
        to ask), or ASK_LATER (asking failed now: the job stays `sending` and is asked again
        when its lease ends)."""
        if not self.provider.can_reconcile:
            return CANNOT_ASK
        try:
            copy = await self.provider.find(attempt.outgoing, attempt.claimed_at)
        except ProviderError:
            if self.clock.now() - attempt.claimed_at > self.config.reconcile_give_up:
                return CANNOT_ASK
            return ASK_LATER
        return NOT_FOUND if copy is None else copy

    async def _write_outcomes(
        self,
        outcomes: Sequence[Outcome],
        found: dict[str, Lookup],
        result: BatchResult,
    ) -> None:
        now = self.clock.now()
        opted_out: list[tuple[int, str, str | None]] = []
        auth_failed: dict[int, int] = {}
        async with self.db.transaction() as tx:
            live = {
                r["attempt_id"]: r
                for r in await tx.all(
                    "sender.still_sending", attempt_ids=[o.attempt.attempt_id for o in outcomes]
                )
            }
            sent: list[dict[str, Any]] = []
            events: list[dict[str, Any]] = []
            for outcome in outcomes:
                attempt = outcome.attempt
                accepted = outcome.accepted
                error = outcome.error
                if error is not None and error.kind == "ambiguous":
                    answer = found.get(attempt.attempt_id, ASK_LATER)
                    if isinstance(answer, Accepted):
                        accepted, error = answer, None
                    elif answer == ASK_LATER:
                        continue
                    elif answer == NOT_FOUND:  # the provider has no such message: try again
                        error = ProviderError(f"{error} (the provider has no such message)",
                                              kind="unreached", code=error.code,
                                              http_status=error.http_status)  # fmt: skip
                    # CANNOT_ASK: stays ambiguous, and the job goes to `unknown`
                if attempt.attempt_id not in live:
                    # A status callback already moved it on; keep the provider's id.
                    if accepted is not None:
                        await tx.run(
                            "sender.note_message_id",
                            attempt_id=attempt.attempt_id,
                            provider_message_id=accepted.provider_message_id,
                            now=now,
                        )
                    continue
                if accepted is not None:
                    sent.append({"id": attempt.job_id,
                                 "provider_message_id": accepted.provider_message_id,
                                 "now": now})  # fmt: skip
                    events.append(event_row(
                        tenant_id=attempt.tenant_id, campaign_id=attempt.campaign_id,
                        contact_id=attempt.contact_id, job_id=attempt.job_id, type_="SENT",
                        now=now, data={"provider_message_id": accepted.provider_message_id,
                                       "from": attempt.outgoing.from_},
                    ))  # fmt: skip
                    result.sent += 1
                    continue
                assert error is not None
                job = live[attempt.attempt_id]
                status, next_at = self._after_error(error, job, now)
                if error.http_status in AUTH_FAILURE_STATUSES and error.kind == "rejected":
                    # Our credentials, not this message: put it back and stop the tenant.
                    status, next_at = "queued", now
                    auth_failed[attempt.tenant_id] = error.http_status or 401
                await tx.run("sender.settle", id=attempt.job_id, status=status,
                             error_code=error.code, last_error=f"{error.kind}: {error}"[:500],
                             next_attempt_at=next_at, now=now)  # fmt: skip
                if status in ("queued", "failed"):
                    await tx.run("sender.release_reservation", send_job_id=attempt.job_id)
                if status == "queued":
                    result.retried += 1
                elif status == "failed":
                    result.failed += 1
                    events.append(event_row(
                        tenant_id=attempt.tenant_id, campaign_id=attempt.campaign_id,
                        contact_id=attempt.contact_id, job_id=attempt.job_id, type_="FAILED",
                        now=now, data={"error_code": error.code, "reason": error.kind},
                    ))  # fmt: skip
                    if error.opted_out:
                        opted_out.append((attempt.tenant_id, attempt.outgoing.to, error.code))
                else:
                    result.unknown += 1
            await tx.bulk("sender.mark_sent", sent)
            await tx.bulk("sender.insert_events", events)
        for tenant_id, phone, code in opted_out:
            # The carrier says the person opted out (Twilio 21610): never again (pack §10).
            async with self.db.transaction() as tx:
                await add_to_dnc(tx, self.clock, tenant_id=tenant_id, phone_e164=phone,
                                 source="provider", reason=f"provider error {code}",
                                 created_by=None)  # fmt: skip
        for tenant_id, status_code in auth_failed.items():
            await self._pause_for_credentials(tenant_id, status_code)

    def _after_error(self, error: ProviderError, job: Row, now: datetime) -> tuple[str, datetime]:
        """The job's next status after a failed attempt, and when it may be tried again."""
        if error.kind == "rejected":
            return "failed", now
        if error.kind == "ambiguous":  # could not be settled: an operator decides
            return "unknown", now
        attempts = int(job["attempts"])  # this one included
        if attempts >= self.config.max_attempts:
            return "failed", now
        return "queued", now + self._backoff(attempts, error.retry_after)

    def _backoff(self, attempts: int, retry_after: float | None) -> timedelta:
        """Exponential with full jitter around it (0.5×–1.5×); the provider's Retry-After
        when it gave one and it is longer."""
        base = min(self.config.backoff_cap, self.config.backoff_base * (2 ** max(0, attempts - 1)))
        delay: timedelta = base * self.rng.uniform(0.5, 1.5)
        if retry_after is not None:
            delay = max(delay, timedelta(seconds=retry_after))
        return delay

    async def _pause_for_credentials(self, tenant_id: int, status_code: int) -> None:
        from smsapp.tenant_settings import pause_tenant

        async with self.db.transaction() as tx:
            await pause_tenant(tx, self.clock, tenant_id=tenant_id, user_id=None,
                               reason=PAUSE_REASON_AUTH.format(status=status_code))  # fmt: skip
        log.error("tenant paused: the provider refused our credentials",
                  extra={"tenant_id": tenant_id, "http_status": status_code})  # fmt: skip

    # --- orphaned attempts ----------------------------------------------------------------

    async def reconcile_expired(
        self, limit: int = 100, *, now: datetime | None = None
    ) -> BatchResult:
        """Jobs left `sending` past their lease (their sender died, or its answer was lost):
        ask the provider; found → `sent`, not found → back to `queued`, cannot ask →
        `unknown`. Never resent blindly. `now` moves the lease horizon (start-up)."""
        result = BatchResult()
        horizon = now or self.clock.now()
        async with self.db.transaction() as tx:
            rows = await tx.all("sender.expired_leases", now=horizon, limit=limit)
            for row in rows:  # ours for the lookup; another process skips them meanwhile
                await tx.run("sender.extend_lease", id=row["id"], attempt_id=row["attempt_id"],
                             lease_until=horizon + self.config.lease)  # fmt: skip
        if not rows:
            return result
        outcomes = []
        for row in rows:
            attempt = Attempt(
                row["id"], row["tenant_id"], row["campaign_id"], row["contact_id"],
                row["attempt_id"], row["updated_at"],
                Outgoing(to=row["phone_e164"], from_=row["from_number"] or "",
                         body=row["body"], reference=row["attempt_id"]),
            )  # fmt: skip
            error = ProviderError("the sender stopped before the provider answered",
                                  kind="ambiguous")  # fmt: skip
            outcomes.append(Outcome(attempt, error=error))
        await self._settle(outcomes, result)
        log.info("reconciled orphaned attempts", extra={"jobs": len(rows), **result.__dict__})
        return result


def _job(row: Row) -> gates.Job:
    return gates.Job(
        id=row["id"],
        campaign_id=row["campaign_id"],
        campaign_status=row["campaign_status"],
        contact_id=row["contact_id"],
        phone_e164=row["phone_e164"],
        country=row["country"],
        state=row["state"],
        postcode=row["postcode"],
        timezone=row["timezone"],
        parts=row["parts"],
        unit_price=row["unit_price"],
        cost_estimate=row["cost_estimate"],
        sender_kind=row["sender_kind"],
    )


def _minute(now: datetime) -> datetime:
    return now.replace(second=0, microsecond=0)
