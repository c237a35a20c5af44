"""Every hit on a short link (pack §9): when, whether a bot rule held and which one, the user
agent (first 300 characters), a keyed hash of the IP (never the IP itself) and the method."""

from yoyo import step

from smsapp.db.migrate import portable

__depends__ = {"0004_job_costs"}

steps = [
    step(
        portable(
            """
CREATE TABLE short_link_hits (
    id {pk},
    short_link_id BIGINT NOT NULL REFERENCES short_links (id) ON DELETE CASCADE,
    tenant_id BIGINT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    at TIMESTAMPTZ NOT NULL,
    is_bot BOOLEAN NOT NULL,
    reason TEXT,
    user_agent TEXT NOT NULL CHECK (length(user_agent) <= 300),
    ip_hash TEXT NOT NULL,
    method TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX short_link_hits_link_time ON short_link_hits (short_link_id, at);
"""
        ),
        portable(
            """
DROP INDEX short_link_hits_link_time;
DROP TABLE short_link_hits;
"""
        ),
    )
]
