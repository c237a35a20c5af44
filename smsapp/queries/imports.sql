-- Contacts import (pack §6). Lists are bound as JSON arrays on SQLite (json_each) and as
-- arrays on PostgreSQL (= ANY); bulk writes take one row's values on SQLite (executemany)
-- and every row's values as arrays on PostgreSQL (unnest): see Database.bulk.

-- name: tenant
SELECT id, default_country, timezone FROM tenants WHERE id = :tenant_id;

-- name: insert_batch
INSERT INTO import_batches (tenant_id, filename, sha256, mapping, headers, idempotency_key, status,
                            row_count, counts, created_by, created_by_api_key_id, created_at,
                            updated_at)
VALUES (:tenant_id, :filename, :sha256, :mapping, :headers, :idempotency_key, 'dry_run',
        :row_count, :counts, :created_by, :api_key_id, :now, :now)
RETURNING id;

-- name: batch
SELECT * FROM import_batches WHERE id = :id AND tenant_id = :tenant_id;

-- name: batch_for_commit [sqlite]
SELECT * FROM import_batches WHERE id = :id AND tenant_id = :tenant_id;

-- Two concurrent commits of one batch queue here; the second then sees it committed.
-- name: batch_for_commit [postgresql]
SELECT * FROM import_batches WHERE id = :id AND tenant_id = :tenant_id FOR UPDATE;

-- name: batch_by_key
SELECT * FROM import_batches WHERE tenant_id = :tenant_id AND idempotency_key = :key;

-- name: list_batches
SELECT b.id, b.filename, b.status, b.row_count, b.counts, b.created_at, b.committed_at,
       u.email AS created_by_email, k.name AS created_by_key
FROM import_batches b
LEFT JOIN users u ON u.id = b.created_by
LEFT JOIN api_keys k ON k.id = b.created_by_api_key_id
WHERE b.tenant_id = :tenant_id
ORDER BY b.created_at DESC, b.id DESC
LIMIT :limit;

-- name: mark_committed
UPDATE import_batches
SET status = 'committed', counts = :counts, consent_confirmed_by = :user_id,
    consent_confirmed_at = :now, committed_at = :now, updated_at = :now,
    idempotency_key = COALESCE(idempotency_key, :idempotency_key)
WHERE id = :id AND status = 'dry_run';

-- Lineage rows at dry-run. SQLite: one JSON array of [row_number, data, raw, decision,
-- reasons, contact_id, previous_phone_e164], the JSON columns as JSON text. PostgreSQL: one
-- array per column.
-- name: insert_rows [sqlite]
INSERT INTO import_rows (import_batch_id, row_number, data, raw, decision, reasons, contact_id,
                         previous_phone_e164, created_at)
SELECT :import_batch_id, r.value ->> 0, r.value ->> 1, r.value ->> 2, r.value ->> 3,
       r.value ->> 4, r.value ->> 5, r.value ->> 6, :now
FROM json_each(:rows) AS r;

-- name: insert_rows [postgresql]
INSERT INTO import_rows (import_batch_id, row_number, data, raw, decision, reasons, contact_id,
                         previous_phone_e164, created_at)
SELECT :import_batch_id, u.row_number, u.data::jsonb, u.raw::jsonb, u.decision, u.reasons::jsonb,
       u.contact_id, u.previous_phone_e164, :now
FROM unnest(CAST(:row_number AS int[]), CAST(:data AS text[]), CAST(:raw AS text[]),
            CAST(:decision AS text[]), CAST(:reasons AS text[]), CAST(:contact_id AS bigint[]),
            CAST(:previous_phone_e164 AS text[]))
  AS u(row_number, data, raw, decision, reasons, contact_id, previous_phone_e164);

-- What commit needs to recompute the decisions that depend on the database, as one JSON
-- array of [row_number, phone_e164, email, warnings, decision, reasons, contact_id,
-- previous_phone_e164] for the next rows (up to the limit) after a row number (empty or NULL
-- when none are left).
-- name: rows_to_decide [sqlite]
SELECT json_group_array(json_array(row_number, data ->> '$.phone_e164', data ->> '$.email',
                                   json(coalesce(data -> '$.warnings', '[]')), decision,
                                   json(reasons), contact_id, previous_phone_e164)) AS rows
FROM (SELECT row_number, data, decision, reasons, contact_id, previous_phone_e164
      FROM import_rows
      WHERE import_batch_id = :id AND row_number > :after
        AND decision NOT IN ('invalid_phone', 'duplicate')
      ORDER BY row_number
      LIMIT :limit);

-- name: rows_to_decide [postgresql]
SELECT json_agg(json_build_array(row_number, data ->> 'phone_e164', data ->> 'email',
                                 coalesce(data -> 'warnings', '[]'), decision, reasons,
                                 contact_id, previous_phone_e164) ORDER BY row_number) AS rows
