-- Contacts of one tenant: every query is scoped by tenant_id.
-- `do_not_contact` is looked up by phone in the tenant's DNC list (an erased contact has no
-- phone, so it reads false; the DNC entry itself is kept).

-- name: get
SELECT c.*,
       EXISTS (SELECT 1 FROM do_not_contact d
               WHERE d.tenant_id = c.tenant_id AND d.phone_e164 = c.phone_e164) AS do_not_contact
FROM contacts c
WHERE c.tenant_id = :tenant_id AND c.id = :id;

-- The row an update starts from, locked on PostgreSQL (SQLite's writer is already exclusive).
-- name: get_for_update [sqlite]
SELECT * FROM contacts WHERE tenant_id = :tenant_id AND id = :id;

-- name: get_for_update [postgresql]
SELECT * FROM contacts WHERE tenant_id = :tenant_id AND id = :id FOR UPDATE;

-- name: id_by_phone
SELECT id FROM contacts WHERE tenant_id = :tenant_id AND phone_e164 = :phone_e164;

-- Filters are optional (NULL matches everything). `pattern` is a lower-case LIKE pattern
-- for names and email, `digits` one for the phone, `q_phone` the search text read as a
-- whole number. The two dialects differ only in how a tag is found in the JSON array.
-- (No parameter names in comments: a comment above a header ends the block before it.)
-- name: search [sqlite]
SELECT c.*,
       EXISTS (SELECT 1 FROM do_not_contact d
               WHERE d.tenant_id = c.tenant_id AND d.phone_e164 = c.phone_e164) AS do_not_contact
FROM contacts c
WHERE c.tenant_id = :tenant_id
  AND (:include_erased OR c.erased_at IS NULL)
  AND (CAST(:phone AS TEXT) IS NULL OR c.phone_e164 = :phone)
  AND (CAST(:tag AS TEXT) IS NULL
       OR EXISTS (SELECT 1 FROM json_each(c.tags) t WHERE t.value = :tag))
  AND (CAST(:pattern AS TEXT) IS NULL
       OR lower(coalesce(c.first_name, '') || ' ' || coalesce(c.last_name, '')) LIKE :pattern ESCAPE '\'
       OR lower(c.email) LIKE :pattern ESCAPE '\'
       OR c.phone_e164 LIKE :digits ESCAPE '\'
       OR c.phone_e164 = :q_phone)
ORDER BY c.id DESC
LIMIT :limit OFFSET :offset;

-- name: search [postgresql]
SELECT c.*,
       EXISTS (SELECT 1 FROM do_not_contact d
               WHERE d.tenant_id = c.tenant_id AND d.phone_e164 = c.phone_e164) AS do_not_contact
FROM contacts c
WHERE c.tenant_id = :tenant_id
  AND (CAST(:include_erased AS BOOLEAN) OR c.erased_at IS NULL)
  AND (CAST(:phone AS TEXT) IS NULL OR c.phone_e164 = :phone)
  AND (CAST(:tag AS TEXT) IS NULL OR c.tags @> jsonb_build_array(CAST(:tag AS TEXT)))
  AND (CAST(:pattern AS TEXT) IS NULL
       OR lower(coalesce(c.first_name, '') || ' ' || coalesce(c.last_name, '')) LIKE :pattern ESCAPE '\'
       OR lower(c.email) LIKE :pattern ESCAPE '\'
       OR c.phone_e164 LIKE :digits ESCAPE '\'
       OR c.phone_e164 = :q_phone)
ORDER BY c.id DESC
LIMIT :limit OFFSET :offset;

-- name: count [sqlite]
SELECT count(*) FROM contacts c
WHERE c.tenant_id = :tenant_id
  AND (:include_erased OR c.erased_at IS NULL)
  AND (CAST(:phone AS TEXT) IS NULL OR c.phone_e164 = :phone)
  AND (CAST(:tag AS TEXT) IS NULL
       OR EXISTS (SELECT 1 FROM json_each(c.tags) t WHERE t.value = :tag))
  AND (CAST(:pattern AS TEXT) IS NULL
       OR lower(coalesce(c.first_name, '') || ' ' || coalesce(c.last_name, '')) LIKE :pattern ESCAPE '\'
       OR lower(c.email) LIKE :pattern ESCAPE '\'
       OR c.phone_e164 LIKE :digits ESCAPE '\'
       OR c.phone_e164 = :q_phone);

-- name: count [postgresql]
SELECT count(*) FROM contacts c
WHERE c.tenant_id = :tenant_id
  AND (CAST(:include_erased AS BOOLEAN) OR c.erased_at IS NULL)
  AND (CAST(:phone AS TEXT) IS NULL OR c.phone_e164 = :phone)
  AND (CAST(:tag AS TEXT) IS NULL OR c.tags @> jsonb_build_array(CAST(:tag AS TEXT)))
  AND (CAST(:pattern AS TEXT) IS NULL
       OR lower(coalesce(c.first_name, '') || ' ' || coalesce(c.last_name, '')) LIKE :pattern ESCAPE '\'
       OR lower(c.email) LIKE :pattern ESCAPE '\'
       OR c.phone_e164 LIKE :digits ESCAPE '\'
       OR c.phone_e164 = :q_phone);

-- name: insert
INSERT INTO contacts (tenant_id, phone_e164, email, first_name, last_name, country, state,
                      postcode, timezone, tags, attributes, consent_source, consent_at,
                      created_at, updated_at)
VALUES (:tenant_id, :phone_e164, :email, :first_name, :last_name, :country, :state,
        :postcode, :timezone, :tags, :attributes, :consent_source, :consent_at, :now, :now)
RETURNING id;

-- name: update
UPDATE contacts
SET phone_e164 = :phone_e164, email = :email, first_name = :first_name, last_name = :last_name,
    country = :country, state = :state, postcode = :postcode, timezone = :timezone,
    tags = :tags, attributes = :attributes, consent_source = :consent_source,
    consent_at = :consent_at, updated_at = :now
WHERE tenant_id = :tenant_id AND id = :id AND erased_at IS NULL;

-- Erasure (pack §2): the person's data goes; the row stays so that reports still reconcile.
-- The timezone goes too: it was derived from the erased state and postcode.
-- name: erase
UPDATE contacts
SET phone_e164 = NULL, email = NULL, first_name = NULL, last_name = NULL, state = NULL,
    postcode = NULL, timezone = NULL, tags = '[]', attributes = '{}',
    erased_at = coalesce(erased_at, :now), updated_at = :now
WHERE tenant_id = :tenant_id AND id = :id;

-- name: erase_job_bodies
UPDATE send_jobs SET body = '[erased]', updated_at = :now
WHERE tenant_id = :tenant_id AND contact_id = :id AND body <> '[erased]';

-- A queued job of an erased contact can never be sent (it has no number any more).
-- name: cancel_queued_jobs
UPDATE send_jobs SET status = 'cancelled', reason = 'erased', updated_at = :now
WHERE tenant_id = :tenant_id AND contact_id = :id AND status = 'queued'
RETURNING id, campaign_id;

-- name: insert_event
INSERT INTO events (tenant_id, campaign_id, contact_id, send_job_id, type, occurred_at, data, created_at)
VALUES (:tenant_id, :campaign_id, :contact_id, :send_job_id, :type, :now, :data, :now);

-- Inbound texts are the person's own words: their bodies go.
-- name: erase_event_data
UPDATE events SET data = '{"erased": true}'
WHERE tenant_id = :tenant_id AND contact_id = :id
  AND type IN ('REPLIED', 'OPT_OUT', 'HELP', 'RESUBSCRIBE');

-- The texts they sent, and the number they sent them from, go too.
-- name: erase_inbound_messages
UPDATE inbound_messages SET body = '[erased]', from_e164 = '[erased]'
WHERE tenant_id = :tenant_id AND contact_id = :id;

-- The provider's callbacks as received (their number, their words): those that brought their
-- texts, and the status callbacks of our messages to them (campaign jobs, and texts to their
-- number from the outbox), found by the message's id. Before the outbox's rows are erased.
-- name: erase_webhook_payloads
UPDATE webhook_events SET payload = '{"erased": true}'
WHERE id IN (
  SELECT webhook_event_id FROM inbound_messages
  WHERE tenant_id = :tenant_id AND contact_id = :id AND webhook_event_id IS NOT NULL
  UNION
  SELECT w.id FROM webhook_events AS w
  WHERE w.message_id IN (
    SELECT provider_message_id FROM send_jobs
    WHERE tenant_id = :tenant_id AND contact_id = :id AND provider_message_id IS NOT NULL
    UNION
    SELECT provider_message_id FROM outbox
    WHERE tenant_id = :tenant_id AND to_e164 = :phone AND provider_message_id IS NOT NULL));

-- Our own texts to their number (opt-out confirmations, HELP answers): those not yet claimed
-- by the dispatcher are cancelled (there is no number to send them to any more), then every
-- one not in flight loses its number and payload. A row claimed and not yet settled keeps
-- them: its send, or the reconciliation of a send a dead process left, still needs them.
-- name: cancel_outbox_messages
UPDATE outbox SET processed_at = :now, last_error = 'erased', updated_at = :now
WHERE tenant_id = :tenant_id AND to_e164 = :phone
  AND processed_at IS NULL AND attempt_id IS NULL;

-- name: erase_outbox_messages
UPDATE outbox SET to_e164 = NULL, payload = '{"erased": true}', updated_at = :now
WHERE tenant_id = :tenant_id AND to_e164 = :phone AND processed_at IS NOT NULL;

-- The lines of the tenant's imports that held them: theirs (contact_id), or with their number
-- as read or as the number a row replaced. The row stays (a batch's counts still reconcile)
-- as an invalid line with nothing of the person in it; in a batch not yet committed it is
-- decided `invalid_phone` (reason `erased`), so committing the batch later cannot bring them
-- back.
-- name: erase_import_rows [sqlite]
UPDATE import_rows
SET data = json_object('row', row_number, 'phone_raw', '', 'phone_e164', NULL,
                       'problem', 'erased'),
    raw = '[]', previous_phone_e164 = NULL,
    decision = CASE WHEN b.status = 'dry_run' THEN 'invalid_phone' ELSE decision END,
    reasons = CASE WHEN b.status = 'dry_run' THEN '["erased"]' ELSE reasons END
FROM import_batches AS b
WHERE b.id = import_rows.import_batch_id AND b.tenant_id = :tenant_id
  AND (import_rows.contact_id = :id OR import_rows.data ->> '$.phone_e164' = :phone
       OR import_rows.previous_phone_e164 = :phone);

-- name: erase_import_rows [postgresql]
UPDATE import_rows AS r
SET data = jsonb_build_object('row', r.row_number, 'phone_raw', '', 'phone_e164', NULL,
                              'problem', 'erased'),
    raw = '[]', previous_phone_e164 = NULL,
    decision = CASE WHEN b.status = 'dry_run' THEN 'invalid_phone' ELSE r.decision END,
    reasons = CASE WHEN b.status = 'dry_run' THEN CAST('["erased"]' AS jsonb) ELSE r.reasons END
FROM import_batches AS b
WHERE b.id = r.import_batch_id AND b.tenant_id = :tenant_id
  AND (r.contact_id = :id OR r.data ->> 'phone_e164' = CAST(:phone AS text)
       OR r.previous_phone_e164 = CAST(:phone AS text));

-- name: timeline
SELECT type, occurred_at, campaign_id, data
FROM events
WHERE tenant_id = :tenant_id AND contact_id = :contact_id
ORDER BY occurred_at, id;
