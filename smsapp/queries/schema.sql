-- Schema introspection for smsapp.db.schema (the ERD and the schema tests), one query per
-- aspect and backend. Every query lists all tables; yoyo's own tables are dropped in Python.
-- SQLite reads its PRAGMAs through the table-valued pragma_* functions so one SELECT covers
-- every table. PostgreSQL reads pg_catalog, schema `public`.

-- name: columns [sqlite]
SELECT m.name AS table_name,
       c.cid AS position,
       c.name AS column_name,
       c.type AS data_type,
       c."notnull" AS not_null,
       c.pk > 0 AS primary_key
FROM sqlite_master m
JOIN pragma_table_info(m.name) c
WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite\_%' ESCAPE '\'
ORDER BY m.name, c.cid;

-- name: columns [postgresql]
SELECT c.relname AS table_name,
       a.attnum AS position,
       a.attname AS column_name,
       format_type(a.atttypid, NULL) AS data_type,
       a.attnotnull AS not_null,
       EXISTS (
           SELECT 1 FROM pg_index p
           WHERE p.indrelid = c.oid AND p.indisprimary AND a.attnum = ANY (p.indkey)
       ) AS primary_key
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
ORDER BY c.relname, a.attnum;

-- name: unique_keys [sqlite]
-- Unique constraints and unique indexes (partial ones included), not the primary key.
-- An expression in the key has no column name (NULL); `index_sql` is the CREATE INDEX
-- statement, whose WHERE clause is the partial index's predicate.
SELECT m.name AS table_name,
       il.name AS index_name,
       ii.seqno AS position,
       ii.name AS column_name,
       il.partial = 1 AS partial,
       idx.sql AS index_sql
FROM sqlite_master m
JOIN pragma_index_list(m.name) il
JOIN pragma_index_info(il.name) ii
LEFT JOIN sqlite_master idx ON idx.type = 'index' AND idx.name = il.name
WHERE m.type = 'table' AND il."unique" = 1 AND il.origin <> 'pk'
ORDER BY m.name, il.name, ii.seqno;

-- name: unique_keys [postgresql]
-- As above; `predicate` is PostgreSQL's own rendering of a partial index's WHERE clause.
SELECT c.relname AS table_name,
       ic.relname AS index_name,
       k.position,
       a.attname AS column_name,
       i.indpred IS NOT NULL AS partial,
       pg_get_expr(i.indpred, i.indrelid) AS predicate
FROM pg_index i
JOIN pg_class c ON c.oid = i.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_class ic ON ic.oid = i.indexrelid
CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k (attnum, position)
LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum AND k.attnum > 0
WHERE n.nspname = 'public' AND i.indisunique AND NOT i.indisprimary
  AND k.position <= i.indnkeyatts
ORDER BY c.relname, ic.relname, k.position;

-- name: foreign_keys [sqlite]
-- One row per column pair of each foreign key; `fk_id` groups the pairs of one key.
-- `ref_column` is NULL when the key names only the table (it then means its primary key).
SELECT m.name AS table_name,
       fk.id AS fk_id,
       fk.seq AS position,
       fk."from" AS column_name,
       fk."table" AS ref_table,
       fk."to" AS ref_column,
       fk.on_delete AS on_delete
FROM sqlite_master m
JOIN pragma_foreign_key_list(m.name) fk
WHERE m.type = 'table'
ORDER BY m.name, fk.id, fk.seq;

-- name: foreign_keys [postgresql]
SELECT c.relname AS table_name,
       con.conname AS fk_id,
       k.position,
       a.attname AS column_name,
       rc.relname AS ref_table,
       ra.attname AS ref_column,
       CASE con.confdeltype
           WHEN 'a' THEN 'NO ACTION'
           WHEN 'r' THEN 'RESTRICT'
           WHEN 'c' THEN 'CASCADE'
           WHEN 'n' THEN 'SET NULL'
           WHEN 'd' THEN 'SET DEFAULT'
       END AS on_delete
FROM pg_constraint con
JOIN pg_class c ON c.oid = con.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_class rc ON rc.oid = con.confrelid
CROSS JOIN LATERAL unnest(con.conkey, con.confkey) WITH ORDINALITY AS k (attnum, ref_attnum, position)
JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum
JOIN pg_attribute ra ON ra.attrelid = con.confrelid AND ra.attnum = k.ref_attnum
WHERE con.contype = 'f' AND n.nspname = 'public'
ORDER BY c.relname, con.conname, k.position;
