-- Suppression rules: a number (or a contact) is held back from campaigns until `expires_at`
-- (NULL = no expiry). Active means `expires_at IS NULL OR expires_at > :now`, with :now from
-- the app clock. No partial index can hold now(), so the indexes of migration 0001 lead with
-- (tenant_id, phone_e164) or (tenant_id, contact_id) and end with expires_at: a lookup seeks
-- the few rules of one number and filters them on expires_at inside the index.

-- name: insert
INSERT INTO suppression_rules (tenant_id, phone_e164, contact_id, kind, reason, expires_at,
                               created_by, created_at)
VALUES (:tenant_id, :phone_e164, :contact_id, :kind, :reason, :expires_at, :created_by, :now)
RETURNING id, phone_e164, contact_id, kind, reason, expires_at, created_by, created_at;

-- name: get
SELECT id, phone_e164, contact_id, kind, reason, expires_at, created_by, created_at
FROM suppression_rules
WHERE tenant_id = :tenant_id AND id = :id;

-- name: delete
DELETE FROM suppression_rules
WHERE tenant_id = :tenant_id AND id = :id
RETURNING id, phone_e164, contact_id, kind, reason, expires_at, created_by, created_at;

-- name: list_active
SELECT id, phone_e164, contact_id, kind, reason, expires_at, created_by, created_at
FROM suppression_rules
WHERE tenant_id = :tenant_id AND (expires_at IS NULL OR expires_at > :now)
ORDER BY created_at DESC, id DESC
LIMIT :limit OFFSET :offset;

-- name: count_active
SELECT count(*) FROM suppression_rules
WHERE tenant_id = :tenant_id AND (expires_at IS NULL OR expires_at > :now);

-- The given numbers under an active rule, by number or by the contact that has the number.
-- name: active_numbers [sqlite]
SELECT r.phone_e164
FROM suppression_rules r
WHERE r.tenant_id = :tenant_id
  AND r.phone_e164 IN (SELECT value FROM json_each(:phones))
  AND (r.expires_at IS NULL OR r.expires_at > :now)
UNION
SELECT c.phone_e164
FROM contacts c
JOIN suppression_rules r ON r.tenant_id = c.tenant_id AND r.contact_id = c.id
WHERE c.tenant_id = :tenant_id
  AND c.phone_e164 IN (SELECT value FROM json_each(:phones))
  AND (r.expires_at IS NULL OR r.expires_at > :now);

-- Joined on the unnested list: an index lookup per number in any plan. (`= ANY(list)` became
-- a scan of the tenant's contacts once PostgreSQL planned it generically: 0.5-0.8 s per 3,000
-- numbers with 5,000 contact-bound rules; see docs/imports.md.)
-- name: active_numbers [postgresql]
SELECT r.phone_e164
FROM unnest(CAST(:phones AS text[])) AS p(phone)
JOIN suppression_rules r ON r.tenant_id = :tenant_id AND r.phone_e164 = p.phone
WHERE r.expires_at IS NULL OR r.expires_at > :now
UNION
SELECT c.phone_e164
FROM unnest(CAST(:phones AS text[])) AS p(phone)
JOIN contacts c ON c.tenant_id = :tenant_id AND c.phone_e164 = p.phone
JOIN suppression_rules r ON r.tenant_id = c.tenant_id AND r.contact_id = c.id
WHERE r.expires_at IS NULL OR r.expires_at > :now;
