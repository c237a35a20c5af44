-- Budget headroom: the tenant's caps (none without a budgets row) and timezone.

-- name: caps
SELECT t.timezone, b.daily_limit, b.monthly_limit, b.alert_threshold_pct
FROM tenants t LEFT JOIN budgets b ON b.tenant_id = t.id
WHERE t.id = :tenant_id;
