-- A tenant's sending settings (pack §13, §17) and its pause state (pack §7).

-- name: get
SELECT t.*, u.email AS paused_by_email
FROM tenants t LEFT JOIN users u ON u.id = t.paused_by
WHERE t.id = :tenant_id;

-- Serialises writers of one tenant's settings, budget and pause state (read, change, write).
-- name: lock [postgresql]
SELECT id FROM tenants WHERE id = :tenant_id FOR UPDATE;

-- SQLite: a transaction already holds the single writer.
-- name: lock [sqlite]
SELECT id FROM tenants WHERE id = :tenant_id;

-- name: update
UPDATE tenants SET
    name = :name,
    timezone = :timezone,
    default_country = :default_country,
    send_window = :send_window,
    respect_public_holidays = :respect_public_holidays,
    rate_limit_per_minute = :rate_limit_per_minute,
    cooldown_hours = :cooldown_hours,
    optout_footer = :optout_footer,
    optout_keywords = :optout_keywords,
    short_link_base_url = :short_link_base_url,
    fallback_url = :fallback_url,
    price_book = :price_book,
    updated_at = :now
WHERE id = :tenant_id;

-- Only a running tenant is paused: pausing again keeps the first pause's who, when and why.
-- name: pause
UPDATE tenants
SET paused = TRUE, paused_at = :now, paused_by = :user_id, pause_reason = :reason, updated_at = :now
WHERE id = :tenant_id AND NOT paused;

-- name: resume
UPDATE tenants
SET paused = FALSE, paused_at = NULL, paused_by = NULL, pause_reason = NULL, updated_at = :now
WHERE id = :tenant_id AND paused;

-- Who paused, when it was an API key (paused_by holds users only).
-- name: last_pause_actor
SELECT a.user_id, a.api_key_id, k.name AS api_key_name
FROM audit_log a LEFT JOIN api_keys k ON k.id = a.api_key_id
WHERE a.tenant_id = :tenant_id AND a.action = 'tenant.pause'
ORDER BY a.id DESC
LIMIT 1;
