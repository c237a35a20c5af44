-- Tenants, users and memberships.

-- name: insert_tenant
INSERT INTO tenants (name, slug, created_at, updated_at)
VALUES (:name, :slug, :now, :now)
RETURNING id;

-- name: tenant_by_slug
SELECT * FROM tenants WHERE slug = :slug;

-- name: tenant_by_id
SELECT * FROM tenants WHERE id = :id;

-- name: user_by_email
SELECT * FROM users WHERE email = :email;

-- name: insert_user
INSERT INTO users (email, is_operator, created_at, updated_at)
VALUES (:email, :is_operator, :now, :now)
RETURNING id;

-- name: set_operator
UPDATE users SET is_operator = :is_operator, updated_at = :now WHERE id = :id;

-- name: upsert_membership
INSERT INTO memberships (user_id, tenant_id, role, created_at, updated_at)
VALUES (:user_id, :tenant_id, :role, :now, :now)
ON CONFLICT (user_id, tenant_id) DO UPDATE SET role = excluded.role, updated_at = excluded.updated_at
WHERE memberships.role <> excluded.role;

-- name: membership
SELECT m.role, t.id AS tenant_id, t.slug, t.name
FROM memberships m JOIN tenants t ON t.id = m.tenant_id
WHERE m.user_id = :user_id AND m.tenant_id = :tenant_id;
