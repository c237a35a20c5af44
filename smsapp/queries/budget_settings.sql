-- A tenant's spend caps (pack §3, §7, §13, §17) as the budget API and settings page edit them,
-- and its spend from the costs table.

-- name: get
SELECT tenant_id, daily_limit, monthly_limit, alert_threshold_pct, created_at, updated_at
FROM budgets WHERE tenant_id = :tenant_id;

-- name: upsert
INSERT INTO budgets (tenant_id, daily_limit, monthly_limit, alert_threshold_pct, created_at, updated_at)
VALUES (:tenant_id, :daily_limit, :monthly_limit, :alert_threshold_pct, :now, :now)
ON CONFLICT (tenant_id) DO UPDATE SET
    daily_limit = excluded.daily_limit,
    monthly_limit = excluded.monthly_limit,
    alert_threshold_pct = excluded.alert_threshold_pct,
    updated_at = excluded.updated_at;

-- Spend of the tenant's local day and month (boundaries computed by the caller, in UTC).
-- Costs of unknown price (amount NULL) count nothing. Served by costs_tenant_time.
-- name: spend
SELECT
    COALESCE(SUM(CASE WHEN created_at >= :day_start AND created_at < :day_end THEN amount END), 0) AS today,
    COALESCE(SUM(amount), 0) AS month
FROM costs
WHERE tenant_id = :tenant_id
  AND amount IS NOT NULL
  AND created_at >= :month_start
  AND created_at < :month_end;
