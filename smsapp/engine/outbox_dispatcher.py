"""The outbox dispatcher (pack §7, §10): transactional SMS (opt-out and opt-in confirmations,
HELP replies) on the fast lane ahead of campaign traffic. The send loop calls `dispatch_due`
before each campaign batch, outside any sender session.

At most once per row, as for jobs: a row is claimed (a fresh `attempt_id`, `attempts + 1`,
`updated_at` = the claim time) and that claim committed before `provider.send` is called with
the attempt id as its reference. After that, the row is only ever sent again when the message
is known not to have gone out:

  accepted       processed_at, provider_message_id, and a cost row (parts × the tenant's price
                 for the destination country; NULL when the price is unknown).
  rejected       processed_at + last_error; a carrier opt-out (21610) also writes DNC (source
                 `provider`). Never retried.
  rate_limited,  the claim is released (attempt_id NULL) and the row is due again after
  unreached      Retry-After or an exponential backoff with jitter; after MAX_ATTEMPTS it is
                 given up (processed_at + last_error).
  ambiguous      the provider is asked whether it holds the message (`find`): found → settled
                 as sent; not found → retried like `unreached`; the question itself failing →
                 the row stays claimed and is asked about again later. A provider that cannot
                 answer (`can_reconcile` False) → processed with last_error 'unknown: …'.

A row still claimed and unprocessed whose claim (updated_at) is older than LEASE was left by a
process that died while sending. It is reconciled exactly like an ambiguous send, never resent
blindly. While a reconciliation runs, `available_at` is pushed past the lease so no other
process picks the same row; `updated_at` keeps the claim time the question is asked about.

Claims are `FOR UPDATE SKIP LOCKED` on PostgreSQL, so several processes share the work without
ever claiming one row twice; on SQLite the single writer serialises them.

Transactional messages skip the campaign gates (pause, budget, window, rate limits, warm-up)
and the DNC list: an opt-out confirmation goes to a number that has just been put on it. What
is queued here was decided by the code that queued it (smsapp.inbound).
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from smsapp.clock import Clock
from smsapp.config import Settings
from smsapp.db import Database, Row
from smsapp.dnc import add_to_dnc
from smsapp.encoding import count_parts
from smsapp.engine.providers.base import Accepted, Outgoing, Provider, ProviderError
from smsapp.queue_builder import unit_price
from smsapp.test_send import to_country

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=2)  # a claim older than this, still unprocessed, was left by a crash
MAX_ATTEMPTS = 5
BACKOFF_BASE = timedelta(seconds=5)
BACKOFF_CAP = timedelta(minutes=10)
# After this long without an answer from `find`, nobody will ever know: an operator decides.
RECONCILE_HORIZON = timedelta(days=1)
PARALLEL_SENDS = 8
OPTED_OUT_CODE = "21610"


def retry_delay(attempts: int, retry_after: float | None, rng: random.Random) -> timedelta:
    """How long to wait before attempt `attempts + 1`: the provider's Retry-After when it gave
    one, else an exponential backoff (5 s, 10 s, 20 s, … capped at 10 min) with equal jitter
    (half fixed, half random), so retries from many rows do not arrive together."""
    if retry_after is not None and retry_after > 0:
        return timedelta(seconds=retry_after)
    ceiling: timedelta = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** max(attempts - 1, 0))
    return ceiling / 2 + ceiling / 2 * rng.random()


@dataclass(frozen=True)
class Claimed:
    id: int
    tenant_id: int | None
    payload: dict[str, Any]
    attempts: int  # including this attempt
    attempt_id: str
    claimed_at: datetime

    @property
    def outgoing(self) -> Outgoing:
        p = self.payload
        return Outgoing(
            to=str(p["to"]), from_=str(p["from"]), body=str(p["body"]), reference=self.attempt_id
        )

    @property
    def well_formed(self) -> bool:
        p = self.payload
        return isinstance(p, dict) and all(
            isinstance(p.get(k), str) and p[k] for k in ("to", "from", "body")
        )


@dataclass
class _Run:
    db: Database
    clock: Clock
    provider: Provider
    rng: random.Random
    prices: dict[int, Row]

    async def tenant(self, tenant_id: int) -> Row | None:
        if tenant_id not in self.prices:
            row = await self.db.one("outbox.tenant_prices", id=tenant_id)
            if row is None:
                return None
            self.prices[tenant_id] = row
        return self.prices[tenant_id]


async def dispatch_due(
    db: Database,
    clock: Clock,
    settings: Settings,
    provider: Provider,
    *,
    limit: int = 100,
    rng: random.Random | None = None,
) -> int:
    """Send (or reconcile) up to `limit` due outbox SMS rows; the number of rows handled."""
    run = _Run(db, clock, provider, rng or random.Random(), {})
    stale = await _claim_stale(db, clock, limit)
    due = await _claim_due(db, clock, limit - len(stale)) if len(stale) < limit else []
    slots = asyncio.Semaphore(PARALLEL_SENDS)

    async def guarded(step: Any, row: Claimed) -> None:
        async with slots:
            try:
                await step(run, row)
            except Exception:
                # Whatever broke, the row stays claimed: the lease hands it to reconciliation.
                log.exception("outbox row %s: dispatch failed; left for reconciliation", row.id)

    await asyncio.gather(
        *(guarded(_reconcile, row) for row in stale), *(guarded(_send, row) for row in due)
    )
    return len(stale) + len(due)


# --- claims ----------------------------------------------------------------------------------


async def _claim_due(db: Database, clock: Clock, limit: int) -> list[Claimed]:
    """Claim due rows; committed before this returns (so before any provider call)."""
    now = clock.now()
    async with db.transaction() as tx:
        rows = await tx.all("outbox.due_sms", now=now, limit=limit)
        claims = [
            Claimed(r["id"], r["tenant_id"], r["payload"], r["attempts"] + 1, uuid.uuid4().hex, now)
            for r in rows
        ]
        await tx.bulk(
            "outbox.claim",
            [{"id": c.id, "attempt_id": c.attempt_id, "now": now} for c in claims],
        )
    return claims


async def _claim_stale(db: Database, clock: Clock, limit: int) -> list[Claimed]:
    """Rows a dead process claimed and never settled: held for reconciliation (available_at
    past the lease), their claim time (updated_at) kept for the provider lookup."""
    now = clock.now()
    async with db.transaction() as tx:
        rows = await tx.all("outbox.stale_sms", before=now - LEASE, now=now, limit=limit)
        for r in rows:
            await tx.run("outbox.hold", id=r["id"], attempt_id=r["attempt_id"], until=now + LEASE)
    return [
        Claimed(
            r["id"], r["tenant_id"], r["payload"], r["attempts"], r["attempt_id"], r["updated_at"]
        )
        for r in rows
    ]


# --- one row ---------------------------------------------------------------------------------


async def _send(run: _Run, row: Claimed) -> None:
    if not row.well_formed:
        await _finish(run, row, "outbox.failed", error="invalid payload: needs to, from and body")
        return
    try:
        accepted = await run.provider.send(row.outgoing)
    except ProviderError as exc:
        await _failed(run, row, exc)
        return
    await _settle_sent(run, row, accepted)


async def _failed(run: _Run, row: Claimed, exc: ProviderError) -> None:
    if exc.kind == "rejected":
        await _rejected(run, row, exc)
    elif exc.kind == "ambiguous":
        await _reconcile(run, row, first_error=exc)
    else:  # rate_limited, unreached: nothing was sent
        await _retry(run, row, f"{exc.kind}: {exc}", exc.retry_after)


async def _reconcile(run: _Run, row: Claimed, *, first_error: ProviderError | None = None) -> None:
    """Did the provider get this attempt? Only a "no" allows another attempt."""
    why = f"ambiguous: {first_error}" if first_error else "claimed by a process that stopped"
    if not row.well_formed:
        await _finish(run, row, "outbox.failed", error=f"unknown: {why}; invalid payload")
        return
    if not run.provider.can_reconcile:
        await _finish(
            run,
            row,
            "outbox.failed",
            error=f"unknown: {why}; the provider cannot "
            "say whether it was sent, so it is not resent",
        )
        return
    try:
        found = await run.provider.find(row.outgoing, since=row.claimed_at)
    except ProviderError as exc:
        now = run.clock.now()
        if now - row.claimed_at > RECONCILE_HORIZON:
            await _finish(
                run,
                row,
                "outbox.failed",
                error=f"unknown: {why}; the provider could not be asked ({exc})",
            )
            return
        # Still claimed: asked again once the lease and this backoff have passed.
        await run.db.run(
            "outbox.hold",
            id=row.id,
            attempt_id=row.attempt_id,
            until=now + retry_delay(row.attempts, exc.retry_after, run.rng),
        )
        log.warning("outbox row %s: could not ask the provider (%s); asking later", row.id, exc)
        return
    if found is not None:
        await _settle_sent(run, row, found)
    else:
        await _retry(run, row, f"{why}; the provider does not hold it", None)


async def _rejected(run: _Run, row: Claimed, exc: ProviderError) -> None:
    error = f"rejected: {exc}" + (f" (code {exc.code})" if exc.code else "")
    opted_out = exc.opted_out or exc.code == OPTED_OUT_CODE
    async with run.db.transaction() as tx:
        if opted_out and row.tenant_id is not None:
            # The carrier says this person opted out: on the list (stop lock first), for good.
            await add_to_dnc(
                tx,
                run.clock,
                tenant_id=row.tenant_id,
                phone_e164=row.outgoing.to,
                source="provider",
                reason=f"carrier opt-out ({exc.code or 'opted out'})",
                created_by=None,
            )
        await tx.run(
            "outbox.failed", id=row.id, attempt_id=row.attempt_id, error=error, now=run.clock.now()
        )


async def _retry(run: _Run, row: Claimed, error: str, retry_after: float | None) -> None:
    if row.attempts >= MAX_ATTEMPTS:
        await _finish(
            run, row, "outbox.failed", error=f"gave up after {row.attempts} attempts: {error}"
        )
        return
    now = run.clock.now()
    await run.db.run(
        "outbox.retry",
        id=row.id,
        attempt_id=row.attempt_id,
        available_at=now + retry_delay(row.attempts, retry_after, run.rng),
        error=error,
        now=now,
    )


async def _finish(run: _Run, row: Claimed, query: str, *, error: str) -> None:
    await run.db.run(query, id=row.id, attempt_id=row.attempt_id, error=error, now=run.clock.now())


async def _settle_sent(run: _Run, row: Claimed, accepted: Accepted) -> None:
    tenant = await run.tenant(row.tenant_id) if row.tenant_id is not None else None
    _, parts = count_parts(row.outgoing.body)
    price = None
    if tenant is not None:
        price = unit_price(tenant, to_country(row.outgoing.to, tenant["default_country"]))
    now = run.clock.now()
    async with run.db.transaction() as tx:
        settled = await tx.run(
            "outbox.sent",
            id=row.id,
            attempt_id=row.attempt_id,
            provider_message_id=accepted.provider_message_id,
            now=now,
        )
        if settled and tenant is not None:
            await tx.run(
                "outbox.insert_cost",
                tenant_id=tenant["id"],
                campaign_id=row.payload.get("campaign_id"),
                outbox_id=row.id,
                parts=max(parts, 1),
                unit_price=price,
                amount=None if price is None else price * max(parts, 1),
                now=now,
            )
