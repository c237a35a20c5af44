-- The tenant's do-not-contact list: one row per number (unique per tenant).

-- Answers the new row, or nothing when the number is already on the list.
-- name: insert
INSERT INTO do_not_contact (tenant_id, phone_e164, source, reason, created_by, created_at)
VALUES (:tenant_id, :phone_e164, :source, :reason, :created_by, :now)
ON CONFLICT (tenant_id, phone_e164) DO NOTHING
RETURNING id, phone_e164, source, reason, created_by, created_at;

-- name: get
SELECT id, phone_e164, source, reason, created_by, created_at
FROM do_not_contact
WHERE tenant_id = :tenant_id AND phone_e164 = :phone_e164;

-- name: delete
DELETE FROM do_not_contact
WHERE tenant_id = :tenant_id AND phone_e164 = :phone_e164
RETURNING id, phone_e164, source, reason, created_by, created_at;

-- name: list
SELECT id, phone_e164, source, reason, created_by, created_at
FROM do_not_contact
WHERE tenant_id = :tenant_id
ORDER BY created_at DESC, id DESC
LIMIT :limit OFFSET :offset;

-- name: count
SELECT count(*) FROM do_not_contact WHERE tenant_id = :tenant_id;

-- name: export
SELECT phone_e164, source, reason, created_at
FROM do_not_contact
WHERE tenant_id = :tenant_id
ORDER BY created_at, id;

-- The given numbers that are on the list, in one query.
-- name: numbers_on_list [sqlite]
SELECT phone_e164 FROM do_not_contact
WHERE tenant_id = :tenant_id AND phone_e164 IN (SELECT value FROM json_each(:phones));

-- name: numbers_on_list [postgresql]
SELECT phone_e164 FROM do_not_contact
WHERE tenant_id = :tenant_id AND phone_e164 = ANY(:phones);
