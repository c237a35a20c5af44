-- The send loop (pack §7): claim due jobs, check their gates, commit `sending` before the
-- provider call, then write what the provider answered. See smsapp/engine/sender.py.

-- Tenants with due jobs; served by send_jobs_tenant_due (tenant_id, status, next_attempt_at).
-- name: due_tenants
SELECT t.id FROM tenants t
WHERE EXISTS (SELECT 1 FROM send_jobs j
              WHERE j.tenant_id = t.id AND j.status = 'queued' AND j.next_attempt_at <= :now)
ORDER BY t.id;

-- The tenant's gate settings and caps. On PostgreSQL the row lock serialises senders of one
-- tenant across processes, so budgets and rate windows are read and spent by one at a time.
-- name: tenant_for_send [postgresql]
SELECT t.id, t.name, t.paused, t.timezone, t.send_window, t.respect_public_holidays,
       t.rate_limit_per_minute, t.cooldown_hours, b.daily_limit, b.monthly_limit
FROM tenants t LEFT JOIN budgets b ON b.tenant_id = t.id
WHERE t.id = :tenant_id
FOR UPDATE OF t;

-- name: tenant_for_send [sqlite]
SELECT t.id, t.name, t.paused, t.timezone, t.send_window, t.respect_public_holidays,
       t.rate_limit_per_minute, t.cooldown_hours, b.daily_limit, b.monthly_limit
FROM tenants t LEFT JOIN budgets b ON b.tenant_id = t.id
WHERE t.id = :tenant_id;

-- Due jobs of one tenant, oldest first, with what the gates read. Several processes on
-- PostgreSQL never claim the same job: SKIP LOCKED.
-- name: due_jobs [postgresql]
SELECT j.id, j.campaign_id, c.status AS campaign_status, j.contact_id, k.phone_e164, k.country,
       k.state, k.postcode, k.timezone, j.parts, j.unit_price, j.cost_estimate, j.sender_kind,
       j.body
FROM send_jobs j
JOIN campaigns c ON c.id = j.campaign_id
JOIN contacts k ON k.id = j.contact_id
WHERE j.tenant_id = :tenant_id AND j.status = 'queued' AND j.next_attempt_at <= :now
ORDER BY j.next_attempt_at, j.id
LIMIT :limit
FOR UPDATE OF j SKIP LOCKED;

-- name: due_jobs [sqlite]
SELECT j.id, j.campaign_id, c.status AS campaign_status, j.contact_id, k.phone_e164, k.country,
       k.state, k.postcode, k.timezone, j.parts, j.unit_price, j.cost_estimate, j.sender_kind,
       j.body
FROM send_jobs j
JOIN campaigns c ON c.id = j.campaign_id
JOIN contacts k ON k.id = j.contact_id
WHERE j.tenant_id = :tenant_id AND j.status = 'queued' AND j.next_attempt_at <= :now
ORDER BY j.next_attempt_at, j.id
LIMIT :limit;

-- name: active_numbers
SELECT id, phone_e164, kind, per_minute_limit, daily_cap, warmup_started_on
FROM sending_numbers WHERE tenant_id = :tenant_id AND active ORDER BY id;

-- Segments already sent in the current UTC minute and the tenant's local day.
-- name: windows
SELECT scope, scope_id, period, segments FROM send_windows
WHERE tenant_id = :tenant_id
  AND ((period = 'minute' AND starts_at = :minute) OR (period = 'day' AND starts_at = :day));

-- name: spend_window
INSERT INTO send_windows (tenant_id, scope, scope_id, period, starts_at, segments, created_at, updated_at)
VALUES (:tenant_id, :scope, :scope_id, :period, :starts_at, :segments, :now, :now)
ON CONFLICT (scope, scope_id, period, starts_at)
DO UPDATE SET segments = send_windows.segments + excluded.segments, updated_at = excluded.updated_at;

-- name: prune_windows
DELETE FROM send_windows WHERE starts_at < :before;

-- Contacts of the batch sent (or being sent) a campaign message since :since, with the
-- campaign: another campaign's message within cooldown_hours suppresses (pack §7).
-- name: recent_campaigns [sqlite]
SELECT DISTINCT contact_id, campaign_id FROM send_jobs
WHERE tenant_id = :tenant_id AND contact_id IN (SELECT value FROM json_each(:contact_ids))
  AND (status = 'sending' OR (sent_at >= :since AND status IN ('sent', 'delivered', 'undelivered', 'failed')));

