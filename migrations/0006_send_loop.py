"""What the send loop, inbound messages and the outbox need (pack §7, §10, §13):

- send_windows: segments sent per tenant and per sending number in each UTC minute (rate
  limits) and each local day (warm-up caps), shared by every process through the database;
- send_jobs.sender_kind: whether the job's body was rendered for a phone number (reply STOP)
  or an alphanumeric sender (an unsubscribe link), so the sender picks a number of that kind;
- inbound_messages: every message a person sent us, classified, for the replies inbox;
- unsubscribe_tokens: the `/u/{token}` links of campaigns sent from alphanumeric senders;
- outbox.purpose / to_e164 / provider_message_id: what an outbound row is for and to whom,
  so "one confirmation per number per 24 h" is an indexed read.
"""

from yoyo import step

from smsapp.db.migrate import portable

__depends__ = {"0005_click_hits"}

steps = [
    step(
        portable(
            """
CREATE TABLE send_windows (
    id {pk},
    tenant_id BIGINT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    scope TEXT NOT NULL CHECK (scope IN ('tenant', 'number')),
    scope_id BIGINT NOT NULL,
    period TEXT NOT NULL CHECK (period IN ('minute', 'day')),
    starts_at TIMESTAMPTZ NOT NULL,
    segments INTEGER NOT NULL DEFAULT 0 CHECK (segments >= 0),
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    UNIQUE (scope, scope_id, period, starts_at)
);
CREATE INDEX send_windows_age ON send_windows (starts_at);

ALTER TABLE send_jobs ADD COLUMN sender_kind TEXT NOT NULL DEFAULT 'phone' CHECK (sender_kind IN ('phone', 'alphanumeric'));
CREATE INDEX send_jobs_attempt_lease ON send_jobs (status, lease_until);
CREATE INDEX send_jobs_tenant_due ON send_jobs (tenant_id, status, next_attempt_at);

CREATE TABLE inbound_messages (
    id {pk},
    tenant_id BIGINT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    contact_id BIGINT REFERENCES contacts (id),
    campaign_id BIGINT REFERENCES campaigns (id) ON DELETE SET NULL,
    sending_number_id BIGINT REFERENCES sending_numbers (id) ON DELETE SET NULL,
    webhook_event_id BIGINT REFERENCES webhook_events (id) ON DELETE SET NULL,
    from_e164 TEXT NOT NULL,
    to_number TEXT NOT NULL,
    body TEXT NOT NULL,
    classification TEXT NOT NULL CHECK (classification IN ('opt_out', 'opt_in', 'help', 'reply')),
    provider_message_id TEXT,
    received_at TIMESTAMPTZ NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX inbound_messages_tenant_time ON inbound_messages (tenant_id, received_at);
CREATE INDEX inbound_messages_contact ON inbound_messages (tenant_id, contact_id, received_at);

CREATE TABLE unsubscribe_tokens (
    id {pk},
    token TEXT NOT NULL UNIQUE CHECK (length(token) >= 16),
    tenant_id BIGINT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    contact_id BIGINT NOT NULL REFERENCES contacts (id),
    campaign_id BIGINT REFERENCES campaigns (id) ON DELETE SET NULL,
    used_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX unsubscribe_tokens_campaign_contact ON unsubscribe_tokens (campaign_id, contact_id)
    WHERE campaign_id IS NOT NULL;

ALTER TABLE outbox ADD COLUMN purpose TEXT;
ALTER TABLE outbox ADD COLUMN to_e164 TEXT;
ALTER TABLE outbox ADD COLUMN provider_message_id TEXT;
CREATE INDEX outbox_recipient ON outbox (tenant_id, to_e164, purpose, created_at);
"""
        ),
        portable(
            """
DROP INDEX outbox_recipient;
ALTER TABLE outbox DROP COLUMN provider_message_id;
ALTER TABLE outbox DROP COLUMN to_e164;
ALTER TABLE outbox DROP COLUMN purpose;
DROP TABLE unsubscribe_tokens;
DROP TABLE inbound_messages;
DROP INDEX send_jobs_tenant_due;
DROP INDEX send_jobs_attempt_lease;
ALTER TABLE send_jobs DROP COLUMN sender_kind;
DROP TABLE send_windows;
"""
        ),
    )
]
