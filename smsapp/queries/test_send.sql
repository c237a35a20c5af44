-- Test sends (pack §7, §17 POST /api/campaigns/{id}/test): one transactional message now,
-- recorded in the outbox (at most once: the attempt id is committed before the provider call).

-- name: sending_number
SELECT id, phone_e164 FROM sending_numbers
WHERE tenant_id = :tenant_id AND active
ORDER BY kind, id
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
