"""short_link_hits indexed by link alone: (short_link_id) in place of (short_link_id, at).

A fold writes each link's new hits together, and each hit's index entry goes to its link's
place in the index; with `at` in the key (32 bytes of text on SQLite) the index was about three
times the size, and every fold rewrote a page of it for each link it touched. No query reads
hits by time within a link: the index serves deleting a link's hits with it (the foreign key's
cascade) and reading one link's hits, which come in id order, the order they were folded in.
`smsapp bench fold` (docs/schema.md): SQLite's fold 8–24 % cheaper a hit, the bare insert of
the same hits 45 % cheaper; PostgreSQL's fold about the same (0–8 %: its key was 16 bytes).

On PostgreSQL, CREATE INDEX holds off writes to the table while it builds (seconds for a few
million hits; folds wait, the journal keeps the hits meanwhile); yoyo applies a step in a
transaction, where CONCURRENTLY cannot run."""

from yoyo import step

from smsapp.db.migrate import portable

__depends__ = {"0011_indexes_for_campaign_links_and_job_costs"}

steps = [
    step(
        portable(
            """
CREATE INDEX short_link_hits_link ON short_link_hits (short_link_id);
DROP INDEX short_link_hits_link_time;
"""
        ),
        portable(
            """
CREATE INDEX short_link_hits_link_time ON short_link_hits (short_link_id, at);
DROP INDEX short_link_hits_link;
"""
        ),
    )
]
