-- The outbox (pack §3, §10): transactional messages (opt-out and opt-in confirmations, HELP
-- replies) waiting for the dispatcher, which sends them ahead of campaign traffic.

-- name: insert_sms
INSERT INTO outbox (tenant_id, kind, purpose, to_e164, payload, available_at, attempts, created_at, updated_at)
VALUES (:tenant_id, 'sms', :purpose, :to_e164, :payload, :now, 0, :now, :now)
RETURNING id;

-- The dispatcher (smsapp/engine/outbox_dispatcher.py). Rows due and unclaimed, oldest first;
-- PostgreSQL skips rows another process is claiming, so no row is claimed twice.
-- name: due_sms [postgresql]
SELECT id, tenant_id, payload, attempts FROM outbox
WHERE kind = 'sms' AND processed_at IS NULL AND attempt_id IS NULL AND available_at <= :now
ORDER BY available_at, id
LIMIT :limit
FOR UPDATE SKIP LOCKED;

-- name: due_sms [sqlite]
SELECT id, tenant_id, payload, attempts FROM outbox
WHERE kind = 'sms' AND processed_at IS NULL AND attempt_id IS NULL AND available_at <= :now
ORDER BY available_at, id
LIMIT :limit;

-- The claim, committed before the provider is called: a fresh attempt id per row.
-- name: claim [sqlite]
UPDATE outbox SET attempt_id = :attempt_id, attempts = attempts + 1, updated_at = :now
WHERE id = :id AND attempt_id IS NULL AND processed_at IS NULL;

-- name: claim [postgresql]
UPDATE outbox AS o SET attempt_id = u.attempt_id, attempts = o.attempts + 1, updated_at = u.now
FROM unnest(CAST(:id AS bigint[]), CAST(:attempt_id AS text[]), CAST(:now AS timestamptz[]))
  AS u(id, attempt_id, now)
WHERE o.id = u.id AND o.attempt_id IS NULL AND o.processed_at IS NULL;

-- Claimed rows left unsettled past the lease (a process died while sending); updated_at is
-- the claim time.
-- name: stale_sms [postgresql]
SELECT id, tenant_id, payload, attempts, attempt_id, updated_at FROM outbox
WHERE kind = 'sms' AND processed_at IS NULL AND attempt_id IS NOT NULL
  AND updated_at < :before AND available_at <= :now
ORDER BY updated_at, id
LIMIT :limit
FOR UPDATE SKIP LOCKED;

-- name: stale_sms [sqlite]
SELECT id, tenant_id, payload, attempts, attempt_id, updated_at FROM outbox
WHERE kind = 'sms' AND processed_at IS NULL AND attempt_id IS NOT NULL
  AND updated_at < :before AND available_at <= :now
ORDER BY updated_at, id
LIMIT :limit;

-- Keeps a claimed row out of other processes' hands until :until; updated_at (the claim
-- time) is left as it is on purpose.
-- name: hold
UPDATE outbox SET available_at = :until
WHERE id = :id AND attempt_id = :attempt_id AND processed_at IS NULL;

-- Outcomes: each applies only to the attempt that is still current.
-- name: sent
UPDATE outbox SET processed_at = :now, provider_message_id = :provider_message_id,
                  last_error = NULL, updated_at = :now
WHERE id = :id AND attempt_id = :attempt_id AND processed_at IS NULL;

-- name: failed
UPDATE outbox SET processed_at = :now, last_error = :error, updated_at = :now
WHERE id = :id AND attempt_id = :attempt_id AND processed_at IS NULL;

-- name: retry
UPDATE outbox SET attempt_id = NULL, available_at = :available_at, last_error = :error,
                  updated_at = :now
WHERE id = :id AND attempt_id = :attempt_id AND processed_at IS NULL;

-- name: tenant_prices
SELECT id, price_book, default_country FROM tenants WHERE id = :id;

-- A campaign deleted meanwhile leaves the cost without one.
-- name: insert_cost
INSERT INTO costs (tenant_id, campaign_id, outbox_id, parts, unit_price, amount, currency, source, created_at)
VALUES (:tenant_id, (SELECT id FROM campaigns WHERE id = :campaign_id AND tenant_id = :tenant_id),
        :outbox_id, :parts, :unit_price, :amount, 'AUD', 'estimate', :now);
