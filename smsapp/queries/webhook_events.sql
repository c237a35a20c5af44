-- Webhook replay protection (pack §11): one row per provider event, unique on
-- (provider, provider_event_id); `outcome` says what handling it did.

-- Answers the new row's id, or nothing when the event was recorded before.
-- name: insert
INSERT INTO webhook_events (provider, provider_event_id, kind, message_id, payload, outcome,
                            received_at, created_at)
VALUES (:provider, :provider_event_id, :kind, :message_id, :payload, :outcome, :now, :now)
ON CONFLICT (provider, provider_event_id) DO NOTHING
RETURNING id;

-- RETURNING: one trip to SQLite's writer thread through `val` (a plain `run` takes two).
-- name: set_outcome
UPDATE webhook_events SET outcome = :outcome WHERE id = :id RETURNING id;

-- Many events at once (the status writer's batches), in the order given (sorted by the
-- caller, so two batches that share a key never wait on each other in opposite orders).
-- Answers the rows it inserted; an event recorded before answers nothing.
-- name: claim_many [sqlite]
INSERT INTO webhook_events (provider, provider_event_id, kind, message_id, payload, outcome,
                            received_at, created_at)
SELECT json_extract(value, '$.provider'), json_extract(value, '$.event_id'), :kind,
       json_extract(value, '$.message_id'), json_extract(value, '$.payload'), NULL, :now, :now
FROM json_each(:rows) WHERE true
ON CONFLICT (provider, provider_event_id) DO NOTHING
RETURNING id, provider, provider_event_id;

-- name: claim_many [postgresql]
INSERT INTO webhook_events (provider, provider_event_id, kind, message_id, payload, outcome,
                            received_at, created_at)
SELECT u.provider, u.event_id, CAST(:kind AS TEXT), u.message_id, CAST(u.payload AS JSONB), NULL,
       CAST(:now AS TIMESTAMPTZ), CAST(:now AS TIMESTAMPTZ)
FROM unnest(CAST(:provider AS text[]), CAST(:event_id AS text[]), CAST(:message_id AS text[]),
            CAST(:payload AS text[]))
  WITH ORDINALITY AS u(provider, event_id, message_id, payload, n)
ORDER BY u.n
ON CONFLICT (provider, provider_event_id) DO NOTHING
RETURNING id, provider, provider_event_id;

-- Rows: {"id", "outcome"} (executemany; PostgreSQL writes outcomes in
-- delivery_status.write_batch).
-- name: set_outcomes [sqlite]
UPDATE webhook_events SET outcome = :outcome WHERE id = :id;
