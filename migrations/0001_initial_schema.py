"""The whole schema of requirements pack §3–§5: every table, enumerated value, key and check.

Later changes come as new migrations; this file is never edited once released.
Conventions: `{pk}` is the surrogate key (see smsapp.db.migrate.portable); times are
TIMESTAMPTZ in UTC (ISO-8601 text on SQLite); money is BIGINT in ten-thousandths of a cent
(1 AUD = 1,000,000); JSON is JSONB (text on SQLite); no column defaults a time: the app's
clock writes every `created_at`, so tests control time.
"""

from yoyo import step

from smsapp.db.migrate import portable

__depends__: set[str] = set()

SCHEMA = """
CREATE TABLE users (
    id {pk},
    email TEXT NOT NULL UNIQUE CHECK (email = lower(email) AND email LIKE '%_@_%'),
    display_name TEXT,
    is_operator BOOLEAN NOT NULL DEFAULT FALSE,
    active BOOLEAN NOT NULL DEFAULT TRUE,
    last_login_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE tenants (
    id {pk},
    name TEXT NOT NULL CHECK (length(name) > 0),
    slug TEXT NOT NULL UNIQUE CHECK (length(slug) > 0),
    timezone TEXT NOT NULL DEFAULT 'Australia/Sydney',
    default_country TEXT NOT NULL DEFAULT 'AU' CHECK (length(default_country) = 2),
    paused BOOLEAN NOT NULL DEFAULT FALSE,
    paused_at TIMESTAMPTZ,
    paused_by BIGINT REFERENCES users (id),
    pause_reason TEXT,
    send_window JSONB NOT NULL DEFAULT '{"mon": [["09:00", "20:00"]], "tue": [["09:00", "20:00"]], "wed": [["09:00", "20:00"]], "thu": [["09:00", "20:00"]], "fri": [["09:00", "20:00"]], "sat": [["09:00", "17:00"]], "sun": []}',
    respect_public_holidays BOOLEAN NOT NULL DEFAULT TRUE,
    rate_limit_per_minute INTEGER NOT NULL DEFAULT 600 CHECK (rate_limit_per_minute > 0),
    cooldown_hours INTEGER NOT NULL DEFAULT 24 CHECK (cooldown_hours >= 0),
    optout_footer TEXT NOT NULL DEFAULT '{tenant_name}: reply STOP to opt out',
    optout_keywords JSONB NOT NULL DEFAULT '[]',
    short_link_base_url TEXT,
    fallback_url TEXT,
    price_book JSONB NOT NULL DEFAULT '{"AU": 55000}',
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE memberships (
    id {pk},
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    tenant_id BIGINT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    role TEXT NOT NULL CHECK (role IN ('admin', 'staff', 'viewer')),
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    UNIQUE (user_id, tenant_id)
);
CREATE INDEX memberships_tenant ON memberships (tenant_id);

CREATE TABLE login_tokens (
    id {pk},
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL UNIQUE,
    expires_at TIMESTAMPTZ NOT NULL,
    used_at TIMESTAMPTZ,
    requested_ip TEXT,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX login_tokens_user ON login_tokens (user_id, created_at);

CREATE TABLE sessions (
    id {pk},
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL UNIQUE,
    tenant_id BIGINT REFERENCES tenants (id) ON DELETE SET NULL,
    ip TEXT,
    user_agent TEXT,
    last_seen_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    revoked_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE api_keys (
    id {pk},
    tenant_id BIGINT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name TEXT NOT NULL CHECK (length(name) > 0),
    role TEXT NOT NULL CHECK (role IN ('admin', 'staff', 'viewer')),
    key_hash TEXT NOT NULL UNIQUE,
    key_prefix TEXT NOT NULL,
    created_by BIGINT REFERENCES users (id) ON DELETE SET NULL,
    last_used_at TIMESTAMPTZ,
    revoked_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id);

CREATE TABLE audit_log (
    id {pk},
    tenant_id BIGINT REFERENCES tenants (id) ON DELETE CASCADE,
    user_id BIGINT REFERENCES users (id) ON DELETE SET NULL,
    api_key_id BIGINT REFERENCES api_keys (id) ON DELETE SET NULL,
    action TEXT NOT NULL,
    target_type TEXT,
    target_id TEXT,
    details JSONB NOT NULL DEFAULT '{}',
    ip TEXT,
    at TIMESTAMPTZ NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX audit_log_tenant_at ON audit_log (tenant_id, at);

CREATE TABLE import_batches (
    id {pk},
    tenant_id BIGINT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    filename TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    mapping JSONB NOT NULL,
    idempotency_key TEXT,
    status TEXT NOT NULL CHECK (status IN ('dry_run', 'committed')),
    row_count INTEGER NOT NULL DEFAULT 0 CHECK (row_count >= 0),
    counts JSONB NOT NULL DEFAULT '{}',
    created_by BIGINT REFERENCES users (id) ON DELETE SET NULL,
    created_by_api_key_id BIGINT REFERENCES api_keys (id) ON DELETE SET NULL,
    consent_confirmed_by BIGINT REFERENCES users (id) ON DELETE SET NULL,
    consent_confirmed_at TIMESTAMPTZ,
    committed_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX import_batches_idempotency_key ON import_batches (tenant_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX import_batches_tenant ON import_batches (tenant_id, created_at);

CREATE TABLE contacts (
    id {pk},
    tenant_id BIGINT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    phone_e164 TEXT,
    email TEXT,
    first_name TEXT,
    last_name TEXT,
    country TEXT,
    state TEXT,
    postcode TEXT,
    timezone TEXT,
    tags JSONB NOT NULL DEFAULT '[]',
    attributes JSONB NOT NULL DEFAULT '{}',
    consent_source TEXT,
    consent_at TIMESTAMPTZ,
    last_import_batch_id BIGINT REFERENCES import_batches (id) ON DELETE SET NULL,
    erased_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    UNIQUE (tenant_id, phone_e164)
);
CREATE INDEX contacts_tenant_email ON contacts (tenant_id, lower(email));

CREATE TABLE import_rows (
    id {pk},
    import_batch_id BIGINT NOT NULL REFERENCES import_batches (id) ON DELETE CASCADE,
    row_number INTEGER NOT NULL CHECK (row_number >= 2),
    data JSONB NOT NULL,
    raw JSONB NOT NULL,
    contact_id BIGINT REFERENCES contacts (id) ON DELETE SET NULL,
    decision TEXT NOT NULL CHECK (decision IN ('invalid_phone', 'duplicate', 'dnc', 'suppressed_by_cooldown', 'update', 'create')),
    reasons JSONB NOT NULL DEFAULT '[]',
    previous_phone_e164 TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    UNIQUE (import_batch_id, row_number)
);

CREATE TABLE do_not_contact (
    id {pk},
    tenant_id BIGINT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    phone_e164 TEXT NOT NULL,
    source TEXT NOT NULL CHECK (source IN ('stop_keyword', 'unsubscribe_link', 'provider', 'manual', 'api')),
    reason TEXT,
    created_by BIGINT REFERENCES users (id) ON DELETE SET NULL,
    created_at TIMESTAMPTZ NOT NULL,
    UNIQUE (tenant_id, phone_e164)
);

CREATE TABLE suppression_rules (
    id {pk},
    tenant_id BIGINT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    phone_e164 TEXT,
    contact_id BIGINT REFERENCES contacts (id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('cooldown', 'manual', 'complaint', 'bounce')),
    reason TEXT,
    expires_at TIMESTAMPTZ,
    created_by BIGINT REFERENCES users (id) ON DELETE SET NULL,
    created_at TIMESTAMPTZ NOT NULL,
    CHECK (phone_e164 IS NOT NULL OR contact_id IS NOT NULL)
);
-- Active rules are `expires_at IS NULL OR expires_at > :now`. A partial index cannot hold
-- now(), so these indexes lead with the lookup key and end with expires_at: the planner
-- seeks (tenant_id, phone_e164) and filters the few rules of that number on expires_at.
CREATE INDEX suppression_rules_active_phone ON suppression_rules (tenant_id, phone_e164, expires_at);
CREATE INDEX suppression_rules_active_contact ON suppression_rules (tenant_id, contact_id, expires_at);

CREATE TABLE message_templates (
    id {pk},
    tenant_id BIGINT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name TEXT NOT NULL CHECK (length(name) > 0),
    body TEXT NOT NULL CHECK (length(body) > 0),
    active BOOLEAN NOT NULL DEFAULT TRUE,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    UNIQUE (tenant_id, name)
);

CREATE TABLE sending_numbers (
    id {pk},
    tenant_id BIGINT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    phone_e164 TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL DEFAULT 'phone' CHECK (kind IN ('phone', 'alphanumeric')),
    registered BOOLEAN NOT NULL DEFAULT FALSE,
    provider TEXT NOT NULL DEFAULT 'sandbox' CHECK (provider IN ('sandbox', 'twilio')),
    warmup_started_on DATE,
    daily_cap INTEGER NOT NULL DEFAULT 10000 CHECK (daily_cap > 0),
    per_minute_limit INTEGER NOT NULL DEFAULT 60 CHECK (per_minute_limit > 0),
    active BOOLEAN NOT NULL DEFAULT TRUE,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    CHECK (kind = 'phone' OR length(phone_e164) <= 11)
);
CREATE INDEX sending_numbers_tenant ON sending_numbers (tenant_id);

CREATE TABLE campaigns (
    id {pk},
    tenant_id BIGINT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name TEXT NOT NULL CHECK (length(name) > 0),
    status TEXT NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'scheduled', 'sending', 'paused', 'completed', 'cancelled')),
    segment JSONB NOT NULL DEFAULT '{}',
    link_url TEXT,
    scheduled_at TIMESTAMPTZ,
    queued_at TIMESTAMPTZ,
    completed_at TIMESTAMPTZ,
    created_by BIGINT REFERENCES users (id) ON DELETE SET NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX campaigns_tenant_status ON campaigns (tenant_id, status);

-- The campaign's templates for rotation, in order (pack §3 "template ids for rotation").
CREATE TABLE campaign_templates (
    id {pk},
    campaign_id BIGINT NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    template_id BIGINT NOT NULL REFERENCES message_templates (id),
    position INTEGER NOT NULL CHECK (position >= 0),
    created_at TIMESTAMPTZ NOT NULL,
    UNIQUE (campaign_id, template_id),
    UNIQUE (campaign_id, position)
);

CREATE TABLE send_jobs (
    id {pk},
    tenant_id BIGINT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    campaign_id BIGINT NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    contact_id BIGINT NOT NULL REFERENCES contacts (id),
    template_id BIGINT REFERENCES message_templates (id),
    sending_number_id BIGINT REFERENCES sending_numbers (id),
    body TEXT NOT NULL,
    parts INTEGER NOT NULL CHECK (parts > 0),
    encoding TEXT NOT NULL CHECK (encoding IN ('GSM-7', 'UCS-2')),
    status TEXT NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'sending', 'sent', 'delivered', 'undelivered', 'failed', 'skipped', 'cancelled', 'unknown')),
    reason TEXT,
    held_by TEXT CHECK (held_by IN ('pause', 'budget', 'price_unknown', 'quiet_hours', 'rate_limit', 'warmup')),
    next_attempt_at TIMESTAMPTZ NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    attempt_id TEXT UNIQUE,
    lease_until TIMESTAMPTZ,
    provider_message_id TEXT,
    error_code TEXT,
    last_error TEXT,
    sent_at TIMESTAMPTZ,
    delivered_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    UNIQUE (tenant_id, campaign_id, contact_id)
);
CREATE INDEX send_jobs_due ON send_jobs (status, next_attempt_at);
CREATE INDEX send_jobs_campaign_status ON send_jobs (campaign_id, status);
CREATE INDEX send_jobs_contact ON send_jobs (tenant_id, contact_id, sent_at);
CREATE INDEX send_jobs_provider_message ON send_jobs (provider_message_id);

CREATE TABLE short_links (
    id {pk},
    token TEXT NOT NULL UNIQUE CHECK (length(token) >= 8),
    tenant_id BIGINT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    campaign_id BIGINT REFERENCES campaigns (id) ON DELETE CASCADE,
    contact_id BIGINT REFERENCES contacts (id),
    send_job_id BIGINT REFERENCES send_jobs (id) ON DELETE SET NULL,
    target_url TEXT NOT NULL CHECK (target_url LIKE 'http://%' OR target_url LIKE 'https://%'),
    expires_at TIMESTAMPTZ NOT NULL,
    first_clicked_at TIMESTAMPTZ,
    clicks_total INTEGER NOT NULL DEFAULT 0 CHECK (clicks_total >= 0),
    clicks_human INTEGER NOT NULL DEFAULT 0 CHECK (clicks_human >= 0 AND clicks_human <= clicks_total),
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX short_links_campaign_contact ON short_links (campaign_id, contact_id)
    WHERE campaign_id IS NOT NULL AND contact_id IS NOT NULL;

CREATE TABLE events (
    id {pk},
    tenant_id BIGINT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    campaign_id BIGINT REFERENCES campaigns (id) ON DELETE CASCADE,
    contact_id BIGINT REFERENCES contacts (id),
    send_job_id BIGINT REFERENCES send_jobs (id) ON DELETE SET NULL,
    type TEXT NOT NULL CHECK (type IN ('IMPORTED', 'QUEUED', 'SKIPPED', 'SENT', 'DELIVERED', 'UNDELIVERED', 'FAILED', 'CLICKED', 'REPLIED', 'OPT_OUT', 'RESUBSCRIBE', 'HELP', 'CANCELLED')),
    occurred_at TIMESTAMPTZ NOT NULL,
    data JSONB NOT NULL DEFAULT '{}',
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX events_campaign_type ON events (tenant_id, campaign_id, type);
CREATE INDEX events_contact_time ON events (tenant_id, contact_id, occurred_at);

CREATE TABLE webhook_events (
    id {pk},
    provider TEXT NOT NULL CHECK (provider IN ('sandbox', 'twilio')),
    provider_event_id TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('status', 'inbound')),
    payload JSONB NOT NULL,
    outcome TEXT,
    received_at TIMESTAMPTZ NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    UNIQUE (provider, provider_event_id)
);

CREATE TABLE budgets (
    id {pk},
    tenant_id BIGINT NOT NULL UNIQUE REFERENCES tenants (id) ON DELETE CASCADE,
    daily_limit BIGINT CHECK (daily_limit >= 0),
    monthly_limit BIGINT CHECK (monthly_limit >= 0),
    alert_threshold_pct INTEGER NOT NULL DEFAULT 80 CHECK (alert_threshold_pct BETWEEN 1 AND 100),
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE outbox (
    id {pk},
    tenant_id BIGINT REFERENCES tenants (id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('sms', 'email', 'alert')),
    payload JSONB NOT NULL,
    available_at TIMESTAMPTZ NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    attempt_id TEXT UNIQUE,
    processed_at TIMESTAMPTZ,
    last_error TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX outbox_due ON outbox (processed_at, available_at);

CREATE TABLE costs (
    id {pk},
    tenant_id BIGINT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    campaign_id BIGINT REFERENCES campaigns (id) ON DELETE SET NULL,
    send_job_id BIGINT REFERENCES send_jobs (id) ON DELETE SET NULL,
    outbox_id BIGINT REFERENCES outbox (id) ON DELETE SET NULL,
    parts INTEGER NOT NULL CHECK (parts > 0),
    unit_price BIGINT CHECK (unit_price >= 0),
    amount BIGINT CHECK (amount >= 0),
    currency TEXT NOT NULL DEFAULT 'AUD',
    source TEXT NOT NULL CHECK (source IN ('estimate', 'provider')),
    created_at TIMESTAMPTZ NOT NULL,
    CHECK ((unit_price IS NULL) = (amount IS NULL))
);
CREATE INDEX costs_tenant_time ON costs (tenant_id, created_at);
CREATE INDEX costs_campaign ON costs (campaign_id);
"""

TABLES = [
    "costs", "outbox", "budgets", "webhook_events", "events", "short_links", "send_jobs",
    "campaign_templates", "campaigns", "sending_numbers", "message_templates",
    "suppression_rules", "do_not_contact", "import_rows", "contacts", "import_batches",
    "audit_log", "api_keys", "sessions", "login_tokens", "memberships", "tenants", "users",
]

steps = [
    step(
        portable(SCHEMA),
        portable("\n".join(f"DROP TABLE {t};" for t in TABLES)),
    )
]
