-- How far each segment of the redirect's hit journal (smsapp/hit_journal.py) is folded into
-- the database. The hit writer reads and advances a segment's row in the transaction that
-- writes the segment's hits (smsapp/hit_writer.py), so each hit is folded exactly once.

-- The segment's row, made when it is first folded; how far it is folded. The upsert locks the
-- row (PostgreSQL) until the fold's transaction ends, so two processes never fold one segment
-- at once.
-- name: claim
INSERT INTO hit_journal_segments (name, folded_bytes, created_at, updated_at)
VALUES (:name, 0, :now, :now)
ON CONFLICT (name) DO UPDATE SET name = excluded.name
RETURNING folded_bytes;

-- name: advance
UPDATE hit_journal_segments SET folded_bytes = :folded, updated_at = :now WHERE name = :name;

-- A segment's row goes once its file is deleted (never before: a row gone with the file still
-- there would fold the file again from its start).
-- name: forget
DELETE FROM hit_journal_segments WHERE name = :name;

-- This database's journal directory: the name the first process to start chose, and kept.
-- name: claim_home
INSERT INTO hit_journal_home (id, name, created_at) VALUES (1, :name, :now)
ON CONFLICT (id) DO NOTHING;

-- name: home
SELECT name FROM hit_journal_home;
