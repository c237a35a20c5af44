-- The template and campaign admin pages (smsapp/routes/template_pages.py, campaign_pages.py).
-- Every query is scoped by tenant.

-- The tags of the contacts a campaign can reach (consented, not erased, with a number), with
-- how many carry each: the segment choices of the campaign form.
-- name: tag_counts [sqlite]
SELECT t.value AS tag, count(*) AS n
FROM contacts c, json_each(c.tags) t
WHERE c.tenant_id = :tenant_id AND c.consent_at IS NOT NULL AND c.erased_at IS NULL
  AND c.phone_e164 IS NOT NULL
GROUP BY t.value
ORDER BY t.value
LIMIT :limit;

-- name: tag_counts [postgresql]
SELECT t.tag, count(*) AS n
FROM contacts c CROSS JOIN LATERAL jsonb_array_elements_text(c.tags) AS t(tag)
WHERE c.tenant_id = :tenant_id AND c.consent_at IS NOT NULL AND c.erased_at IS NULL
  AND c.phone_e164 IS NOT NULL
GROUP BY t.tag
ORDER BY t.tag
LIMIT :limit;

-- The contacts of a segment (all, or one tag) that a queue run would take: the same filter
-- as campaigns.segment_contacts.
-- name: segment_size [sqlite]
SELECT count(*) FROM contacts c
WHERE c.tenant_id = :tenant_id AND c.consent_at IS NOT NULL AND c.erased_at IS NULL
  AND c.phone_e164 IS NOT NULL
  AND (CAST(:tag AS TEXT) IS NULL OR EXISTS (SELECT 1 FROM json_each(c.tags) t WHERE t.value = :tag));

-- name: segment_size [postgresql]
SELECT count(*) FROM contacts c
WHERE c.tenant_id = :tenant_id AND c.consent_at IS NOT NULL AND c.erased_at IS NULL
  AND c.phone_e164 IS NOT NULL
  AND (CAST(:tag AS TEXT) IS NULL OR c.tags @> jsonb_build_array(CAST(:tag AS TEXT)));

-- The campaigns that use a template, newest first.
-- name: template_campaigns
SELECT c.id, c.name, c.status, c.created_at
FROM campaign_templates ct JOIN campaigns c ON c.id = ct.campaign_id
WHERE ct.template_id = :template_id AND c.tenant_id = :tenant_id
ORDER BY c.created_at DESC, c.id DESC
LIMIT 50;

-- name: creator
SELECT email FROM users WHERE id = :user_id;
