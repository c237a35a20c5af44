"""The send-time gates of pack §7, in their order, as a pure function over one batch.

    pause → budget → dnc → suppression → quiet_hours → rate_limit → warmup

`decide(jobs, ctx)` answers one Decision per job: claim it (with the sending number chosen
for it), defer it (`held_by` = the gate, until when it may open), skip it for good (dnc,
suppression), or cancel it (its campaign was cancelled). Budgets, rate limits and warm-up caps
are running totals over the batch: each claim spends from them, so the batch as a whole never
exceeds a cap. The sender reads the context from the database and writes the decisions back,
in one transaction; nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from smsapp.rotation import stable_choice
from smsapp.send_window import Place, Window, opening, places_for

Gate = Literal["pause", "budget", "price_unknown", "quiet_hours", "rate_limit", "warmup"]
# A pause is lifted by a resume, a price by a price-book change: those writes release their
# held jobs at once (sender.release_held); until then the gate is looked at again this often.
PAUSE_RECHECK = timedelta(hours=1)
PRICE_RECHECK = timedelta(hours=1)
NO_NUMBER_RECHECK = timedelta(minutes=5)


@dataclass(frozen=True)
class Job:
    id: int
    campaign_id: int
    campaign_status: str
    contact_id: int
    phone_e164: str
    country: str | None
    state: str | None
    postcode: str | None
    timezone: str | None
    parts: int
    unit_price: int | None
    cost_estimate: int | None
    sender_kind: str


@dataclass
class Number:
    id: int
    phone_e164: str
    kind: str
    per_minute_limit: int
    day_allowance: int  # segments allowed today (warm-up schedule, daily cap)
    minute_used: int = 0
    day_used: int = 0


@dataclass
class Context:
    now: datetime
    tenant_paused: bool
    tenant_timezone: str
    window: Window
    respect_holidays: bool
    rate_limit_per_minute: int
    tenant_minute_used: int
    minute_end: datetime  # the next UTC minute
    day_start: datetime  # the tenant's local midnight today (UTC)
    day_end: datetime  # the tenant's next local midnight
    month_end: datetime
    daily_limit: int | None
    monthly_limit: int | None
    spent_today: int  # costs of the tenant's day, reservations included
    spent_month: int
    numbers: Sequence[Number]
    on_dnc: frozenset[str]
    suppressed_phones: frozenset[str]
    # contact → campaigns that sent it a message within the tenant's cooldown_hours
    recent_campaigns: Mapping[int, frozenset[int]]
    cooldown: bool  # cooldown_hours > 0
    _claimed_contacts: dict[int, int] = field(default_factory=dict)  # contact → campaign

    @property
    def has_budget(self) -> bool:
        return self.daily_limit is not None or self.monthly_limit is not None


@dataclass(frozen=True)
class Claim:
    job: Job
    number: Number


@dataclass(frozen=True)
class Defer:
    job: Job
    gate: Gate | None  # None: no gate, but nothing to send from (reason says why)
    until: datetime
    reason: str | None = None


@dataclass(frozen=True)
class Skip:
    job: Job
    reason: Literal["dnc", "suppression"]


@dataclass(frozen=True)
class Cancel:
    job: Job


Decision = Claim | Defer | Skip | Cancel


def number_for(contact_id: int, numbers: Sequence[Number]) -> Number:
    """The contact's number among `numbers` (sorted by id): stable while the set is."""
    return stable_choice(contact_id, numbers)


def _fits(used: int, parts: int, limit: int) -> bool:
    # A message longer than the whole limit still goes, alone, in an otherwise empty period.
    return used + parts <= limit or used == 0


def decide(jobs: Iterable[Job], ctx: Context) -> list[Decision]:
    by_kind: dict[str, list[Number]] = {}
    for number in sorted(ctx.numbers, key=lambda n: n.id):
        by_kind.setdefault(number.kind, []).append(number)
    places: dict[tuple[str | None, ...], tuple[Place, ...]] = {}
    openings: dict[tuple[Place, ...], datetime | None] = {}
    decisions: list[Decision] = []
    for job in jobs:
        decisions.append(_decide_one(job, ctx, by_kind, places, openings))
    return decisions


def _decide_one(
    job: Job,
    ctx: Context,
    by_kind: dict[str, list[Number]],
    places: dict[tuple[str | None, ...], tuple[Place, ...]],
    openings: dict[tuple[Place, ...], datetime | None],
) -> Decision:
    now = ctx.now
    # 1. pause (tenant or campaign)
    if job.campaign_status == "cancelled":
        return Cancel(job)
    if ctx.tenant_paused or job.campaign_status == "paused":
        return Defer(job, "pause", now + PAUSE_RECHECK)
    # 2. budget: spend + reservations + this cost within both caps
    cost = job.cost_estimate or 0
    if ctx.has_budget:
        if job.unit_price is None:
            return Defer(job, "price_unknown", now + PRICE_RECHECK)
        if ctx.daily_limit is not None and ctx.spent_today + cost > ctx.daily_limit:
            return Defer(job, "budget", ctx.day_end)
        if ctx.monthly_limit is not None and ctx.spent_month + cost > ctx.monthly_limit:
            return Defer(job, "budget", ctx.month_end)
    # 3. dnc, 4. suppression: for good
    if job.phone_e164 in ctx.on_dnc:
        return Skip(job, "dnc")
    earlier = ctx._claimed_contacts.get(job.contact_id)
    if (
        job.phone_e164 in ctx.suppressed_phones
        or bool(ctx.recent_campaigns.get(job.contact_id, frozenset()) - {job.campaign_id})
        or (ctx.cooldown and earlier is not None and earlier != job.campaign_id)
    ):
        return Skip(job, "suppression")
    # 5. quiet hours, in the contact's timezone(s)
    key = (job.timezone, job.state, job.postcode, job.country)
    if key not in places:
        places[key] = places_for(
            timezone=job.timezone,
            state=job.state,
            postcode=job.postcode,
            country=job.country,
            tenant_timezone=ctx.tenant_timezone,
        )
    where = places[key]
    if where not in openings:
        openings[where] = opening(now, where, ctx.window, respect_holidays=ctx.respect_holidays)
    opens_at = openings[where]
    if opens_at is not None:
        return Defer(job, "quiet_hours", opens_at)
    # 6. rate limit: the tenant's, then the sending number's, segments per UTC minute
    candidates = by_kind.get(job.sender_kind)
    if not candidates:
        return Defer(job, None, now + NO_NUMBER_RECHECK, reason="no_sending_number")
    number = number_for(job.contact_id, candidates)
    if not _fits(ctx.tenant_minute_used, job.parts, ctx.rate_limit_per_minute):
        return Defer(job, "rate_limit", ctx.minute_end)
    if not _fits(number.minute_used, job.parts, number.per_minute_limit):
        return Defer(job, "rate_limit", ctx.minute_end)
    # 7. warm-up: the number's segments today (tenant's local day)
    if not _fits(number.day_used, job.parts, number.day_allowance):
        return Defer(job, "warmup", ctx.day_end)
    ctx.spent_today += cost
    ctx.spent_month += cost
    ctx.tenant_minute_used += job.parts
    number.minute_used += job.parts
    number.day_used += job.parts
    ctx._claimed_contacts.setdefault(job.contact_id, job.campaign_id)
    return Claim(job, number)
