-- Webhook replay protection (pack §11): one row per provider event, unique on
-- (provider, provider_event_id); `outcome` says what handling it did.

-- Answers the new row's id, or nothing when the event was recorded before.
-- name: insert
INSERT INTO webhook_events (provider, provider_event_id, kind, payload, outcome, received_at, created_at)
VALUES (:provider, :provider_event_id, :kind, :payload, :outcome, :now, :now)
ON CONFLICT (provider, provider_event_id) DO NOTHING
RETURNING id;

-- name: set_outcome
UPDATE webhook_events SET outcome = :outcome WHERE id = :id;
