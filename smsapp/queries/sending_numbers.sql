-- A tenant's sending numbers and alphanumeric sender IDs, as the API and admin page see them.

-- name: list
SELECT * FROM sending_numbers WHERE tenant_id = :tenant_id ORDER BY id;

-- name: get
SELECT * FROM sending_numbers WHERE id = :id AND tenant_id = :tenant_id;

-- name: get_for_update [postgresql]
SELECT * FROM sending_numbers WHERE id = :id AND tenant_id = :tenant_id FOR UPDATE;

-- name: get_for_update [sqlite]
SELECT * FROM sending_numbers WHERE id = :id AND tenant_id = :tenant_id;

-- Answers the new row, or nothing when the number or sender ID is taken (by anyone).
-- name: insert
INSERT INTO sending_numbers (tenant_id, phone_e164, kind, provider, warmup_started_on, created_at, updated_at)
VALUES (:tenant_id, :phone_e164, :kind, :provider, :warmup_started_on, :now, :now)
ON CONFLICT (phone_e164) DO NOTHING
RETURNING *;

-- A sender ID differing only in case is the same name on a handset.
-- name: sender_id_holder
SELECT id, tenant_id, phone_e164 FROM sending_numbers
WHERE kind = 'alphanumeric' AND lower(phone_e164) = lower(:sender_id)
ORDER BY id
LIMIT 1;

-- name: holder
SELECT id, tenant_id FROM sending_numbers WHERE phone_e164 = :phone_e164;

-- name: update
UPDATE sending_numbers SET
    provider = :provider,
    registered = :registered,
    warmup_started_on = :warmup_started_on,
    daily_cap = :daily_cap,
    per_minute_limit = :per_minute_limit,
    active = :active,
    updated_at = :now
WHERE id = :id AND tenant_id = :tenant_id;