-- name: recent_campaigns [postgresql]
SELECT DISTINCT contact_id, campaign_id FROM send_jobs
WHERE tenant_id = :tenant_id AND contact_id = ANY(:contact_ids)
  AND (status = 'sending' OR (sent_at >= :since AND status IN ('sent', 'delivered', 'undelivered', 'failed')));

-- name: claim [sqlite]
UPDATE send_jobs SET status = 'sending', attempt_id = :attempt_id, attempts = attempts + 1,
       lease_until = :lease_until, sending_number_id = :number_id, held_by = NULL, reason = NULL,
       updated_at = :now
WHERE id = :id AND status = 'queued';

-- name: claim [postgresql]
UPDATE send_jobs AS j SET status = 'sending', attempt_id = v.attempt_id, attempts = j.attempts + 1,
       lease_until = v.lease_until, sending_number_id = v.number_id, held_by = NULL, reason = NULL,
       updated_at = v.now
FROM unnest(CAST(:id AS bigint[]), CAST(:attempt_id AS text[]), CAST(:lease_until AS timestamptz[]),
            CAST(:number_id AS bigint[]), CAST(:now AS timestamptz[]))
  AS v(id, attempt_id, lease_until, number_id, now)
WHERE j.id = v.id AND j.status = 'queued';

-- name: defer [sqlite]
UPDATE send_jobs SET held_by = :held_by, reason = :reason, next_attempt_at = :until, updated_at = :now
WHERE id = :id AND status = 'queued';

-- name: defer [postgresql]
UPDATE send_jobs AS j SET held_by = v.held_by, reason = v.reason, next_attempt_at = v.until,
       updated_at = v.now
FROM unnest(CAST(:id AS bigint[]), CAST(:held_by AS text[]), CAST(:reason AS text[]),
            CAST(:until AS timestamptz[]), CAST(:now AS timestamptz[]))
  AS v(id, held_by, reason, until, now)
WHERE j.id = v.id AND j.status = 'queued';

-- Every due job of a paused tenant (or campaign) waits for the resume, which releases it.
-- name: defer_paused
UPDATE send_jobs SET held_by = 'pause', next_attempt_at = :until, updated_at = :now
WHERE tenant_id = :tenant_id AND status = 'queued' AND next_attempt_at <= :now
  AND (CAST(:campaign_id AS BIGINT) IS NULL OR campaign_id = :campaign_id);

-- name: finish [sqlite]
UPDATE send_jobs SET status = :status, reason = :reason, held_by = NULL, lease_until = NULL,
       updated_at = :now
WHERE id = :id AND status = 'queued';

-- name: finish [postgresql]
UPDATE send_jobs AS j SET status = v.status, reason = v.reason, held_by = NULL, lease_until = NULL,
       updated_at = v.now
FROM unnest(CAST(:id AS bigint[]), CAST(:status AS text[]), CAST(:reason AS text[]),
            CAST(:now AS timestamptz[]))
  AS v(id, status, reason, now)
WHERE j.id = v.id AND j.status = 'queued';

-- The budget reservation (pack §7): the job's cost is a cost row from the moment it is
-- claimed, so every sender's spend includes it; a send that does not happen deletes it.
-- name: reserve [sqlite]
INSERT INTO costs (tenant_id, campaign_id, send_job_id, parts, unit_price, amount, currency, source, created_at)
VALUES (:tenant_id, :campaign_id, :send_job_id, :parts, :unit_price, :amount, 'AUD', 'estimate', :now);

-- name: reserve [postgresql]
INSERT INTO costs (tenant_id, campaign_id, send_job_id, parts, unit_price, amount, currency, source, created_at)
SELECT v.tenant_id, v.campaign_id, v.send_job_id, v.parts, v.unit_price, v.amount, 'AUD', 'estimate', v.now
FROM unnest(CAST(:tenant_id AS bigint[]), CAST(:campaign_id AS bigint[]), CAST(:send_job_id AS bigint[]),
            CAST(:parts AS int[]), CAST(:unit_price AS bigint[]), CAST(:amount AS bigint[]),
            CAST(:now AS timestamptz[]))
  AS v(tenant_id, campaign_id, send_job_id, parts, unit_price, amount, now);

-- name: release_reservation
DELETE FROM costs WHERE send_job_id = :send_job_id AND source = 'estimate';

-- name: insert_events [sqlite]
INSERT INTO events (tenant_id, campaign_id, contact_id, send_job_id, type, occurred_at, data, created_at)
VALUES (:tenant_id, :campaign_id, :contact_id, :send_job_id, :type, :now, :data, :now);

