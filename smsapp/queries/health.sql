-- Readiness checks.

-- name: ping
SELECT 1 AS ok;

-- name: applied_migrations
SELECT migration_id FROM _yoyo_migration;