FROM (SELECT row_number, data, decision, reasons, contact_id, previous_phone_e164
      FROM import_rows
      WHERE import_batch_id = :id AND row_number > :after
        AND decision NOT IN ('invalid_phone', 'duplicate')
      ORDER BY row_number
      LIMIT :limit) AS r;

-- name: update_row_decisions [sqlite]
UPDATE import_rows
SET decision = :decision, reasons = :reasons, contact_id = :contact_id,
    previous_phone_e164 = :previous_phone_e164
WHERE import_batch_id = :import_batch_id AND row_number = :row_number;

-- name: update_row_decisions [postgresql]
UPDATE import_rows AS r
SET decision = u.decision, reasons = u.reasons::jsonb, contact_id = u.contact_id,
    previous_phone_e164 = u.previous_phone_e164
FROM unnest(CAST(:import_batch_id AS bigint[]), CAST(:row_number AS int[]),
            CAST(:decision AS text[]), CAST(:reasons AS text[]), CAST(:contact_id AS bigint[]),
            CAST(:previous_phone_e164 AS text[]))
  AS u(import_batch_id, row_number, decision, reasons, contact_id, previous_phone_e164)
WHERE r.import_batch_id = u.import_batch_id AND r.row_number = u.row_number;

-- Lineage of the created rows: their new contact, found by number (set-based, in the database).
-- name: link_created_rows [sqlite]
UPDATE import_rows
SET contact_id = (SELECT c.id FROM contacts c
                  WHERE c.tenant_id = :tenant_id
                    AND c.phone_e164 = json_extract(import_rows.data, '$.phone_e164'))
WHERE import_batch_id = :id AND decision = 'create';

-- name: link_created_rows [postgresql]
UPDATE import_rows AS r SET contact_id = c.id
FROM contacts c
WHERE r.import_batch_id = :id AND r.decision = 'create'
  AND c.tenant_id = :tenant_id AND c.phone_e164 = r.data->>'phone_e164';

-- name: first_decisions
SELECT row_number AS row, decision, reasons, data
FROM import_rows WHERE import_batch_id = :id
ORDER BY row_number
LIMIT :limit;

-- name: rejected_rows
SELECT row_number, raw, decision, reasons
FROM import_rows
WHERE import_batch_id = :id AND decision IN ('invalid_phone', 'duplicate', 'dnc', 'suppressed_by_cooldown')
ORDER BY row_number;

-- name: contacts_by_phone [sqlite]
SELECT id, phone_e164, lower(email) AS email FROM contacts
WHERE tenant_id = :tenant_id AND phone_e164 IN (SELECT value FROM json_each(:phones));

