-- Unsubscribe links (pack §10): /u/{token} of campaigns sent from alphanumeric senders.

-- name: by_token
SELECT u.id, u.tenant_id, u.contact_id, u.campaign_id, u.used_at, t.name AS tenant_name,
       c.phone_e164,
       EXISTS (SELECT 1 FROM do_not_contact d
               WHERE d.tenant_id = u.tenant_id AND d.phone_e164 = c.phone_e164) AS on_dnc
FROM unsubscribe_tokens u
JOIN tenants t ON t.id = u.tenant_id
JOIN contacts c ON c.id = u.contact_id AND c.tenant_id = u.tenant_id
WHERE u.token = :token;

-- The first use is kept.
-- name: mark_used
UPDATE unsubscribe_tokens SET used_at = :now WHERE id = :id AND used_at IS NULL;

-- name: cancel_queued_jobs
UPDATE send_jobs SET status = 'cancelled', reason = 'opt_out', updated_at = :now
WHERE tenant_id = :tenant_id AND contact_id = :contact_id AND status = 'queued'
RETURNING id, campaign_id;

-- name: insert_event
INSERT INTO events (tenant_id, campaign_id, contact_id, send_job_id, type, occurred_at, data, created_at)
VALUES (:tenant_id, :campaign_id, :contact_id, :send_job_id, :type, :now, :data, :now);
