-- Per-tenant API keys: only the sha-256 of a key is stored.

-- name: insert
INSERT INTO api_keys (tenant_id, name, role, key_hash, key_prefix, created_by, created_at)
VALUES (:tenant_id, :name, :role, :key_hash, :key_prefix, :created_by, :now)
RETURNING id;

-- name: active_by_hash
SELECT id, tenant_id, role, last_used_at
FROM api_keys
WHERE key_hash = :key_hash AND revoked_at IS NULL;

-- name: touch
UPDATE api_keys SET last_used_at = :now WHERE id = :id;
