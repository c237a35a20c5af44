-- Sending numbers and alphanumeric sender IDs.

-- name: insert
INSERT INTO sending_numbers (tenant_id, phone_e164, kind, provider, warmup_started_on, created_at, updated_at)
VALUES (:tenant_id, :phone_e164, :kind, :provider, :warmup_started_on, :now, :now)
ON CONFLICT (phone_e164) DO NOTHING
RETURNING id;

-- name: by_phone
SELECT * FROM sending_numbers WHERE phone_e164 = :phone_e164;
