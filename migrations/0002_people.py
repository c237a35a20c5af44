"""People: login requests for rate limiting, and memberships that an admin can deactivate."""

from yoyo import step

from smsapp.db.migrate import portable

__depends__ = {"0001_initial_schema"}

steps = [
    step(
        portable(
            """
CREATE TABLE login_requests (
    id {pk},
    email TEXT NOT NULL,
    ip TEXT,
    at TIMESTAMPTZ NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX login_requests_email_at ON login_requests (email, at);
CREATE INDEX login_requests_ip_at ON login_requests (ip, at);
ALTER TABLE memberships ADD COLUMN active BOOLEAN NOT NULL DEFAULT TRUE;
"""
        ),
        portable(
            """
ALTER TABLE memberships DROP COLUMN active;
DROP TABLE login_requests;
"""
        ),
    )
]