-- The import runs these once per chunk of rows, so PostgreSQL soon plans them generically,
-- without the list's length; a join on the unnested list is an index lookup per number in
-- any plan (`= ANY(list)` became a scan of the tenant's contacts, 0.8 s per chunk of 6k).
-- name: contacts_by_phone [postgresql]
SELECT c.id, c.phone_e164, lower(c.email) AS email
FROM unnest(CAST(:phones AS text[])) AS p(phone)
JOIN contacts c ON c.tenant_id = :tenant_id AND c.phone_e164 = p.phone;

-- name: contacts_by_email [sqlite]
SELECT id, phone_e164, lower(email) AS email FROM contacts
WHERE tenant_id = :tenant_id AND lower(email) IN (SELECT value FROM json_each(:emails))
ORDER BY id;

-- name: contacts_by_email [postgresql]
SELECT c.id, c.phone_e164, lower(c.email) AS email
FROM unnest(CAST(:emails AS text[])) AS e(email)
JOIN contacts c ON c.tenant_id = :tenant_id AND lower(c.email) = e.email
ORDER BY c.id;

-- The rows that update a contact, with the contact's current values, in file order.
-- name: rows_to_update
SELECT r.row_number, r.data, c.id, c.email, c.first_name, c.last_name, c.country, c.state,
       c.postcode, c.timezone, c.tags, c.attributes, c.consent_source, c.consent_at
FROM import_rows r
JOIN contacts c ON c.id = r.contact_id AND c.tenant_id = :tenant_id
WHERE r.import_batch_id = :id AND r.decision = 'update'
ORDER BY r.row_number;

-- name: update_contacts [sqlite]
UPDATE contacts
SET phone_e164 = :phone_e164, email = :email, first_name = :first_name, last_name = :last_name,
    country = :country, state = :state, postcode = :postcode, timezone = :timezone,
    tags = :tags, attributes = :attributes, consent_source = :consent_source,
    consent_at = :consent_at, last_import_batch_id = :batch_id, updated_at = :now
WHERE id = :id;

-- name: update_contacts [postgresql]
UPDATE contacts AS c
SET phone_e164 = u.phone_e164, email = u.email, first_name = u.first_name,
    last_name = u.last_name, country = u.country, state = u.state, postcode = u.postcode,
    timezone = u.timezone, tags = u.tags::jsonb, attributes = u.attributes::jsonb,
    consent_source = u.consent_source, consent_at = u.consent_at,
    last_import_batch_id = u.batch_id, updated_at = u.now
FROM unnest(CAST(:id AS bigint[]), CAST(:phone_e164 AS text[]), CAST(:email AS text[]),
            CAST(:first_name AS text[]), CAST(:last_name AS text[]), CAST(:country AS text[]),
            CAST(:state AS text[]), CAST(:postcode AS text[]), CAST(:timezone AS text[]),
            CAST(:tags AS text[]), CAST(:attributes AS text[]), CAST(:consent_source AS text[]),
            CAST(:consent_at AS timestamptz[]), CAST(:batch_id AS bigint[]),
            CAST(:now AS timestamptz[]))
  AS u(id, phone_e164, email, first_name, last_name, country, state, postcode, timezone, tags,
       attributes, consent_source, consent_at, batch_id, now)
WHERE c.id = u.id;

-- The contacts of the rows decided `create`, from their normalised rows, in file order: what
-- service._merged gives for a new contact (the tenant's country when the row has none, the
-- batch's consent source and time when the row has none). SQLite stores times as text in one
-- format (microseconds always); a row's consent_at is ISO-8601 UTC, without the fraction when
-- it is zero, so the fraction is added to those.
-- name: insert_created_contacts [sqlite]
INSERT INTO contacts (tenant_id, phone_e164, email, first_name, last_name, country, state,
                      postcode, timezone, tags, attributes, consent_source, consent_at,
                      last_import_batch_id, created_at, updated_at)
SELECT :tenant_id, r.data ->> '$.phone_e164', r.data ->> '$.email', r.data ->> '$.first_name',
       r.data ->> '$.last_name', coalesce(r.data ->> '$.country', :default_country),
       r.data ->> '$.state', r.data ->> '$.postcode', r.data ->> '$.timezone',
       coalesce(r.data -> '$.tags', '[]'), coalesce(r.data -> '$.attributes', '{}'),
       coalesce(r.data ->> '$.consent_source', :consent_source),
       coalesce(CASE WHEN length(r.data ->> '$.consent_at') = 25
                     THEN substr(r.data ->> '$.consent_at', 1, 19) || '.000000'
                          || substr(r.data ->> '$.consent_at', 20)
                     ELSE r.data ->> '$.consent_at' END, :now),
       :id, :now, :now
FROM import_rows r
WHERE r.import_batch_id = :id AND r.decision = 'create'
ORDER BY r.row_number;

-- name: insert_created_contacts [postgresql]
INSERT INTO contacts (tenant_id, phone_e164, email, first_name, last_name, country, state,
                      postcode, timezone, tags, attributes, consent_source, consent_at,
                      last_import_batch_id, created_at, updated_at)
SELECT :tenant_id, r.data ->> 'phone_e164', r.data ->> 'email', r.data ->> 'first_name',
       r.data ->> 'last_name', coalesce(r.data ->> 'country', :default_country),
       r.data ->> 'state', r.data ->> 'postcode', r.data ->> 'timezone',
       coalesce(r.data -> 'tags', '[]'), coalesce(r.data -> 'attributes', '{}'),
       coalesce(r.data ->> 'consent_source', :consent_source),
       coalesce((r.data ->> 'consent_at')::timestamptz, :now),
       :id, :now, :now
FROM import_rows r
WHERE r.import_batch_id = :id AND r.decision = 'create'
ORDER BY r.row_number;

-- One IMPORTED event per created or updated contact, for its timeline.
-- name: insert_events [sqlite]
INSERT INTO events (tenant_id, contact_id, type, occurred_at, data, created_at)
SELECT :tenant_id, contact_id, 'IMPORTED', :now,
       json_object('import_id', import_batch_id, 'decision', decision, 'row', row_number), :now
FROM import_rows
WHERE import_batch_id = :id AND decision IN ('create', 'update');

-- name: insert_events [postgresql]
INSERT INTO events (tenant_id, contact_id, type, occurred_at, data, created_at)
SELECT :tenant_id, contact_id, 'IMPORTED', :now,
       jsonb_build_object('import_id', import_batch_id, 'decision', decision, 'row', row_number), :now
FROM import_rows
WHERE import_batch_id = :id AND decision IN ('create', 'update');

-- name: set_counts
UPDATE import_batches SET counts = :counts, row_count = :row_count WHERE id = :id;
