"""Two indexes that the app's queries had no use of and needed.

`short_links_campaign` (campaign_id, id): a campaign's links — the links page (in id order, a
page at a time), its totals, and the queue builder linking each job to its link. The unique
index on (campaign_id, contact_id) cannot serve them: it is partial (both columns set), and
`campaign_id = ?` does not imply that contact_id is set, so both backends read every link of
every campaign instead.

`costs_send_job` (send_job_id): a job's reservation is released (`sender.release_reservation`)
each time its attempt fails or is put back for a retry, inside the send loop's transaction;
without the index that is a read of every cost ever recorded, once per failed message — in a
provider outage, once for every message tried.

tests/test_query_plans.py reads the plan of every named query and fails on a table read
whole that is not declared there as small. On PostgreSQL, CREATE INDEX holds off writes to the
table while it builds (seconds for a few million rows); yoyo applies a step in a transaction,
where CONCURRENTLY cannot run."""

from yoyo import step

from smsapp.db.migrate import portable

__depends__ = {"0010_short_links_room_for_counters"}

steps = [
    step(
        portable(
            """
CREATE INDEX short_links_campaign ON short_links (campaign_id, id);
CREATE INDEX costs_send_job ON costs (send_job_id);
"""
        ),
        portable(
            """
DROP INDEX costs_send_job;
DROP INDEX short_links_campaign;
"""
        ),
    )
]
