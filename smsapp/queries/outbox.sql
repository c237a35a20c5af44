-- The outbox (pack §3, §10): transactional messages (opt-out and opt-in confirmations, HELP
-- replies) waiting for the dispatcher, which sends them ahead of campaign traffic.

-- name: insert_sms
INSERT INTO outbox (tenant_id, kind, purpose, to_e164, payload, available_at, attempts, created_at, updated_at)
VALUES (:tenant_id, 'sms', :purpose, :to_e164, :payload, :now, 0, :now, :now)
RETURNING id;
