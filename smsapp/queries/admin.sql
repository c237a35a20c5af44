-- The admin shell: dashboard counts, members, API keys, tenants.

-- name: dashboard_counts
SELECT
  (SELECT count(*) FROM contacts WHERE tenant_id = :tenant_id AND erased_at IS NULL) AS contacts,
  (SELECT count(*) FROM campaigns WHERE tenant_id = :tenant_id) AS campaigns,
  (SELECT count(*) FROM do_not_contact WHERE tenant_id = :tenant_id) AS dnc;

-- name: members
SELECT u.id AS user_id, u.email, u.last_login_at, m.role, m.active
FROM memberships m JOIN users u ON u.id = m.user_id
WHERE m.tenant_id = :tenant_id
ORDER BY m.active DESC, u.email;

-- name: member
SELECT u.id AS user_id, u.email, m.role, m.active
FROM memberships m JOIN users u ON u.id = m.user_id
WHERE m.tenant_id = :tenant_id AND m.user_id = :user_id;

-- name: other_active_admins
SELECT count(*) FROM memberships
WHERE tenant_id = :tenant_id AND role = 'admin' AND active AND user_id <> :user_id;

-- name: set_member_role
UPDATE memberships SET role = :role, updated_at = :now
WHERE tenant_id = :tenant_id AND user_id = :user_id;

-- name: set_member_active
UPDATE memberships SET active = :active, updated_at = :now
WHERE tenant_id = :tenant_id AND user_id = :user_id;

-- name: reactivate_membership
INSERT INTO memberships (user_id, tenant_id, role, active, created_at, updated_at)
VALUES (:user_id, :tenant_id, :role, TRUE, :now, :now)
ON CONFLICT (user_id, tenant_id) DO UPDATE SET role = excluded.role, active = TRUE, updated_at = excluded.updated_at;

-- name: api_keys
SELECT id, name, role, key_prefix, created_at, last_used_at, revoked_at
FROM api_keys WHERE tenant_id = :tenant_id
ORDER BY revoked_at IS NOT NULL, created_at DESC;

-- name: revoke_api_key
UPDATE api_keys SET revoked_at = :now
WHERE id = :id AND tenant_id = :tenant_id AND revoked_at IS NULL;

-- name: api_key_in_tenant
SELECT id, name FROM api_keys WHERE id = :id AND tenant_id = :tenant_id;

-- name: tenants_with_members
SELECT t.id, t.name, t.slug, t.created_at,
       (SELECT count(*) FROM memberships m WHERE m.tenant_id = t.id AND m.active) AS members
FROM tenants t ORDER BY t.name;
