-- The demo tenant's starter content (smsapp seed); every insert is a no-op the second time.

-- name: insert_template
INSERT INTO message_templates (tenant_id, name, body, created_at, updated_at)
VALUES (:tenant_id, :name, :body, :now, :now)
ON CONFLICT (tenant_id, name) DO NOTHING;
