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
-- on PostgreSQL one statement reads, decides and writes (`record_batch`).
-- Lists are JSON arrays on SQLite (json_each) and arrays on PostgreSQL.

-- The batch's links, each with its first human click so far, its latest hit and its message's
-- send time. On SQLite the transaction holds the only writer, so nothing can change between
-- this read and the batch's writes.
-- name: batch_links [sqlite]
SELECT l.id, l.first_clicked_at, l.last_hit_at, j.sent_at
FROM short_links l LEFT JOIN send_jobs j ON j.id = l.send_job_id
WHERE l.id IN (SELECT value FROM json_each(:ids));

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

-- PostgreSQL writes a batch with one statement (BEGIN, it, COMMIT): it reads and locks the
-- links, decides each hit by the rules that need the database (the request's own rules,
-- `request_reason`, are decided before, in Python: smsapp/click_rules.py), writes the hits, the
-- counters and the CLICKED events, and answers each hit's decision by its place in the batch.
-- The links' row locks are taken in id order (no deadlock between two processes' batches); a
-- lock that waited for another batch returns the link as that batch left it (and the counters'
-- UPDATE re-reads it likewise), so a link's hits are decided one batch after another across
-- processes. The time rules and the first human click are those of `decide_batch`
-- (smsapp/hit_writer.py), which SQLite runs: a hit is `too_soon` within 2 s of its message's
-- sending, a `burst` within 1 s of the link's previous hit (its stored last hit, then the
-- batch's hits before it); the first hit with no reason of a link never clicked is its first
-- human click. Hits of links gone since they were cached are not answered (nor written).
-- name: record_batch [postgresql]
WITH input AS (
  SELECT *
  FROM unnest(CAST(:ord AS int[]), CAST(:short_link_id AS bigint[]), CAST(:at AS timestamptz[]),
              CAST(:request_reason AS text[]), CAST(:user_agent AS text[]),
              CAST(:ip_hash AS text[]), CAST(:method AS text[]))
    AS u(ord, short_link_id, at, request_reason, user_agent, ip_hash, method)
), links AS MATERIALIZED (
  SELECT l.id, l.tenant_id, l.campaign_id, l.contact_id, l.send_job_id, l.first_clicked_at,
         l.last_hit_at, j.sent_at
  FROM short_links l LEFT JOIN send_jobs j ON j.id = l.send_job_id
  WHERE l.id = ANY(CAST(:ids AS bigint[]))
  ORDER BY l.id
  FOR UPDATE OF l
), decided AS (
  SELECT p.*,
         CASE
           WHEN p.request_reason IS NOT NULL THEN p.request_reason
           WHEN p.sent_at IS NOT NULL AND p.at - p.sent_at < interval '2 seconds' THEN 'too_soon'
           WHEN p.previous_at IS NOT NULL AND p.at - p.previous_at < interval '1 second'
             THEN 'burst'
         END AS reason
  FROM (
    SELECT i.*, k.tenant_id, k.campaign_id, k.contact_id, k.send_job_id, k.first_clicked_at,
           k.sent_at,
           greatest(k.last_hit_at,
                    max(i.at) OVER (PARTITION BY i.short_link_id ORDER BY i.ord
                                    ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING))
             AS previous_at
    FROM input i JOIN links k ON k.id = i.short_link_id
  ) p
), firsts AS (
  SELECT DISTINCT ON (d.short_link_id) d.short_link_id, d.ord, d.at, d.tenant_id,
         d.campaign_id, d.contact_id, d.send_job_id
  FROM decided d
  WHERE d.reason IS NULL AND d.first_clicked_at IS NULL
  ORDER BY d.short_link_id, d.ord
), hits AS (
  INSERT INTO short_link_hits (short_link_id, tenant_id, at, is_bot, reason, user_agent, ip_hash,
                               method, created_at)
  SELECT d.short_link_id, d.tenant_id, d.at, d.reason IS NOT NULL, d.reason, d.user_agent,
         d.ip_hash, d.method, d.at
  FROM decided d
), counts AS (
  UPDATE short_links l
  SET clicks_total = l.clicks_total + c.total, clicks_human = l.clicks_human + c.human,
      first_clicked_at = coalesce(l.first_clicked_at, f.at),
      last_hit_at = greatest(l.last_hit_at, c.last_at), updated_at = c.last_at
  FROM (
    SELECT d.short_link_id, count(*) AS total, count(*) FILTER (WHERE d.reason IS NULL) AS human,
           max(d.at) AS last_at
    FROM decided d GROUP BY d.short_link_id
  ) c
  LEFT JOIN firsts f ON f.short_link_id = c.short_link_id
  WHERE l.id = c.short_link_id
), clicked AS (
  INSERT INTO events (tenant_id, campaign_id, contact_id, send_job_id, type, occurred_at, data,
                      created_at)
  SELECT f.tenant_id, f.campaign_id, f.contact_id, f.send_job_id, 'CLICKED', f.at,
         jsonb_build_object('short_link_id', f.short_link_id, 'reason', NULL), f.at
  FROM firsts f
)
SELECT d.ord, d.reason, f.ord IS NOT NULL AS first_human
FROM decided d LEFT JOIN firsts f ON f.ord = d.ord
ORDER BY d.ord;

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
