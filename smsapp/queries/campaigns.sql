-- Templates, campaigns and the queue builder (pack §7, §17).

-- name: insert_template
INSERT INTO message_templates (tenant_id, name, body, active, created_at, updated_at)
VALUES (:tenant_id, :name, :body, TRUE, :now, :now)
RETURNING *;

-- name: templates
SELECT * FROM message_templates WHERE tenant_id = :tenant_id ORDER BY active DESC, name;

-- name: template
SELECT * FROM message_templates WHERE tenant_id = :tenant_id AND id = :id;

-- name: update_template
UPDATE message_templates SET name = :name, body = :body, active = :active, updated_at = :now
WHERE tenant_id = :tenant_id AND id = :id;

-- The attribute names present on the tenant's contacts: valid {placeholders} besides the fields.
-- name: attribute_names [sqlite]
SELECT DISTINCT j.key AS name
FROM contacts c, json_each(c.attributes) j
WHERE c.tenant_id = :tenant_id AND c.erased_at IS NULL;

-- name: attribute_names [postgresql]
SELECT DISTINCT jsonb_object_keys(attributes) AS name
FROM contacts WHERE tenant_id = :tenant_id AND erased_at IS NULL;

-- name: insert_campaign
INSERT INTO campaigns (tenant_id, name, status, segment, link_url, scheduled_at, created_by, created_at, updated_at)
VALUES (:tenant_id, :name, :status, :segment, :link_url, :scheduled_at, :created_by, :now, :now)
RETURNING id;

-- name: insert_campaign_template
INSERT INTO campaign_templates (campaign_id, template_id, position, created_at)
VALUES (:campaign_id, :template_id, :position, :now);

-- name: delete_campaign_templates
DELETE FROM campaign_templates WHERE campaign_id = :campaign_id;

-- name: campaign
SELECT * FROM campaigns WHERE tenant_id = :tenant_id AND id = :id;

-- Queue and schedule work serialise per campaign on PostgreSQL; SQLite has one writer.
-- name: lock_campaign [sqlite]
SELECT * FROM campaigns WHERE tenant_id = :tenant_id AND id = :id;

-- name: lock_campaign [postgresql]
SELECT * FROM campaigns WHERE tenant_id = :tenant_id AND id = :id FOR UPDATE;

-- name: campaigns
SELECT c.*,
       (SELECT count(*) FROM send_jobs j WHERE j.campaign_id = c.id) AS jobs_total
FROM campaigns c WHERE c.tenant_id = :tenant_id
ORDER BY c.created_at DESC, c.id DESC
LIMIT :limit OFFSET :offset;

-- name: campaign_templates
SELECT t.id, t.name, t.body, t.active, ct.position
FROM campaign_templates ct JOIN message_templates t ON t.id = ct.template_id
WHERE ct.campaign_id = :campaign_id
ORDER BY ct.position;

-- name: update_campaign
UPDATE campaigns
SET name = :name, segment = :segment, link_url = :link_url, scheduled_at = :scheduled_at,
    status = :status, updated_at = :now
WHERE tenant_id = :tenant_id AND id = :id AND status IN ('draft', 'scheduled');

-- name: set_status
UPDATE campaigns SET status = :status, updated_at = :now
WHERE tenant_id = :tenant_id AND id = :id AND status = :from_status;

-- A paused campaign stays paused while more jobs are queued for it.
-- name: mark_queued
UPDATE campaigns SET status = CASE status WHEN 'paused' THEN 'paused' ELSE 'sending' END,
       queued_at = NULL, updated_at = :now
WHERE tenant_id = :tenant_id AND id = :id AND status IN ('draft', 'scheduled', 'sending', 'paused');

-- queued_at marks a queue run that went through every contact.
-- name: finish_queue
UPDATE campaigns SET queued_at = :now, updated_at = :now WHERE tenant_id = :tenant_id AND id = :id;

-- name: unfinished_queues
SELECT id, tenant_id FROM campaigns
WHERE status IN ('sending', 'paused') AND queued_at IS NULL AND updated_at < :before
LIMIT 50;