-- name: insert_events [postgresql]
INSERT INTO events (tenant_id, campaign_id, contact_id, send_job_id, type, occurred_at, data, created_at)
SELECT v.tenant_id, v.campaign_id, v.contact_id, v.send_job_id, v.type, v.now, CAST(v.data AS jsonb), v.now
FROM unnest(CAST(:tenant_id AS bigint[]), CAST(:campaign_id AS bigint[]), CAST(:contact_id AS bigint[]),
            CAST(:send_job_id AS bigint[]), CAST(:type AS text[]), CAST(:data AS text[]),
            CAST(:now AS timestamptz[]))
  AS v(tenant_id, campaign_id, contact_id, send_job_id, type, data, now);

-- Jobs of an attempt still in `sending` (a status callback may have moved them on already).
-- name: still_sending [sqlite]
SELECT id, tenant_id, campaign_id, contact_id, attempt_id, attempts FROM send_jobs
WHERE attempt_id IN (SELECT value FROM json_each(:attempt_ids)) AND status = 'sending';

-- name: still_sending [postgresql]
SELECT id, tenant_id, campaign_id, contact_id, attempt_id, attempts FROM send_jobs
WHERE attempt_id = ANY(:attempt_ids) AND status = 'sending'
FOR UPDATE;

-- The provider took it. A status callback that came first may have set the message id.
-- name: mark_sent [sqlite]
UPDATE send_jobs SET status = 'sent', provider_message_id = COALESCE(provider_message_id, :provider_message_id),
       sent_at = COALESCE(sent_at, :now), lease_until = NULL, last_error = NULL, error_code = NULL,
       updated_at = :now
WHERE id = :id AND status = 'sending';

-- name: mark_sent [postgresql]
UPDATE send_jobs AS j SET status = 'sent',
       provider_message_id = COALESCE(j.provider_message_id, v.provider_message_id),
       sent_at = COALESCE(j.sent_at, v.now), lease_until = NULL, last_error = NULL, error_code = NULL,
       updated_at = v.now
FROM unnest(CAST(:id AS bigint[]), CAST(:provider_message_id AS text[]), CAST(:now AS timestamptz[]))
  AS v(id, provider_message_id, now)
WHERE j.id = v.id AND j.status = 'sending';

-- Sent messages whose provider id only now arrived (a callback had moved them on first).
-- name: note_message_id
UPDATE send_jobs SET provider_message_id = :provider_message_id, sent_at = COALESCE(sent_at, :now),
       updated_at = :now
WHERE attempt_id = :attempt_id AND provider_message_id IS NULL;

-- name: settle
UPDATE send_jobs SET status = :status, error_code = :error_code, last_error = :last_error,
       next_attempt_at = :next_attempt_at, lease_until = NULL, updated_at = :now
WHERE id = :id AND status = 'sending';

-- Jobs whose sender died between the `sending` commit and the provider's answer.
-- name: expired_leases [postgresql]
SELECT j.id, j.tenant_id, j.campaign_id, j.contact_id, j.attempt_id, j.body,
       j.updated_at, k.phone_e164, n.phone_e164 AS from_number
FROM send_jobs j
JOIN contacts k ON k.id = j.contact_id
LEFT JOIN sending_numbers n ON n.id = j.sending_number_id
WHERE j.status = 'sending' AND j.lease_until < :now
ORDER BY j.lease_until
LIMIT :limit
FOR UPDATE OF j SKIP LOCKED;

-- name: expired_leases [sqlite]
SELECT j.id, j.tenant_id, j.campaign_id, j.contact_id, j.attempt_id, j.body,
       j.updated_at, k.phone_e164, n.phone_e164 AS from_number
FROM send_jobs j
JOIN contacts k ON k.id = j.contact_id
LEFT JOIN sending_numbers n ON n.id = j.sending_number_id
WHERE j.status = 'sending' AND j.lease_until < :now
ORDER BY j.lease_until
LIMIT :limit;

-- updated_at stays the claim's time: the lookup asks the provider from then on.
-- name: extend_lease
UPDATE send_jobs SET lease_until = :lease_until
WHERE id = :id AND status = 'sending' AND attempt_id = :attempt_id;

-- A campaign is complete once it was fully queued and no job waits or is in flight (every
-- job sent, skipped, failed or cancelled). Few campaigns are `sending` at a time; each check is
-- served by send_jobs_campaign_status.
-- name: complete_campaigns
UPDATE campaigns SET status = 'completed', completed_at = :now, updated_at = :now
WHERE status = 'sending' AND queued_at IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM send_jobs j
                  WHERE j.campaign_id = campaigns.id AND j.status IN ('queued', 'sending'));
