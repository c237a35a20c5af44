-- Status callbacks (pack §7, §11): find the job, move it forward only, record its events.

-- Our reference (the attempt id in the callback URL) is committed with `sending` before
-- the provider is called, so it finds the job even before the provider's id is saved.
-- name: job_by_attempt
SELECT j.id, j.tenant_id, j.campaign_id, j.contact_id, j.status, c.phone_e164
FROM send_jobs j LEFT JOIN contacts c ON c.id = j.contact_id
WHERE j.attempt_id = :reference;

-- name: job_by_message_id
SELECT j.id, j.tenant_id, j.campaign_id, j.contact_id, j.status, c.phone_e164
FROM send_jobs j LEFT JOIN contacts c ON c.id = j.contact_id
WHERE j.provider_message_id = :provider_message_id
ORDER BY j.id DESC
LIMIT 1;

-- name: outbox_by_attempt
SELECT id FROM outbox WHERE attempt_id = :reference;

-- name: job_status
SELECT status FROM send_jobs WHERE id = :id;

-- Forward only: the UPDATE names the status it moves from, so a job that moved meanwhile
-- is left alone (and re-read). Only the statement that changes the row emits its events.
-- name: advance_job
UPDATE send_jobs
SET status = CAST(:status AS TEXT),
    provider_message_id = COALESCE(provider_message_id, :provider_message_id),
    sent_at = COALESCE(sent_at, :now),
    delivered_at = CASE WHEN CAST(:status AS TEXT) = 'delivered' THEN :now ELSE delivered_at END,
    error_code = COALESCE(:error_code, error_code),
    updated_at = :now
WHERE id = :id AND status = :current
RETURNING id, tenant_id, campaign_id, contact_id, provider_message_id;

-- name: insert_event
INSERT INTO events (tenant_id, campaign_id, contact_id, send_job_id, type, occurred_at, data, created_at)
VALUES (:tenant_id, :campaign_id, :contact_id, :send_job_id, :type, :now, :data, :now)
RETURNING id;

-- The status writer's batches (one transaction for many callbacks) ------------------------

-- The jobs a batch names, by reference or provider id; PostgreSQL locks them in id order, so
-- the batch plans from their exact status (SQLite: the single writer is enough).
-- name: batch_jobs [sqlite]
SELECT id, tenant_id, campaign_id, contact_id, status, attempt_id, provider_message_id
FROM send_jobs WHERE attempt_id IN (SELECT value FROM json_each(:refs))
UNION
SELECT id, tenant_id, campaign_id, contact_id, status, attempt_id, provider_message_id
FROM send_jobs WHERE provider_message_id IN (SELECT value FROM json_each(:provider_message_ids))
ORDER BY id;

-- (Not `attempt_id = ANY(…) OR provider_message_id = ANY(…)`: the planner reads that OR with a
-- sequential scan. The ids come from one index each, then the rows by primary key.)
-- name: batch_jobs [postgresql]
SELECT id, tenant_id, campaign_id, contact_id, status, attempt_id, provider_message_id
FROM send_jobs
WHERE id = ANY(ARRAY(
    SELECT id FROM send_jobs WHERE attempt_id = ANY(:refs)
    UNION
    SELECT id FROM send_jobs WHERE provider_message_id = ANY(:provider_message_ids)))
ORDER BY id
FOR UPDATE;

-- name: batch_outbox [sqlite]
SELECT attempt_id FROM outbox WHERE attempt_id IN (SELECT value FROM json_each(:refs));

-- name: batch_outbox [postgresql]
SELECT attempt_id FROM outbox WHERE attempt_id = ANY(:refs);

-- SQLite: the batch's writes, each one executemany (one trip to the writer thread); on
-- PostgreSQL, write_batch below does all three in one statement.
-- Rows: {"id", "current", "status", "provider_message_id", "error_code", "now"}.
-- name: advance_jobs [sqlite]
UPDATE send_jobs
SET status = :status,
    provider_message_id = COALESCE(provider_message_id, :provider_message_id),
    sent_at = COALESCE(sent_at, :now),
    delivered_at = CASE WHEN :status = 'delivered' THEN :now ELSE delivered_at END,
    error_code = COALESCE(:error_code, error_code),
    updated_at = :now
WHERE id = :id AND status = :current;

-- Rows: {"tenant_id", "campaign_id", "contact_id", "send_job_id", "type", "data" (JSON text),
-- "now"}.
-- name: insert_events [sqlite]
INSERT INTO events (tenant_id, campaign_id, contact_id, send_job_id, type, occurred_at, data, created_at)
VALUES (:tenant_id, :campaign_id, :contact_id, :send_job_id, :type, :now, :data, :now);

-- PostgreSQL: the batch's three writes in one round trip (jobs, events, outcomes); answers how
-- many jobs moved, which must be all of them (they were read under the lock).
-- name: write_batch [postgresql]
WITH moved AS (
  UPDATE send_jobs j
  SET status = u.status,
      provider_message_id = COALESCE(j.provider_message_id, u.provider_message_id),
      sent_at = COALESCE(j.sent_at, CAST(:now AS TIMESTAMPTZ)),
      delivered_at = CASE WHEN u.status = 'delivered' THEN CAST(:now AS TIMESTAMPTZ)
                          ELSE j.delivered_at END,
      error_code = COALESCE(u.error_code, j.error_code),
      updated_at = CAST(:now AS TIMESTAMPTZ)
  FROM unnest(CAST(:id AS bigint[]), CAST(:current AS text[]), CAST(:status AS text[]),
              CAST(:provider_message_id AS text[]), CAST(:error_code AS text[]))
    AS u(id, current, status, provider_message_id, error_code)
  WHERE j.id = u.id AND j.status = u.current
  RETURNING j.id
), written_events AS (
  INSERT INTO events (tenant_id, campaign_id, contact_id, send_job_id, type, occurred_at, data, created_at)
  SELECT e.tenant_id, e.campaign_id, e.contact_id, e.send_job_id, e.type, CAST(:now AS TIMESTAMPTZ),
         CAST(e.data AS JSONB), CAST(:now AS TIMESTAMPTZ)
  FROM unnest(CAST(:event_tenant_id AS bigint[]), CAST(:event_campaign_id AS bigint[]),
              CAST(:event_contact_id AS bigint[]), CAST(:event_send_job_id AS bigint[]),
              CAST(:event_type AS text[]), CAST(:event_data AS text[]))
    AS e(tenant_id, campaign_id, contact_id, send_job_id, type, data)
), outcomes AS (
  UPDATE webhook_events w SET outcome = o.outcome
  FROM unnest(CAST(:outcome_id AS bigint[]), CAST(:outcome AS text[])) AS o(id, outcome)
  WHERE w.id = o.id
)
SELECT count(*) AS moved FROM moved;
