-- Inbound messages (pack §10): routing, the senders, attribution and the opt-out effects, a
-- batch of messages at a time (smsapp/inbound.py: one transaction, set-based statements).
-- Rows travel as a JSON list (SQLite, json_each) or one array per column (PostgreSQL, unnest).

-- The inbound `To` names exactly one tenant (sending_numbers.phone_e164 is unique). An
-- inactive number still routes: a STOP sent to a retired number is honoured all the same.
-- name: route_many [sqlite]
SELECT n.id AS sending_number_id, n.tenant_id, n.phone_e164, t.name AS tenant_name,
       t.default_country, t.optout_keywords
FROM sending_numbers n JOIN tenants t ON t.id = n.tenant_id
WHERE n.phone_e164 IN (SELECT value FROM json_each(:numbers));

-- name: route_many [postgresql]
SELECT n.id AS sending_number_id, n.tenant_id, n.phone_e164, t.name AS tenant_name,
       t.default_country, t.optout_keywords
FROM sending_numbers n JOIN tenants t ON t.id = n.tenant_id
WHERE n.phone_e164 = ANY(:numbers);

-- Each sender (tenant_id, phone_e164) as the batch needs it: on the tenant's list or not, its
-- contact (NULL when there is none), the campaign a message from it is attributed to (pack
-- §12: the most recent campaign message sent to the contact in the last 7 days, served by
-- send_jobs_contact (tenant_id, contact_id, sent_at)), and whether an opt-out confirmation
-- was queued for it in the last 24 hours (outbox_recipient).
-- name: senders [sqlite]
SELECT s.tenant_id, s.phone_e164,
       EXISTS (SELECT 1 FROM do_not_contact d
               WHERE d.tenant_id = s.tenant_id AND d.phone_e164 = s.phone_e164) AS on_dnc,
       c.id AS contact_id,
       (SELECT j.campaign_id FROM send_jobs j
        WHERE j.tenant_id = s.tenant_id AND j.contact_id = c.id AND j.sent_at >= :since
        ORDER BY j.sent_at DESC, j.id DESC
        LIMIT 1) AS campaign_id,
       EXISTS (SELECT 1 FROM outbox o
               WHERE o.tenant_id = s.tenant_id AND o.to_e164 = s.phone_e164
                 AND o.purpose = 'optout_confirmation' AND o.created_at > :confirmed_since)
         AS confirmed
FROM (SELECT json_extract(value, '$.tenant_id') AS tenant_id,
             json_extract(value, '$.phone_e164') AS phone_e164
      FROM json_each(:senders)) AS s
LEFT JOIN contacts c ON c.tenant_id = s.tenant_id AND c.phone_e164 = s.phone_e164;

-- name: senders [postgresql]
SELECT s.tenant_id, s.phone_e164,
       EXISTS (SELECT 1 FROM do_not_contact d
               WHERE d.tenant_id = s.tenant_id AND d.phone_e164 = s.phone_e164) AS on_dnc,
       c.id AS contact_id,
       (SELECT j.campaign_id FROM send_jobs j
        WHERE j.tenant_id = s.tenant_id AND j.contact_id = c.id
          AND j.sent_at >= CAST(:since AS TIMESTAMPTZ)
        ORDER BY j.sent_at DESC, j.id DESC
        LIMIT 1) AS campaign_id,
       EXISTS (SELECT 1 FROM outbox o
               WHERE o.tenant_id = s.tenant_id AND o.to_e164 = s.phone_e164
                 AND o.purpose = 'optout_confirmation'
                 AND o.created_at > CAST(:confirmed_since AS TIMESTAMPTZ))
         AS confirmed
FROM unnest(CAST(:tenant_id AS bigint[]), CAST(:phone_e164 AS text[])) AS s(tenant_id, phone_e164)
LEFT JOIN contacts c ON c.tenant_id = s.tenant_id AND c.phone_e164 = s.phone_e164;

-- People we never imported: created without consent, so they never enter a campaign (the
-- segment takes consented contacts only). Answers the contacts it made; one that exists
-- already (made meanwhile by another transaction) answers nothing.
-- name: insert_contacts [sqlite]
INSERT INTO contacts (tenant_id, phone_e164, country, consent_source, consent_at, created_at, updated_at)
SELECT json_extract(value, '$.tenant_id'), json_extract(value, '$.phone_e164'),
       json_extract(value, '$.country'), NULL, NULL, :now, :now
FROM json_each(:rows) WHERE true
ON CONFLICT (tenant_id, phone_e164) DO NOTHING
RETURNING id, tenant_id, phone_e164;

-- name: insert_contacts [postgresql]
INSERT INTO contacts (tenant_id, phone_e164, country, consent_source, consent_at, created_at, updated_at)
SELECT u.tenant_id, u.phone_e164, u.country, NULL, NULL,
       CAST(:now AS TIMESTAMPTZ), CAST(:now AS TIMESTAMPTZ)
