-- The import admin pages (smsapp/routes/import_pages.py). Every query is scoped by tenant.

-- name: batch
SELECT b.id, b.tenant_id, b.filename, b.status, b.row_count, b.counts, b.mapping, b.headers,
       b.created_at, b.committed_at, b.consent_confirmed_at,
       u.email AS created_by_email, k.name AS created_by_key, c.email AS confirmed_by_email
FROM import_batches b
LEFT JOIN users u ON u.id = b.created_by
LEFT JOIN api_keys k ON k.id = b.created_by_api_key_id
LEFT JOIN users c ON c.id = b.consent_confirmed_by
WHERE b.id = :id AND b.tenant_id = :tenant_id;

-- A few rows' original cells, to show what each column holds next to the mapping form.
-- name: sample_rows
SELECT row_number, raw FROM import_rows
WHERE import_batch_id = :id
ORDER BY row_number
LIMIT :limit;