-- Schedules due: claimed one by one with claim_scheduled, so a schedule fires once even
-- with several processes polling.
-- name: due_scheduled
SELECT id, tenant_id FROM campaigns
WHERE status = 'scheduled' AND scheduled_at <= :now
ORDER BY scheduled_at
LIMIT 50;

-- name: claim_scheduled
UPDATE campaigns SET status = 'sending', updated_at = :now
WHERE id = :id AND status = 'scheduled' AND scheduled_at <= :now;

-- name: cancel_queued_jobs
UPDATE send_jobs SET status = 'cancelled', reason = 'campaign_cancelled', updated_at = :now
WHERE tenant_id = :tenant_id AND campaign_id = :campaign_id AND status = 'queued';

-- name: job_counts
SELECT status, count(*) AS n FROM send_jobs WHERE campaign_id = :campaign_id GROUP BY status;

-- What holds the waiting jobs, and until when (pack §17 "held").
-- name: held_counts [sqlite]
SELECT held_by, count(*) AS n, min(next_attempt_at) AS "until [TIMESTAMPTZ]"
FROM send_jobs
WHERE campaign_id = :campaign_id AND status = 'queued' AND held_by IS NOT NULL
GROUP BY held_by;

-- name: held_counts [postgresql]
SELECT held_by, count(*) AS n, min(next_attempt_at) AS until
FROM send_jobs
WHERE campaign_id = :campaign_id AND status = 'queued' AND held_by IS NOT NULL
GROUP BY held_by;

-- name: projected_cost
SELECT count(*) AS jobs,
       CAST(sum(cost_estimate) AS BIGINT) AS cost,
       sum(CASE WHEN cost_estimate IS NULL THEN 1 ELSE 0 END) AS unpriced
FROM send_jobs WHERE campaign_id = :campaign_id AND status = 'queued';

-- name: skipped_count
SELECT count(*) FROM send_jobs WHERE campaign_id = :campaign_id AND status = 'skipped';

-- Consented, reachable contacts of the segment, a page at a time (keyset on id).
-- name: segment_contacts [sqlite]
SELECT c.id, c.phone_e164, c.first_name, c.last_name, c.attributes, c.country
FROM contacts c
WHERE c.tenant_id = :tenant_id AND c.consent_at IS NOT NULL AND c.erased_at IS NULL
  AND c.phone_e164 IS NOT NULL AND c.id > :after
  AND (CAST(:tag AS TEXT) IS NULL OR EXISTS (SELECT 1 FROM json_each(c.tags) t WHERE t.value = :tag))
ORDER BY c.id
LIMIT :limit;

-- name: segment_contacts [postgresql]
SELECT c.id, c.phone_e164, c.first_name, c.last_name, c.attributes, c.country
FROM contacts c
WHERE c.tenant_id = :tenant_id AND c.consent_at IS NOT NULL AND c.erased_at IS NULL
  AND c.phone_e164 IS NOT NULL AND c.id > :after
  AND (CAST(:tag AS TEXT) IS NULL OR c.tags @> jsonb_build_array(CAST(:tag AS TEXT)))
ORDER BY c.id
LIMIT :limit;

-- The per-chunk lists read a range of contact ids (a chunk is a keyset page of contacts), which
-- every index below serves with one range scan; no list of ids is bound.

-- Contacts sent a campaign message within the cooldown (pack §7 suppression).
-- name: recently_messaged
SELECT DISTINCT contact_id FROM send_jobs
WHERE tenant_id = :tenant_id AND contact_id BETWEEN :low AND :high AND sent_at > :since;

-- name: existing_jobs
SELECT contact_id FROM send_jobs
WHERE tenant_id = :tenant_id AND campaign_id = :campaign_id AND contact_id BETWEEN :low AND :high;

-- Links are written after their jobs, each pointing at its job by the job's unique key.
-- name: insert_links [sqlite]
INSERT INTO short_links (token, tenant_id, campaign_id, contact_id, send_job_id, target_url,
                         expires_at, created_at, updated_at)
VALUES (:token, :tenant_id, :campaign_id, :contact_id,
        (SELECT j.id FROM send_jobs j WHERE j.tenant_id = :tenant_id AND j.campaign_id = :campaign_id
                                        AND j.contact_id = :contact_id),
        :target_url, :expires_at, :now, :now)
ON CONFLICT DO NOTHING;