FROM unnest(CAST(:tenant_id AS bigint[]), CAST(:phone_e164 AS text[]), CAST(:country AS text[]))
  AS u(tenant_id, phone_e164, country)
ON CONFLICT (tenant_id, phone_e164) DO NOTHING
RETURNING id, tenant_id, phone_e164;

-- name: contacts_by_phone [sqlite]
SELECT c.id, c.tenant_id, c.phone_e164
FROM json_each(:rows) r
JOIN contacts c ON c.tenant_id = json_extract(r.value, '$.tenant_id')
               AND c.phone_e164 = json_extract(r.value, '$.phone_e164');

-- name: contacts_by_phone [postgresql]
SELECT c.id, c.tenant_id, c.phone_e164
FROM unnest(CAST(:tenant_id AS bigint[]), CAST(:phone_e164 AS text[])) AS u(tenant_id, phone_e164)
JOIN contacts c ON c.tenant_id = u.tenant_id AND c.phone_e164 = u.phone_e164;

-- The list (pack §10). The batch holds the stop lock of every tenant it writes here, taken
-- first in its transaction, as smsapp.dnc.add_to_dnc does for one number. Each answers the
-- rows it changed: the batch checks that they are the ones it planned.
-- name: insert_dnc [sqlite]
INSERT INTO do_not_contact (tenant_id, phone_e164, source, reason, created_by, created_at)
SELECT json_extract(value, '$.tenant_id'), json_extract(value, '$.phone_e164'),
       'stop_keyword', 'opt-out reply', NULL, :now
FROM json_each(:rows) WHERE true
ON CONFLICT (tenant_id, phone_e164) DO NOTHING
RETURNING id;

-- name: insert_dnc [postgresql]
INSERT INTO do_not_contact (tenant_id, phone_e164, source, reason, created_by, created_at)
SELECT u.tenant_id, u.phone_e164, 'stop_keyword', 'opt-out reply', NULL, CAST(:now AS TIMESTAMPTZ)
FROM unnest(CAST(:tenant_id AS bigint[]), CAST(:phone_e164 AS text[])) AS u(tenant_id, phone_e164)
ON CONFLICT (tenant_id, phone_e164) DO NOTHING
RETURNING id;

-- name: delete_dnc [sqlite]
DELETE FROM do_not_contact
WHERE id IN (
  SELECT d.id FROM json_each(:rows) r
  JOIN do_not_contact d ON d.tenant_id = json_extract(r.value, '$.tenant_id')
                       AND d.phone_e164 = json_extract(r.value, '$.phone_e164'))
RETURNING id;

-- name: delete_dnc [postgresql]
DELETE FROM do_not_contact d
USING unnest(CAST(:tenant_id AS bigint[]), CAST(:phone_e164 AS text[])) AS u(tenant_id, phone_e164)
WHERE d.tenant_id = u.tenant_id AND d.phone_e164 = u.phone_e164
RETURNING d.id;

-- The queued jobs of opted-out contacts, cancelled (served by send_jobs_contact).
-- name: cancel_queued_jobs [sqlite]
UPDATE send_jobs SET status = 'cancelled', reason = 'opt_out', updated_at = :now
WHERE id IN (
  SELECT j.id FROM json_each(:rows) r
  JOIN send_jobs j ON j.tenant_id = json_extract(r.value, '$.tenant_id')
                  AND j.contact_id = json_extract(r.value, '$.contact_id')
  WHERE j.status = 'queued')
RETURNING id, campaign_id, contact_id;

-- name: cancel_queued_jobs [postgresql]
UPDATE send_jobs j SET status = 'cancelled', reason = 'opt_out', updated_at = CAST(:now AS TIMESTAMPTZ)
FROM unnest(CAST(:tenant_id AS bigint[]), CAST(:contact_id AS bigint[])) AS u(tenant_id, contact_id)
WHERE j.tenant_id = u.tenant_id AND j.contact_id = u.contact_id AND j.status = 'queued'
RETURNING j.id, j.campaign_id, j.contact_id;

-- Every message recorded (the replies inbox reads them); answers each one's id by its
-- webhook event, which the events' data name. (PostgreSQL: in write_batch.)
-- name: insert_messages [sqlite]
INSERT INTO inbound_messages (tenant_id, contact_id, campaign_id, sending_number_id,
                              webhook_event_id, from_e164, to_number, body, classification,
                              provider_message_id, received_at, created_at)
SELECT json_extract(value, '$.tenant_id'), json_extract(value, '$.contact_id'),
       json_extract(value, '$.campaign_id'), json_extract(value, '$.sending_number_id'),
       json_extract(value, '$.webhook_event_id'), json_extract(value, '$.from_e164'),
       json_extract(value, '$.to_number'), json_extract(value, '$.body'),
       json_extract(value, '$.classification'), json_extract(value, '$.provider_message_id'),
       :now, :now
