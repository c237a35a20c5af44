-- The replies inbox: what people texted the tenant, newest first (inbound_messages rows are
-- written by smsapp/inbound.py). Served by inbound_messages_tenant_time and, with a contact,
-- inbound_messages_contact. The DNC state is the contact's current one.

-- name: messages
SELECT m.id, m.contact_id, m.campaign_id, m.from_e164, m.to_number, m.body, m.classification,
       m.received_at, c.first_name, c.last_name, c.phone_e164 AS contact_phone, c.erased_at,
       g.name AS campaign_name,
       EXISTS (SELECT 1 FROM do_not_contact d
               WHERE d.tenant_id = m.tenant_id
                 AND d.phone_e164 = COALESCE(c.phone_e164, m.from_e164)) AS do_not_contact
FROM inbound_messages m
LEFT JOIN contacts c ON c.id = m.contact_id AND c.tenant_id = m.tenant_id
LEFT JOIN campaigns g ON g.id = m.campaign_id AND g.tenant_id = m.tenant_id
WHERE m.tenant_id = :tenant_id
  AND (CAST(:classification AS TEXT) IS NULL OR m.classification = :classification)
  AND (CAST(:contact_id AS BIGINT) IS NULL OR m.contact_id = :contact_id)
ORDER BY m.received_at DESC, m.id DESC
LIMIT :limit OFFSET :offset;

-- name: counts
SELECT m.classification, count(*) AS n
FROM inbound_messages m
WHERE m.tenant_id = :tenant_id
  AND (CAST(:contact_id AS BIGINT) IS NULL OR m.contact_id = :contact_id)
GROUP BY m.classification;

-- A contact's messages, oldest first, for its timeline.
-- name: of_contact
SELECT id, body, classification, received_at, campaign_id
FROM inbound_messages
WHERE tenant_id = :tenant_id AND contact_id = :contact_id
ORDER BY received_at, id;
