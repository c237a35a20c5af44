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
VALUES (:tenant_id, :campaign_id, :contact_id, :send_job_id, :type, :now, :data, :now);
