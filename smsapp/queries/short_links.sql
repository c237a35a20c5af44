-- Short links and their hits (pack §9, §17).

-- The redirect's read: what never changes about a link, so it can be cached by token.
-- name: by_token
SELECT id, tenant_id, campaign_id, contact_id, send_job_id, target_url, expires_at
FROM short_links WHERE token = :token;

-- name: fallback_url
SELECT fallback_url FROM tenants WHERE id = :tenant_id;

-- name: job_sent_at
SELECT sent_at FROM send_jobs WHERE id = :id;

-- The first statement of a hit's transaction: counts it and takes the link's row lock, so
-- that concurrent hits on one link are decided one after another (burst, first human click).
-- name: count_hit
UPDATE short_links SET clicks_total = clicks_total + 1, updated_at = :now WHERE id = :id;

-- name: previous_hit
SELECT at FROM short_link_hits WHERE short_link_id = :id ORDER BY at DESC, id DESC LIMIT 1;

-- name: insert_hit
INSERT INTO short_link_hits (short_link_id, tenant_id, at, is_bot, reason, user_agent, ip_hash,
                             method, created_at)
VALUES (:short_link_id, :tenant_id, :now, :is_bot, :reason, :user_agent, :ip_hash, :method, :now);

-- name: count_human
UPDATE short_links SET clicks_human = clicks_human + 1 WHERE id = :id;

-- Exactly one hit wins this: the one that finds first_clicked_at still empty.
-- name: first_human
UPDATE short_links SET first_clicked_at = :now WHERE id = :id AND first_clicked_at IS NULL;

-- name: insert_clicked
INSERT INTO events (tenant_id, campaign_id, contact_id, send_job_id, type, occurred_at, data, created_at)
VALUES (:tenant_id, :campaign_id, :contact_id, :send_job_id, 'CLICKED', :now, :data, :now);

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
