-- The audit log.

-- name: insert
INSERT INTO audit_log (tenant_id, user_id, api_key_id, action, target_type, target_id, details, ip, at, created_at)
VALUES (:tenant_id, :user_id, :api_key_id, :action, :target_type, :target_id, :details, :ip, :now, :now);

-- Filters are optional: a NULL filter matches everything.
-- name: list
SELECT a.id, a.action, a.target_type, a.target_id, a.details, a.ip, a.at,
       u.email AS user_email, k.name AS api_key_name
FROM audit_log a
LEFT JOIN users u ON u.id = a.user_id
LEFT JOIN api_keys k ON k.id = a.api_key_id
WHERE a.tenant_id = :tenant_id
  AND (CAST(:action AS TEXT) IS NULL OR a.action = :action)
  AND (CAST(:actor AS TEXT) IS NULL OR u.email = :actor OR lower(k.name) = :actor)
  AND (CAST(:since AS TIMESTAMPTZ) IS NULL OR a.at >= :since)
  AND (CAST(:until AS TIMESTAMPTZ) IS NULL OR a.at < :until)
ORDER BY a.at DESC, a.id DESC
LIMIT :limit OFFSET :offset;

-- name: actions
SELECT DISTINCT action FROM audit_log WHERE tenant_id = :tenant_id ORDER BY action;
