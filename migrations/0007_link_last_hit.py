"""short_links.last_hit_at: the time of the link's latest hit, kept by the hit writer with its
counters. The burst rule (pack §9) compares each hit with it: read on the locked link row in
the batch's one read, it needs no second statement over short_link_hits (PostgreSQL: a locking
read that waited for another process's batch returns that batch's last_hit_at)."""

from yoyo import step

from smsapp.db.migrate import portable

__depends__ = {"0006_send_loop"}

steps = [
    step(
        portable(
            """
ALTER TABLE short_links ADD COLUMN last_hit_at TIMESTAMPTZ;
UPDATE short_links
SET last_hit_at = (SELECT max(h.at) FROM short_link_hits h WHERE h.short_link_id = short_links.id);
"""
        ),
        portable(
            """
ALTER TABLE short_links DROP COLUMN last_hit_at;
"""
        ),
    )
]
