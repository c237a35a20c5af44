-- People: magic-link tokens, sessions, login rate limiting, memberships.

-- name: active_user_by_email
SELECT id, email, is_operator FROM users WHERE email = :email AND active;

-- name: insert_login_token
INSERT INTO login_tokens (user_id, token_hash, expires_at, requested_ip, created_at)
VALUES (:user_id, :token_hash, :expires_at, :ip, :now);

-- name: login_token_valid
SELECT t.id, u.email
FROM login_tokens t JOIN users u ON u.id = t.user_id
WHERE t.token_hash = :token_hash AND t.used_at IS NULL AND t.expires_at > :now AND u.active;

-- Single use: of two concurrent confirmations exactly one sees the row still unused.
-- name: consume_login_token
UPDATE login_tokens SET used_at = :now
WHERE token_hash = :token_hash AND used_at IS NULL AND expires_at > :now
RETURNING user_id;

-- name: record_login_request
INSERT INTO login_requests (email, ip, at, created_at) VALUES (:email, :ip, :now, :now);

-- name: login_requests_by_email
SELECT count(*) AS n FROM login_requests WHERE email = :email AND at > :since;

-- name: login_requests_by_ip
SELECT count(*) AS n FROM login_requests WHERE ip = :ip AND at > :since;

-- name: forget_login_requests
DELETE FROM login_requests WHERE at < :before;

-- name: insert_session
INSERT INTO sessions (user_id, token_hash, tenant_id, ip, user_agent, last_seen_at, expires_at, created_at)
VALUES (:user_id, :token_hash, :tenant_id, :ip, :user_agent, :now, :expires_at, :now)
RETURNING id;

-- The session with its user and its role in the session's current tenant (if still a member).
-- name: session_by_hash
SELECT s.id, s.user_id, s.tenant_id, s.last_seen_at, s.expires_at,
       u.email, u.is_operator, m.role
FROM sessions s
JOIN users u ON u.id = s.user_id AND u.active
LEFT JOIN memberships m ON m.user_id = s.user_id AND m.tenant_id = s.tenant_id AND m.active
WHERE s.token_hash = :token_hash AND s.revoked_at IS NULL;

-- name: touch_session
UPDATE sessions SET last_seen_at = :now WHERE id = :id;

-- name: set_session_tenant
UPDATE sessions SET tenant_id = :tenant_id WHERE id = :id;

-- name: delete_session
DELETE FROM sessions WHERE id = :id;

-- name: delete_session_by_hash
DELETE FROM sessions WHERE token_hash = :token_hash;

-- name: delete_expired_sessions
DELETE FROM sessions WHERE expires_at < :now OR last_seen_at < :idle_before;

-- name: set_last_login
UPDATE users SET last_login_at = :now, updated_at = :now WHERE id = :id;

-- name: first_membership
SELECT m.tenant_id, m.role FROM memberships m
WHERE m.user_id = :user_id AND m.active
ORDER BY m.tenant_id
LIMIT 1;

-- name: memberships_of_user
SELECT t.id, t.name, t.slug, m.role
FROM memberships m JOIN tenants t ON t.id = m.tenant_id
WHERE m.user_id = :user_id AND m.active
ORDER BY t.name;

-- name: active_membership
SELECT role FROM memberships WHERE user_id = :user_id AND tenant_id = :tenant_id AND active;
