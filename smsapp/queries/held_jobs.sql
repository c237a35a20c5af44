-- Jobs a send-time gate holds (send_jobs.held_by, next_attempt_at; pack §7) become due at
-- once when what held them changes, so the next round of the send loop checks them again.
-- Served by send_jobs_tenant_due (tenant_id, status, next_attempt_at).

-- name: release [sqlite]
UPDATE send_jobs SET next_attempt_at = :now, updated_at = :now
WHERE tenant_id = :tenant_id AND status = 'queued' AND next_attempt_at > :now
  AND (held_by IN (SELECT value FROM json_each(:gates))
       OR (:numbers AND held_by IS NULL AND reason = 'no_sending_number'))
  AND (CAST(:campaign_id AS BIGINT) IS NULL OR campaign_id = :campaign_id);

-- name: release [postgresql]
UPDATE send_jobs SET next_attempt_at = :now, updated_at = :now
WHERE tenant_id = :tenant_id AND status = 'queued' AND next_attempt_at > :now
  AND (held_by = ANY(:gates)
       OR (CAST(:numbers AS BOOLEAN) AND held_by IS NULL AND reason = 'no_sending_number'))
  AND (CAST(:campaign_id AS BIGINT) IS NULL OR campaign_id = :campaign_id);

-- A new price book prices the waiting jobs whose destination had no price at enqueue.
-- name: reprice [sqlite]
UPDATE send_jobs
SET unit_price = (SELECT CAST(json_extract(t.price_book, '$.' || upper(COALESCE(k.country, 'AU'))) AS INTEGER)
                  FROM tenants t, contacts k WHERE t.id = send_jobs.tenant_id AND k.id = send_jobs.contact_id),
    updated_at = :now
WHERE tenant_id = :tenant_id AND status = 'queued' AND unit_price IS NULL;

-- name: reprice [postgresql]
UPDATE send_jobs AS j
SET unit_price = CAST(t.price_book ->> upper(COALESCE(k.country, 'AU')) AS BIGINT), updated_at = :now
FROM tenants t, contacts k
WHERE t.id = j.tenant_id AND k.id = j.contact_id
  AND j.tenant_id = :tenant_id AND j.status = 'queued' AND j.unit_price IS NULL;

-- name: reprice_costs
UPDATE send_jobs SET cost_estimate = unit_price * parts
WHERE tenant_id = :tenant_id AND status = 'queued' AND unit_price IS NOT NULL AND cost_estimate IS NULL;