-- name: insert_links [postgresql]
INSERT INTO short_links (token, tenant_id, campaign_id, contact_id, send_job_id, target_url,
                         expires_at, created_at, updated_at)
SELECT u.token, u.tenant_id, u.campaign_id, u.contact_id, j.id, u.target_url, u.expires_at,
       u.now, u.now
FROM unnest(CAST(:token AS text[]), CAST(:tenant_id AS bigint[]), CAST(:campaign_id AS bigint[]),
            CAST(:contact_id AS bigint[]), CAST(:target_url AS text[]),
            CAST(:expires_at AS timestamptz[]), CAST(:now AS timestamptz[]))
  AS u(token, tenant_id, campaign_id, contact_id, target_url, expires_at, now)
LEFT JOIN send_jobs j
  ON j.tenant_id = u.tenant_id AND j.campaign_id = u.campaign_id AND j.contact_id = u.contact_id
ON CONFLICT DO NOTHING;

-- name: link_tokens
SELECT contact_id, token FROM short_links
WHERE campaign_id = :campaign_id AND contact_id BETWEEN :low AND :high
  AND contact_id IS NOT NULL;

-- The kinds of the tenant's active senders: phone numbers win whenever there is one.
-- name: active_sender_kinds
SELECT DISTINCT kind FROM sending_numbers WHERE tenant_id = :tenant_id AND active;

-- Unsubscribe links (pack §10) of a range of contacts, reused when a campaign is queued again.
-- name: unsubscribe_tokens
SELECT contact_id, token FROM unsubscribe_tokens
WHERE campaign_id = :campaign_id AND contact_id BETWEEN :low AND :high;

-- Written after the chunk's jobs: a concurrent run that lost the jobs waits on their rows
-- until this commits, so its own tokens then conflict and are dropped with its jobs.
-- name: insert_unsubscribe_tokens [sqlite]
INSERT INTO unsubscribe_tokens (token, tenant_id, contact_id, campaign_id, created_at)
VALUES (:token, :tenant_id, :contact_id, :campaign_id, :now)
ON CONFLICT DO NOTHING;

-- name: insert_unsubscribe_tokens [postgresql]
INSERT INTO unsubscribe_tokens (token, tenant_id, contact_id, campaign_id, created_at)
SELECT u.token, u.tenant_id, u.contact_id, u.campaign_id, u.now
FROM unnest(CAST(:token AS text[]), CAST(:tenant_id AS bigint[]), CAST(:contact_id AS bigint[]),
            CAST(:campaign_id AS bigint[]), CAST(:now AS timestamptz[]))
  AS u(token, tenant_id, contact_id, campaign_id, now)
ON CONFLICT DO NOTHING;

-- name: max_job_id
SELECT COALESCE(max(id), 0) FROM send_jobs;

-- name: insert_jobs [sqlite]
INSERT INTO send_jobs (tenant_id, campaign_id, contact_id, template_id, body, parts, encoding, status,
                       reason, next_attempt_at, unit_price, cost_estimate, sender_kind, created_at,
                       updated_at)
VALUES (:tenant_id, :campaign_id, :contact_id, :template_id, :body, :parts, :encoding, :status,
        :reason, :now, :unit_price, :cost_estimate, :sender_kind, :now, :now)
ON CONFLICT (tenant_id, campaign_id, contact_id) DO NOTHING;

-- name: insert_jobs [postgresql]
INSERT INTO send_jobs (tenant_id, campaign_id, contact_id, template_id, body, parts, encoding, status,
                       reason, next_attempt_at, unit_price, cost_estimate, sender_kind, created_at,
                       updated_at)
SELECT u.tenant_id, u.campaign_id, u.contact_id, u.template_id, u.body, u.parts, u.encoding,
       u.status, u.reason, u.now, u.unit_price, u.cost_estimate, u.sender_kind, u.now, u.now
