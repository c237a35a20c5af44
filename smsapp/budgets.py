"""Budget headroom (pack §7, §13): how much of today's and this month's caps is left, in the
tenant's timezone — what the queue answer reports and the send loop's budget gate checks.
Caps and spend themselves live in `smsapp.budget_settings`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from smsapp.budget_settings import spend
from smsapp.db import Executor


@dataclass(frozen=True)
class Headroom:
    """Caps and spend in units (1 AUD = 1,000,000); `remaining_*` is None without that cap."""

    daily_limit: int | None
    monthly_limit: int | None
    alert_threshold_pct: int | None
    spent_today: int
    spent_month: int

    @property
    def has_budget(self) -> bool:
        return self.daily_limit is not None or self.monthly_limit is not None

    @property
    def remaining_today(self) -> int | None:
        return None if self.daily_limit is None else max(0, self.daily_limit - self.spent_today)

    @property
    def remaining_month(self) -> int | None:
        return None if self.monthly_limit is None else max(0, self.monthly_limit - self.spent_month)


async def headroom(db: Executor, tenant_id: int, now: datetime) -> Headroom:
    caps = await db.one("budgets.caps", tenant_id=tenant_id)
    assert caps is not None, "no such tenant"
    current = await spend(db, tenant_id=tenant_id, tz=caps["timezone"], now=now)
    return Headroom(
        daily_limit=caps["daily_limit"],
        monthly_limit=caps["monthly_limit"],
        alert_threshold_pct=caps["alert_threshold_pct"],
        spent_today=current.today,
        spent_month=current.month,
    )
