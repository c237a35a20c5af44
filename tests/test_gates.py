"""The gates of pack §7, in order, as a pure function: one table of single jobs, then the
running totals over a batch."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from smsapp import gates
from smsapp.gates import Cancel, Claim, Defer, Skip, decide, number_for

NOW = datetime(2026, 1, 5, 3, 0, tzinfo=UTC)  # Monday 14:00 in Sydney
WINDOW = {d: [["09:00", "20:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
JOB = gates.Job(
    id=1, campaign_id=10, campaign_status="sending", contact_id=100, phone_e164="+61412000001",
    country="AU", state="NSW", postcode=None, timezone=None, parts=1, unit_price=55_000,
    cost_estimate=55_000, sender_kind="phone",
)  # fmt: skip


def context(**overrides: Any) -> gates.Context:
    values: dict[str, Any] = dict(
        now=NOW, tenant_paused=False, tenant_timezone="Australia/Sydney", window=WINDOW,
        respect_holidays=True, rate_limit_per_minute=600, tenant_minute_used=0,
        minute_end=NOW + timedelta(minutes=1), day_start=NOW - timedelta(hours=14),
        day_end=NOW + timedelta(hours=10), month_end=NOW + timedelta(days=27),
        daily_limit=None, monthly_limit=None, spent_today=0, spent_month=0,
        numbers=[gates.Number(5, "+61400000000", "phone", per_minute_limit=60,
                              day_allowance=200)],
        on_dnc=frozenset(), suppressed_phones=frozenset(), recent_campaigns={}, cooldown=True,
    )  # fmt: skip
    values.update(overrides)
    return gates.Context(**values)


def one(job: gates.Job = JOB, **ctx: Any) -> gates.Decision:
    (decision,) = decide([job], context(**ctx))
    return decision


def number(**kw: Any) -> list[gates.Number]:
    return [gates.Number(5, "+61400000000", "phone", **{"per_minute_limit": 60,
                                                        "day_allowance": 200, **kw})]  # fmt: skip


# (what, job changes, context changes, expected (kind, gate or reason, until))
TABLE: list[tuple[str, dict[str, Any], dict[str, Any], tuple[str, str | None, datetime | None]]]
TABLE = [
    ("everything open: claimed", {}, {}, ("claim", None, None)),
    ("tenant paused", {}, {"tenant_paused": True},
     ("defer", "pause", NOW + gates.PAUSE_RECHECK)),
    ("campaign paused", {"campaign_status": "paused"}, {},
     ("defer", "pause", NOW + gates.PAUSE_RECHECK)),
    ("campaign cancelled", {"campaign_status": "cancelled"}, {}, ("cancel", None, None)),
    ("over the daily budget", {}, {"daily_limit": 100_000, "spent_today": 50_000},
     ("defer", "budget", NOW + timedelta(hours=10))),
    ("exactly the daily budget fits", {}, {"daily_limit": 105_000, "spent_today": 50_000},
     ("claim", None, None)),
    ("over the monthly budget", {}, {"monthly_limit": 1_000_000, "spent_month": 990_000},
     ("defer", "budget", NOW + timedelta(days=27))),
    ("unknown price under a budget", {"unit_price": None, "cost_estimate": None},
     {"daily_limit": 10**9}, ("defer", "price_unknown", NOW + gates.PRICE_RECHECK)),
    ("unknown price without a budget is sent", {"unit_price": None, "cost_estimate": None}, {},
     ("claim", None, None)),
    ("on the DNC list", {}, {"on_dnc": frozenset({"+61412000001"})}, ("skip", "dnc", None)),
    ("under a suppression rule", {}, {"suppressed_phones": frozenset({"+61412000001"})},
     ("skip", "suppression", None)),
    ("another campaign within the cooldown", {}, {"recent_campaigns": {100: frozenset({9})}},
     ("skip", "suppression", None)),
    ("its own campaign is no cooldown", {}, {"recent_campaigns": {100: frozenset({10})}},
     ("claim", None, None)),
    ("outside the window", {}, {"now": NOW + timedelta(hours=8)},
     ("defer", "quiet_hours", NOW + timedelta(hours=19))),
    ("tenant minute full", {}, {"tenant_minute_used": 600},
     ("defer", "rate_limit", NOW + timedelta(minutes=1))),
    ("number minute full", {}, {"numbers": number(minute_used=60)},
     ("defer", "rate_limit", NOW + timedelta(minutes=1))),
    ("a long message in an empty minute goes alone", {"parts": 8},
     {"numbers": number(per_minute_limit=5)}, ("claim", None, None)),
    ("warm-up cap reached", {}, {"numbers": number(day_used=200)},
     ("defer", "warmup", NOW + timedelta(hours=10))),
    ("no number of the job's kind", {"sender_kind": "alphanumeric"}, {},
     ("defer", "no_sending_number", NOW + gates.NO_NUMBER_RECHECK)),
    # The order: each earlier gate wins over every later one.
    ("pause before budget", {}, {"tenant_paused": True, "daily_limit": 0},
     ("defer", "pause", NOW + gates.PAUSE_RECHECK)),
    ("budget before dnc", {}, {"daily_limit": 0, "on_dnc": frozenset({"+61412000001"})},
     ("defer", "budget", NOW + timedelta(hours=10))),
    ("dnc before suppression", {}, {"on_dnc": frozenset({"+61412000001"}),
                                    "suppressed_phones": frozenset({"+61412000001"})},
     ("skip", "dnc", None)),
    ("suppression before quiet hours", {}, {"suppressed_phones": frozenset({"+61412000001"}),
                                            "now": NOW + timedelta(hours=8)},
     ("skip", "suppression", None)),
    ("quiet hours before rate limit", {}, {"now": NOW + timedelta(hours=8),
                                           "tenant_minute_used": 600},
     ("defer", "quiet_hours", NOW + timedelta(hours=19))),
    ("rate limit before warm-up", {}, {"numbers": number(minute_used=60, day_used=200)},
     ("defer", "rate_limit", NOW + timedelta(minutes=1))),
]  # fmt: skip


def kind_of(decision: gates.Decision) -> tuple[str, str | None, datetime | None]:
    if isinstance(decision, Claim):
        return ("claim", None, None)
    if isinstance(decision, Defer):
        return ("defer", decision.gate or decision.reason, decision.until)
    if isinstance(decision, Skip):
        return ("skip", decision.reason, None)
    assert isinstance(decision, Cancel)
    return ("cancel", None, None)


@pytest.mark.parametrize(("what", "job", "ctx", "expected"), TABLE, ids=[t[0] for t in TABLE])
def test_it_decides_as_the_table_says(
    what: str, job: dict[str, Any], ctx: dict[str, Any], expected: tuple[str, str | None, Any]
) -> None:
    assert kind_of(one(replace(JOB, **job), **ctx)) == expected


def jobs(n: int, **changes: Any) -> list[gates.Job]:
    return [replace(JOB, id=i, contact_id=100 + i, phone_e164=f"+614120{i:05d}", **changes)
            for i in range(1, n + 1)]  # fmt: skip


def test_it_spends_the_budget_over_the_batch_and_never_beyond() -> None:
    decisions = decide(jobs(10), context(daily_limit=3 * 55_000 + 1))
    assert [kind_of(d)[0] for d in decisions] == ["claim"] * 3 + ["defer"] * 7


def test_it_spends_the_rate_limits_in_segments_over_the_batch() -> None:
    decisions = decide(jobs(10, parts=2), context(numbers=number(per_minute_limit=7)))
    assert [kind_of(d)[:2] for d in decisions] == [("claim", None)] * 3 + [
        ("defer", "rate_limit")
    ] * 7
    decisions = decide(jobs(10), context(rate_limit_per_minute=4, numbers=number()))
    assert sum(isinstance(d, Claim) for d in decisions) == 4


def test_it_caps_a_warming_number_per_day() -> None:
    decisions = decide(jobs(10), context(numbers=number(day_allowance=6, day_used=2)))
    assert sum(isinstance(d, Claim) for d in decisions) == 4


def test_it_sends_one_contact_one_campaign_per_cooldown_within_a_batch() -> None:
    first = replace(JOB, id=1, campaign_id=10)
    second = replace(JOB, id=2, campaign_id=11)
    assert [kind_of(d)[:2] for d in decide([first, second], context())] == [
        ("claim", None), ("skip", "suppression")]  # fmt: skip
    no_cooldown = decide([first, second], context(cooldown=False))
    assert all(isinstance(d, Claim) for d in no_cooldown)


def test_it_chooses_a_number_per_contact_stably_and_evenly() -> None:
    numbers = [gates.Number(i, f"+6140000000{i}", "phone", 60, 200) for i in range(1, 4)]
    chosen = [number_for(c, numbers).id for c in range(1, 3001)]
    assert chosen == [number_for(c, list(reversed(numbers))[::-1]).id for c in range(1, 3001)]
    assert {n: chosen.count(n) for n in (1, 2, 3)} == pytest.approx(
        {1: 1000, 2: 1000, 3: 1000}, abs=60
    )


def test_it_sends_alphanumeric_jobs_from_an_alphanumeric_sender() -> None:
    numbers = [gates.Number(1, "+61400000000", "phone", 60, 200),
               gates.Number(2, "ACME", "alphanumeric", 60, 200)]  # fmt: skip
    decision = one(replace(JOB, sender_kind="alphanumeric"), numbers=numbers)
    assert isinstance(decision, Claim) and decision.number.id == 2
