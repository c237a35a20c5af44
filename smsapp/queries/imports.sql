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

-- name: insert_rows [sqlite]
INSERT INTO import_rows (import_batch_id, row_number, data, raw, decision, reasons, contact_id,
                         previous_phone_e164, created_at)
VALUES (:import_batch_id, :row_number, :data, :raw, :decision, :reasons, :contact_id,
        :previous_phone_e164, :created_at);

-- name: insert_rows [postgresql]
INSERT INTO import_rows (import_batch_id, row_number, data, raw, decision, reasons, contact_id,
                         previous_phone_e164, created_at)
SELECT u.import_batch_id, u.row_number, u.data::jsonb, u.raw::jsonb, u.decision, u.reasons::jsonb,
       u.contact_id, u.previous_phone_e164, u.created_at
FROM unnest(CAST(:import_batch_id AS bigint[]), CAST(:row_number AS int[]), CAST(:data AS text[]),
            CAST(:raw AS text[]), CAST(:decision AS text[]), CAST(:reasons AS text[]),
            CAST(:contact_id AS bigint[]), CAST(:previous_phone_e164 AS text[]),
            CAST(:created_at AS timestamptz[]))
  AS u(import_batch_id, row_number, data, raw, decision, reasons, contact_id, previous_phone_e164,
       created_at);

-- name: rows_for_commit
SELECT row_number, data, decision, reasons, contact_id, previous_phone_e164
FROM import_rows WHERE import_batch_id = :id ORDER BY row_number;

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

-- name: contacts_by_phone [postgresql]
SELECT id, phone_e164, lower(email) AS email FROM contacts
WHERE tenant_id = :tenant_id AND phone_e164 = ANY(:phones);

-- name: contacts_by_email [sqlite]
SELECT id, phone_e164, lower(email) AS email FROM contacts
WHERE tenant_id = :tenant_id AND lower(email) IN (SELECT value FROM json_each(:emails))
ORDER BY id;

-- name: contacts_by_email [postgresql]
SELECT id, phone_e164, lower(email) AS email FROM contacts
WHERE tenant_id = :tenant_id AND lower(email) = ANY(:emails)
ORDER BY id;

-- name: contacts_for_update [sqlite]
SELECT id, email, first_name, last_name, country, state, postcode, timezone, tags, attributes,
       consent_source, consent_at
FROM contacts WHERE tenant_id = :tenant_id AND id IN (SELECT value FROM json_each(:ids));

-- name: contacts_for_update [postgresql]
SELECT id, email, first_name, last_name, country, state, postcode, timezone, tags, attributes,
       consent_source, consent_at
FROM contacts WHERE tenant_id = :tenant_id AND id = ANY(:ids);

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

-- name: insert_contacts [sqlite]
INSERT INTO contacts (tenant_id, phone_e164, email, first_name, last_name, country, state,
                      postcode, timezone, tags, attributes, consent_source, consent_at,
                      last_import_batch_id, created_at, updated_at)
VALUES (:tenant_id, :phone_e164, :email, :first_name, :last_name, :country, :state, :postcode,
        :timezone, :tags, :attributes, :consent_source, :consent_at, :batch_id, :now, :now);

-- name: insert_contacts [postgresql]
INSERT INTO contacts (tenant_id, phone_e164, email, first_name, last_name, country, state,
                      postcode, timezone, tags, attributes, consent_source, consent_at,
                      last_import_batch_id, created_at, updated_at)
SELECT u.tenant_id, u.phone_e164, u.email, u.first_name, u.last_name, u.country, u.state,
       u.postcode, u.timezone, u.tags::jsonb, u.attributes::jsonb, u.consent_source,
       u.consent_at, u.batch_id, u.now, u.now
FROM unnest(CAST(:tenant_id AS bigint[]), CAST(:phone_e164 AS text[]), CAST(:email AS text[]),
            CAST(:first_name AS text[]), CAST(:last_name AS text[]), CAST(:country AS text[]),
            CAST(:state AS text[]), CAST(:postcode AS text[]), CAST(:timezone AS text[]),
            CAST(:tags AS text[]), CAST(:attributes AS text[]), CAST(:consent_source AS text[]),
            CAST(:consent_at AS timestamptz[]), CAST(:batch_id AS bigint[]),
            CAST(:now AS timestamptz[]))
  AS u(tenant_id, phone_e164, email, first_name, last_name, country, state, postcode, timezone,
       tags, attributes, consent_source, consent_at, batch_id, now);

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