FROM unnest(CAST(:tenant_id AS bigint[]), CAST(:campaign_id AS bigint[]), CAST(:contact_id AS bigint[]),
            CAST(:template_id AS bigint[]), CAST(:body AS text[]), CAST(:parts AS int[]),
            CAST(:encoding AS text[]), CAST(:status AS text[]), CAST(:reason AS text[]),
            CAST(:unit_price AS bigint[]), CAST(:cost_estimate AS bigint[]),
            CAST(:sender_kind AS text[]), CAST(:now AS timestamptz[]))
  AS u(tenant_id, campaign_id, contact_id, template_id, body, parts, encoding, status, reason,
       unit_price, cost_estimate, sender_kind, now)
ON CONFLICT (tenant_id, campaign_id, contact_id) DO NOTHING;

-- name: insert_jobs_with_events [postgresql]
WITH inserted AS (
  INSERT INTO send_jobs (tenant_id, campaign_id, contact_id, template_id, body, parts, encoding,
                         status, reason, next_attempt_at, unit_price, cost_estimate, sender_kind,
                         created_at, updated_at)
  SELECT u.tenant_id, u.campaign_id, u.contact_id, u.template_id, u.body, u.parts, u.encoding,
         u.status, u.reason, u.now, u.unit_price, u.cost_estimate, u.sender_kind, u.now, u.now
  FROM unnest(CAST(:tenant_id AS bigint[]), CAST(:campaign_id AS bigint[]),
              CAST(:contact_id AS bigint[]), CAST(:template_id AS bigint[]), CAST(:body AS text[]),
              CAST(:parts AS int[]), CAST(:encoding AS text[]), CAST(:status AS text[]),
              CAST(:reason AS text[]), CAST(:unit_price AS bigint[]),
              CAST(:cost_estimate AS bigint[]), CAST(:sender_kind AS text[]),
              CAST(:now AS timestamptz[]))
    AS u(tenant_id, campaign_id, contact_id, template_id, body, parts, encoding, status, reason,
         unit_price, cost_estimate, sender_kind, now)
  ON CONFLICT (tenant_id, campaign_id, contact_id) DO NOTHING
  RETURNING id, tenant_id, campaign_id, contact_id, template_id, status, reason, created_at
)
INSERT INTO events (tenant_id, campaign_id, contact_id, send_job_id, type, occurred_at, data, created_at)
SELECT tenant_id, campaign_id, contact_id, id,
       CASE status WHEN 'skipped' THEN 'SKIPPED' ELSE 'QUEUED' END, created_at,
       CASE status WHEN 'skipped' THEN jsonb_build_object('reason', reason)
                   ELSE jsonb_build_object('template_id', template_id) END,
       created_at
FROM inserted;

-- One QUEUED or SKIPPED event per job this run created (ids above the run's high-water mark;
-- SQLite only, where one writer makes the mark exact).
-- name: job_events [sqlite]
INSERT INTO events (tenant_id, campaign_id, contact_id, send_job_id, type, occurred_at, data, created_at)
SELECT j.tenant_id, j.campaign_id, j.contact_id, j.id,
       CASE j.status WHEN 'skipped' THEN 'SKIPPED' ELSE 'QUEUED' END, :now,
       CASE j.status WHEN 'skipped' THEN json_object('reason', j.reason) ELSE json_object('template_id', j.template_id) END,
       :now
FROM send_jobs j WHERE j.campaign_id = :campaign_id AND j.id > :after_id;

-- name: link_jobs_to_links [sqlite]
UPDATE short_links
SET send_job_id = (SELECT j.id FROM send_jobs j
                   WHERE j.tenant_id = short_links.tenant_id AND j.campaign_id = short_links.campaign_id
                     AND j.contact_id = short_links.contact_id)
WHERE campaign_id = :campaign_id AND send_job_id IS NULL;

-- name: link_jobs_to_links [postgresql]
UPDATE short_links AS s SET send_job_id = j.id
FROM send_jobs j
WHERE s.campaign_id = :campaign_id AND s.send_job_id IS NULL
  AND j.tenant_id = s.tenant_id AND j.campaign_id = s.campaign_id AND j.contact_id = s.contact_id;

-- name: tenant_for_queue
SELECT id, name, timezone, price_book, optout_footer, cooldown_hours, short_link_base_url, paused
FROM tenants WHERE id = :tenant_id;

-- name: skipped_reasons
SELECT reason, count(*) AS n FROM send_jobs
WHERE campaign_id = :campaign_id AND status = 'skipped'
GROUP BY reason;
