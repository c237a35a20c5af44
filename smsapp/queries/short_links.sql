-- Short links and their hits (pack §9, §17).

-- The redirect's one read: what never changes about a link, so it is cached by token.
-- name: by_token
SELECT id, tenant_id, campaign_id, contact_id, send_job_id, target_url, expires_at
FROM short_links WHERE token = :token;

-- Read on each hit of an expired link (rare), never cached: a tenant admin may change it.
-- name: fallback_url
SELECT fallback_url FROM tenants WHERE id = :tenant_id;

-- --- The hit writer (smsapp/hit_writer.py): one transaction per batch of hits ----------------
-- Every round trip of a batch delays all the requests waiting for it, so a batch makes as few
-- as each backend allows: on SQLite the whole transaction is one trip to the writer's thread;
-- on PostgreSQL the locking read and one statement for all the writes.
-- Lists are JSON arrays on SQLite (json_each) and arrays on PostgreSQL.

-- The batch's links, each with its first human click so far, its latest hit and its message's
-- send time. On SQLite the transaction holds the only writer, so nothing can change between
-- this read and the batch's writes.
-- name: batch_links [sqlite]
SELECT l.id, l.first_clicked_at, l.last_hit_at, j.sent_at
FROM short_links l LEFT JOIN send_jobs j ON j.id = l.send_job_id
WHERE l.id IN (SELECT value FROM json_each(:ids));

-- On PostgreSQL the read takes the links' row locks, in id order (two processes' batches never
-- deadlock), so that a link's hits are decided one batch after another across processes. A
-- read that waited for another batch's locks returns the rows as that batch left them.
-- name: batch_links [postgresql]
SELECT l.id, l.first_clicked_at, l.last_hit_at, j.sent_at
FROM short_links l LEFT JOIN send_jobs j ON j.id = l.send_job_id
WHERE l.id = ANY(:ids)
ORDER BY l.id
FOR UPDATE OF l;

-- SQLite writes a batch with three executemany statements: the hits, each link's counters
-- (first_clicked_at only where it was empty), the CLICKED events of first human clicks.
-- name: insert_hits [sqlite]
INSERT INTO short_link_hits (short_link_id, tenant_id, at, is_bot, reason, user_agent, ip_hash,
                             method, created_at)
VALUES (:short_link_id, :tenant_id, :at, :is_bot, :reason, :user_agent, :ip_hash, :method, :at);

-- name: count_hits [sqlite]
UPDATE short_links
SET clicks_total = clicks_total + :total, clicks_human = clicks_human + :human,
    first_clicked_at = coalesce(first_clicked_at, :first_human_at),
    last_hit_at = max(coalesce(last_hit_at, :last_at), :last_at), updated_at = :last_at
WHERE id = :id;

-- name: insert_clicked [sqlite]
INSERT INTO events (tenant_id, campaign_id, contact_id, send_job_id, type, occurred_at, data, created_at)
VALUES (:tenant_id, :campaign_id, :contact_id, :send_job_id, 'CLICKED', :at, :data, :at);

-- PostgreSQL writes a batch with one statement (each column of each part as an array).
-- name: write_batch [postgresql]
WITH hits AS (
  INSERT INTO short_link_hits (short_link_id, tenant_id, at, is_bot, reason, user_agent, ip_hash,
                               method, created_at)
  SELECT u.short_link_id, u.tenant_id, u.at, u.is_bot, u.reason, u.user_agent, u.ip_hash,
         u.method, u.at
  FROM unnest(CAST(:short_link_id AS bigint[]), CAST(:tenant_id AS bigint[]),
              CAST(:at AS timestamptz[]), CAST(:is_bot AS boolean[]), CAST(:reason AS text[]),
              CAST(:user_agent AS text[]), CAST(:ip_hash AS text[]), CAST(:method AS text[]))
    AS u(short_link_id, tenant_id, at, is_bot, reason, user_agent, ip_hash, method)
), counts AS (
  UPDATE short_links l
  SET clicks_total = l.clicks_total + u.total, clicks_human = l.clicks_human + u.human,
      first_clicked_at = coalesce(l.first_clicked_at, u.first_human_at),
      last_hit_at = greatest(l.last_hit_at, u.last_at), updated_at = u.last_at
  FROM unnest(CAST(:id AS bigint[]), CAST(:total AS int[]), CAST(:human AS int[]),
              CAST(:first_human_at AS timestamptz[]), CAST(:last_at AS timestamptz[]))
    AS u(id, total, human, first_human_at, last_at)
  WHERE l.id = u.id
)
INSERT INTO events (tenant_id, campaign_id, contact_id, send_job_id, type, occurred_at, data,
                    created_at)
SELECT u.tenant_id, u.campaign_id, u.contact_id, u.send_job_id, 'CLICKED', u.at, u.data::jsonb,
       u.at
FROM unnest(CAST(:event_tenant_id AS bigint[]), CAST(:campaign_id AS bigint[]),
            CAST(:contact_id AS bigint[]), CAST(:send_job_id AS bigint[]),
            CAST(:event_at AS timestamptz[]), CAST(:data AS text[]))
  AS u(tenant_id, campaign_id, contact_id, send_job_id, at, data);

-- Tenants with a short host of their own (smsapp/short_host.py reads them every few seconds).
-- name: tenant_short_hosts
SELECT id, short_link_base_url FROM tenants WHERE short_link_base_url IS NOT NULL;

-- name: campaign_of_tenant
SELECT id FROM campaigns WHERE id = :id AND tenant_id = :tenant_id;

-- name: contact_of_tenant
SELECT id FROM contacts WHERE id = :id AND tenant_id = :tenant_id;

-- name: tenant_base
SELECT short_link_base_url FROM tenants WHERE id = :tenant_id;

-- name: for_pair
SELECT l.*, t.short_link_base_url FROM short_links l JOIN tenants t ON t.id = l.tenant_id
WHERE l.tenant_id = :tenant_id AND l.campaign_id = :campaign_id AND l.contact_id = :contact_id;

-- name: of_tenant
SELECT l.*, t.short_link_base_url FROM short_links l JOIN tenants t ON t.id = l.tenant_id
WHERE l.tenant_id = :tenant_id AND l.token = :token;

-- name: insert
INSERT INTO short_links (token, tenant_id, campaign_id, contact_id, send_job_id, target_url,
                         expires_at, created_at, updated_at)
VALUES (:token, :tenant_id, :campaign_id, :contact_id,
        (SELECT j.id FROM send_jobs j WHERE j.tenant_id = :tenant_id AND j.campaign_id = :campaign_id
                                        AND j.contact_id = :contact_id),
        :target_url, :expires_at, :now, :now)
ON CONFLICT DO NOTHING
RETURNING id;

-- The campaign's links page (admin), 100 a page, in the order they were made.
-- name: campaign_links
SELECT l.id, l.token, l.contact_id, c.first_name, c.last_name, l.target_url, l.clicks_total,
       l.clicks_human, l.first_clicked_at, l.expires_at
FROM short_links l LEFT JOIN contacts c ON c.id = l.contact_id
WHERE l.tenant_id = :tenant_id AND l.campaign_id = :campaign_id
ORDER BY l.id LIMIT :limit OFFSET :offset;

-- name: campaign_link_totals
SELECT count(*) AS links,
       coalesce(sum(CASE WHEN clicks_human > 0 THEN 1 ELSE 0 END), 0) AS clicked_human,
       coalesce(sum(clicks_total), 0) AS hits,
       coalesce(sum(clicks_human), 0) AS human_hits
FROM short_links WHERE tenant_id = :tenant_id AND campaign_id = :campaign_id;
