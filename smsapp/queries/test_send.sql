-- Test sends (pack §7, §17 POST /api/campaigns/{id}/test): one transactional message now,
-- recorded in the outbox (at most once: the attempt id is committed before the provider call).

-- The number a test goes from: the first active one of the kind the campaign's messages go
-- from (queue_builder.campaign_sender_kind: phone numbers whenever the tenant has one).
-- name: sending_number
SELECT id, phone_e164 FROM sending_numbers
WHERE tenant_id = :tenant_id AND active AND kind = :kind
ORDER BY id
LIMIT 1;

-- name: contact_by_phone
SELECT id, first_name, last_name, attributes FROM contacts
WHERE tenant_id = :tenant_id AND phone_e164 = :phone;

-- name: insert_outbox
INSERT INTO outbox (tenant_id, kind, payload, available_at, attempts, attempt_id, created_at, updated_at)
VALUES (:tenant_id, 'sms', :payload, :now, 1, :attempt_id, :now, :now)
RETURNING id;

-- name: outbox_sent
UPDATE outbox SET processed_at = :now, payload = :payload, updated_at = :now WHERE id = :id;

-- name: outbox_failed
UPDATE outbox SET processed_at = :now, last_error = :error, updated_at = :now WHERE id = :id;

-- name: insert_cost
INSERT INTO costs (tenant_id, campaign_id, outbox_id, parts, unit_price, amount, currency, source, created_at)
VALUES (:tenant_id, :campaign_id, :outbox_id, :parts, :unit_price, :amount, 'AUD', 'estimate', :now);

-- The contact's unsubscribe token for the campaign, made when it has none (the queue builder
-- reuses it); a token made meanwhile by another call wins (the unique (campaign, contact)).
-- name: insert_unsubscribe_token
INSERT INTO unsubscribe_tokens (token, tenant_id, contact_id, campaign_id, created_at)
VALUES (:token, :tenant_id, :contact_id, :campaign_id, :now)
ON CONFLICT DO NOTHING;

-- name: unsubscribe_token
SELECT token FROM unsubscribe_tokens WHERE campaign_id = :campaign_id AND contact_id = :contact_id;