FROM json_each(:rows)
ORDER BY key
RETURNING id, webhook_event_id;

-- SQLite: the events, replies and outcomes, each one executemany; PostgreSQL: write_batch.
-- Rows: {"tenant_id", "campaign_id", "contact_id", "send_job_id", "type", "data" (JSON
-- text), "now"}.
-- name: insert_events [sqlite]
INSERT INTO events (tenant_id, campaign_id, contact_id, send_job_id, type, occurred_at, data, created_at)
VALUES (:tenant_id, :campaign_id, :contact_id, :send_job_id, :type, :now, :data, :now);

-- Rows: {"tenant_id", "purpose", "to_e164", "payload" (JSON text), "now"}; the columns of
-- outbox.insert_sms.
-- name: insert_outbox [sqlite]
INSERT INTO outbox (tenant_id, kind, purpose, to_e164, payload, available_at, attempts, created_at, updated_at)
VALUES (:tenant_id, 'sms', :purpose, :to_e164, :payload, :now, 0, :now, :now);

-- PostgreSQL: the messages, their events (a message's own event, whose data is NULL here,
-- names the message's id), the replies (outbox, as outbox.insert_sms) and the outcomes, in
-- one statement; answers how many messages it recorded.
-- name: write_batch [postgresql]
WITH messages AS (
  INSERT INTO inbound_messages (tenant_id, contact_id, campaign_id, sending_number_id,
                                webhook_event_id, from_e164, to_number, body, classification,
                                provider_message_id, received_at, created_at)
  SELECT u.tenant_id, u.contact_id, u.campaign_id, u.sending_number_id, u.webhook_event_id,
         u.from_e164, u.to_number, u.body, u.classification, u.provider_message_id,
         CAST(:now AS TIMESTAMPTZ), CAST(:now AS TIMESTAMPTZ)
  FROM unnest(CAST(:tenant_id AS bigint[]), CAST(:contact_id AS bigint[]),
              CAST(:campaign_id AS bigint[]), CAST(:sending_number_id AS bigint[]),
              CAST(:webhook_event_id AS bigint[]), CAST(:from_e164 AS text[]),
              CAST(:to_number AS text[]), CAST(:body AS text[]),
              CAST(:classification AS text[]), CAST(:provider_message_id AS text[]))
    WITH ORDINALITY AS u(tenant_id, contact_id, campaign_id, sending_number_id,
                         webhook_event_id, from_e164, to_number, body, classification,
                         provider_message_id, n)
  ORDER BY u.n
  RETURNING id, webhook_event_id, body
), written_events AS (
  INSERT INTO events (tenant_id, campaign_id, contact_id, send_job_id, type, occurred_at, data, created_at)
  SELECT e.tenant_id, e.campaign_id, e.contact_id, e.send_job_id, e.type, CAST(:now AS TIMESTAMPTZ),
         COALESCE(CAST(e.data AS JSONB),
                  jsonb_build_object('inbound_message_id', m.id, 'body', m.body)),
         CAST(:now AS TIMESTAMPTZ)
  FROM unnest(CAST(:event_tenant_id AS bigint[]), CAST(:event_campaign_id AS bigint[]),
              CAST(:event_contact_id AS bigint[]), CAST(:event_send_job_id AS bigint[]),
              CAST(:event_type AS text[]), CAST(:event_data AS text[]),
              CAST(:event_webhook_event_id AS bigint[]))
    WITH ORDINALITY AS e(tenant_id, campaign_id, contact_id, send_job_id, type, data,
                         webhook_event_id, n)
  LEFT JOIN messages m ON m.webhook_event_id = e.webhook_event_id
  ORDER BY e.n
), written_outbox AS (
  INSERT INTO outbox (tenant_id, kind, purpose, to_e164, payload, available_at, attempts, created_at, updated_at)
  SELECT o.tenant_id, 'sms', o.purpose, o.to_e164, CAST(o.payload AS JSONB),
         CAST(:now AS TIMESTAMPTZ), 0, CAST(:now AS TIMESTAMPTZ), CAST(:now AS TIMESTAMPTZ)
  FROM unnest(CAST(:outbox_tenant_id AS bigint[]), CAST(:outbox_purpose AS text[]),
              CAST(:outbox_to_e164 AS text[]), CAST(:outbox_payload AS text[]))
    WITH ORDINALITY AS o(tenant_id, purpose, to_e164, payload, n)
  ORDER BY o.n
), outcomes AS (
  UPDATE webhook_events w SET outcome = u.outcome
  FROM unnest(CAST(:outcome_id AS bigint[]), CAST(:outcome AS text[])) AS u(id, outcome)
  WHERE w.id = u.id
)
SELECT count(*) FROM messages;
