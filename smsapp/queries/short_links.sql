-- Short links and their hits (pack §9, §17).

-- The redirect's one read: what never changes about a link, so it is cached by token.
-- name: by_token
SELECT id, tenant_id, campaign_id, contact_id, send_job_id, target_url, expires_at
FROM short_links WHERE token = :token;

-- Read on each hit of an expired link (rare), never cached: a tenant admin may change it.
-- name: fallback_url
SELECT fallback_url FROM tenants WHERE id = :tenant_id;

-- --- The hit writer (smsapp/hit_writer.py): folding the hit journal into the database -------
-- A fold reads whole lines of a journal segment and passes them as one JSON array (`hits`),
-- each hit an array: [token, short_link_id, at, method, user_agent, ip_hash, request_reason]
-- (`hit_writer.PendingHit`; `at` in the stored form of times, microseconds and +00:00). What a
-- hit's link says of it (tenant, campaign, contact, send job) is read from the link. The database parses, decides and writes
-- them, so the app's process spends no time per hit on a fold (on SQLite: it shares Python's
-- interpreter lock with the redirect).
--
-- The rules (pack §9; docs/click-integrity.md), decided in the segment's order: the request's
-- own reason (`request_reason`: head, prefetch, empty_agent, link_preview, crawler) comes with
-- the hit; otherwise a hit is `too_soon` within 2 s of its message's sending, a `burst` within
-- 1 s of the link's previous hit (its stored last hit, then the fold's hits before it), and
-- human otherwise. A link's first human hit, when it had none, is its first human click: it
-- sets first_clicked_at and writes the one CLICKED event. Hits of links gone since they were
-- cached are dropped, and their tokens returned (the link cache forgets them).

-- SQLite writes the hits first, deciding them as it inserts, then reads back the rows it has
-- just written (ids past `before`, the largest id before the fold: SQLite has one writer) for
-- the counters and the CLICKED events. It writes them link by link, a link's hits in the
-- segment's order (so its smallest id is its first hit): in the order the window has just
-- sorted them, each link's rows and index entries land together, and the fold costs about half
-- what it did when it wrote them in the segment's order (docs/click-integrity.md). Times are
-- stored as text in one fixed form, so a time's microseconds since 1970 are read off it
-- exactly.
-- name: fold_before [sqlite]
SELECT coalesce(max(id), 0) FROM short_link_hits;

-- name: fold_hits [sqlite]
INSERT INTO short_link_hits (short_link_id, tenant_id, at, is_bot, reason, user_agent, ip_hash,
                             method, created_at)
