-- Inbound messages (pack §10): routing, the contact, attribution and the opt-out effects.

-- The inbound `To` names exactly one tenant (sending_numbers.phone_e164 is unique). An
-- inactive number still routes: a STOP sent to a retired number is honoured all the same.
-- name: route
SELECT n.id AS sending_number_id, n.tenant_id, n.phone_e164, t.name AS tenant_name,
       t.default_country, t.optout_keywords
FROM sending_numbers n JOIN tenants t ON t.id = n.tenant_id
WHERE n.phone_e164 = :to_number;

-- The sender as the transaction needs it: on the tenant's list or not, its contact (NULL when
-- there is none), and the campaign a message from it is attributed to (pack §12: the most
-- recent campaign message sent to the contact within the window, 7 days; served by
-- send_jobs_contact (tenant_id, contact_id, sent_at)).
-- name: sender
SELECT EXISTS (SELECT 1 FROM do_not_contact d
               WHERE d.tenant_id = :tenant_id AND d.phone_e164 = :phone_e164) AS on_dnc,
       c.id AS contact_id,
       (SELECT j.campaign_id FROM send_jobs j
        WHERE j.tenant_id = :tenant_id AND j.contact_id = c.id AND j.sent_at >= :since
        ORDER BY j.sent_at DESC, j.id DESC
        LIMIT 1) AS campaign_id
FROM (SELECT 1 AS one) AS sender
LEFT JOIN contacts c ON c.tenant_id = :tenant_id AND c.phone_e164 = :phone_e164;

-- A person we never imported: created without consent, so the contact never enters a
-- campaign (the segment takes consented contacts only). Answers nothing when one exists.
-- name: insert_contact
INSERT INTO contacts (tenant_id, phone_e164, country, consent_source, consent_at, created_at, updated_at)
VALUES (:tenant_id, :phone_e164, :country, NULL, NULL, :now, :now)
ON CONFLICT (tenant_id, phone_e164) DO NOTHING
RETURNING id;

-- name: contact_by_phone
SELECT id FROM contacts WHERE tenant_id = :tenant_id AND phone_e164 = :phone_e164;

-- name: insert_message
INSERT INTO inbound_messages (tenant_id, contact_id, campaign_id, sending_number_id,
                              webhook_event_id, from_e164, to_number, body, classification,
                              provider_message_id, received_at, created_at)
VALUES (:tenant_id, :contact_id, :campaign_id, :sending_number_id, :webhook_event_id,
        :from_e164, :to_number, :body, :classification, :provider_message_id, :now, :now)
RETURNING id;

-- name: cancel_queued_jobs
UPDATE send_jobs SET status = 'cancelled', reason = 'opt_out', updated_at = :now
WHERE tenant_id = :tenant_id AND contact_id = :contact_id AND status = 'queued'
RETURNING id, campaign_id;

-- Never more than one opt-out confirmation per number per tenant in 24 hours; served by
-- outbox_recipient (tenant_id, to_e164, purpose, created_at).
-- name: recent_confirmation
SELECT id FROM outbox
WHERE tenant_id = :tenant_id AND to_e164 = :to_e164 AND purpose = :purpose AND created_at > :since
LIMIT 1;

-- name: insert_event
INSERT INTO events (tenant_id, campaign_id, contact_id, send_job_id, type, occurred_at, data, created_at)
VALUES (:tenant_id, :campaign_id, :contact_id, :send_job_id, :type, :now, :data, :now)
RETURNING id;
