"""short_link_hits.tenant_id without a foreign key of its own.

A hit's tenant is its link's, copied by the hit writer's fold from the link it joins (the only
writer of hits), and a hit goes with its link (short_link_id: ON DELETE CASCADE), so with its
tenant too (short_links.tenant_id: ON DELETE CASCADE). The second foreign key checked nothing
the first did not, at a cost on the redirect's write path: one more lookup per hit written, up
to a quarter of PostgreSQL's fold in three paired runs (docs/click-integrity.md). The column
stays, for reading one tenant's hits without a join.

SQLite changes a table's constraints only by building it again: the new table is filled from
the old one, which is then dropped, and its index made again."""

from yoyo import step

from smsapp.db.migrate import per_dialect

__depends__ = {"0008_hit_journal"}


def _sqlite_rebuild(tenant_fk: str) -> str:
    return f"""
CREATE TABLE short_link_hits_rebuilt (
    id {{pk}},
    short_link_id BIGINT NOT NULL REFERENCES short_links (id) ON DELETE CASCADE,
    tenant_id BIGINT NOT NULL{tenant_fk},
    at TIMESTAMPTZ NOT NULL,
    is_bot BOOLEAN NOT NULL,
    reason TEXT,
    user_agent TEXT NOT NULL CHECK (length(user_agent) <= 300),
    ip_hash TEXT NOT NULL,
    method TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
INSERT INTO short_link_hits_rebuilt (id, short_link_id, tenant_id, at, is_bot, reason,
                                     user_agent, ip_hash, method, created_at)
SELECT id, short_link_id, tenant_id, at, is_bot, reason, user_agent, ip_hash, method, created_at
FROM short_link_hits;
DROP TABLE short_link_hits;
ALTER TABLE short_link_hits_rebuilt RENAME TO short_link_hits;
CREATE INDEX short_link_hits_link_time ON short_link_hits (short_link_id, at);
"""


steps = [
    step(
        per_dialect(
            sqlite=_sqlite_rebuild(""),
            postgresql="""
ALTER TABLE short_link_hits DROP CONSTRAINT short_link_hits_tenant_id_fkey;
""",
        ),
        per_dialect(
            sqlite=_sqlite_rebuild(" REFERENCES tenants (id) ON DELETE CASCADE"),
            postgresql="""
ALTER TABLE short_link_hits ADD CONSTRAINT short_link_hits_tenant_id_fkey
    FOREIGN KEY (tenant_id) REFERENCES tenants (id) ON DELETE CASCADE;
""",
        ),
    )
]