WITH input AS MATERIALIZED (
  SELECT e.key AS ord, e.value ->> 1 AS short_link_id, e.value ->> 2 AS at,
         e.value ->> 3 AS method, e.value ->> 4 AS user_agent, e.value ->> 5 AS ip_hash,
         e.value ->> 6 AS request_reason
  FROM json_each(:hits) e
), timed AS (
  SELECT i.*, l.tenant_id,
         CAST(strftime('%s', substr(i.at, 1, 19)) AS INTEGER) * 1000000
           + CAST(substr(i.at, 21, 6) AS INTEGER) AS at_us,
         CAST(strftime('%s', substr(j.sent_at, 1, 19)) AS INTEGER) * 1000000
           + CAST(substr(j.sent_at, 21, 6) AS INTEGER) AS sent_us,
         CAST(strftime('%s', substr(l.last_hit_at, 1, 19)) AS INTEGER) * 1000000
           + CAST(substr(l.last_hit_at, 21, 6) AS INTEGER) AS stored_us
  FROM input i
  JOIN short_links l ON l.id = i.short_link_id
  LEFT JOIN send_jobs j ON j.id = l.send_job_id
), previous AS (
  SELECT t.*,
         max(t.at_us) OVER (PARTITION BY t.short_link_id ORDER BY t.ord
                            ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS earlier_us
  FROM timed t
), decided AS (
  SELECT p.*,
         CASE
           WHEN p.request_reason IS NOT NULL THEN p.request_reason
           WHEN p.sent_us IS NOT NULL AND p.at_us - p.sent_us < 2000000 THEN 'too_soon'
           WHEN max(coalesce(p.stored_us, p.earlier_us), coalesce(p.earlier_us, p.stored_us))
                > p.at_us - 1000000 THEN 'burst'
         END AS reason
  FROM previous p
)
SELECT d.short_link_id, d.tenant_id, d.at, d.reason IS NOT NULL, d.reason, d.user_agent,
       d.ip_hash, d.method, d.at
FROM decided d ORDER BY d.short_link_id, d.ord;

-- A link's first human hit of the fold (the smallest id), when it had none before: the CLICKED
-- event, in the order of their times. Before fold_counts, which sets first_clicked_at.
-- Here and in fold_counts the fold's hits are found by id (NOT INDEXED): left to itself, SQLite
-- reads the whole short_link_id index to skip sorting the GROUP BY — every hit ever
-- stored, each fold (tests/test_query_plans.py).
-- name: fold_clicked [sqlite]
INSERT INTO events (tenant_id, campaign_id, contact_id, send_job_id, type, occurred_at, data,
                    created_at)
SELECT l.tenant_id, l.campaign_id, l.contact_id, l.send_job_id, 'CLICKED', h.at,
       json_object('short_link_id', l.id, 'reason', NULL), h.at
FROM (
  SELECT min(id) AS id FROM short_link_hits NOT INDEXED
  WHERE id > :before AND NOT is_bot GROUP BY short_link_id
) AS f
JOIN short_link_hits h ON h.id = f.id
JOIN short_links l ON l.id = h.short_link_id
WHERE l.first_clicked_at IS NULL
ORDER BY h.at, h.id;

-- name: fold_counts [sqlite]
UPDATE short_links
SET clicks_total = clicks_total + c.total, clicks_human = clicks_human + c.human,
    first_clicked_at = coalesce(first_clicked_at,
                                (SELECT h.at FROM short_link_hits h WHERE h.id = c.first_id)),
    last_hit_at = max(coalesce(last_hit_at, c.last_at), c.last_at), updated_at = c.last_at
FROM (
  SELECT short_link_id, count(*) AS total, sum(NOT is_bot) AS human,
         min(CASE WHEN NOT is_bot THEN id END) AS first_id, max(at) AS last_at
  FROM short_link_hits NOT INDEXED WHERE id > :before GROUP BY short_link_id
) AS c
WHERE short_links.id = c.short_link_id;

-- The tokens of the fold's hits whose link is gone, with their hits (read only when some are).
-- name: fold_gone [sqlite]
SELECT e.value ->> 0 AS token, count(*) AS hits
FROM json_each(:hits) e
WHERE NOT EXISTS (SELECT 1 FROM short_links l WHERE l.id = e.value ->> 1)
GROUP BY e.value ->> 0;

-- PostgreSQL folds with one statement, writing the hits link by link as SQLite does. The links'
-- row locks are taken in id order (no deadlock between two processes' folds); a lock that
-- waited for another fold returns the link as that fold left it (and the counters' UPDATE
-- re-reads it likewise), so a link's hits are decided one fold after another across processes.
-- name: fold [postgresql]
WITH input AS (
  SELECT e.ord, e.v ->> 0 AS token, CAST(e.v ->> 1 AS bigint) AS short_link_id,
         CAST(e.v ->> 2 AS timestamptz) AS at, e.v ->> 3 AS method, e.v ->> 4 AS user_agent,
         e.v ->> 5 AS ip_hash, e.v ->> 6 AS request_reason
  FROM jsonb_array_elements(CAST(CAST(:hits AS text) AS jsonb)) WITH ORDINALITY AS e(v, ord)
), links AS MATERIALIZED (
  SELECT l.id, l.tenant_id, l.campaign_id, l.contact_id, l.send_job_id, l.first_clicked_at,
         l.last_hit_at, j.sent_at
  FROM short_links l LEFT JOIN send_jobs j ON j.id = l.send_job_id
  WHERE l.id IN (SELECT short_link_id FROM input)
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
  FROM decided d ORDER BY d.short_link_id, d.ord
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
  FROM firsts f ORDER BY f.at, f.ord
)
SELECT i.token, count(*) AS hits
FROM input i
WHERE NOT EXISTS (SELECT 1 FROM links k WHERE k.id = i.short_link_id)
GROUP BY i.token;

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
