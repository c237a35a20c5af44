"""The redirect's hit journal (smsapp/hit_journal.py).

hit_journal_segments: how far the hit writer has folded each segment of the journal into
short_link_hits. Advanced in the same transaction as the hits it folds, so a segment's hits are
folded exactly once, whichever process folds them and however often one crashes.

hit_journal_home: the one row naming this database's journal directory (under the data
directory), written by the first process that starts: journals are kept per database, so that
a data directory used with another database never folds one's hits into the other."""

from yoyo import step

from smsapp.db.migrate import portable

__depends__ = {"0007_link_last_hit"}

steps = [
    step(
        portable(
            """
CREATE TABLE hit_journal_segments (
    id {pk},
    name TEXT NOT NULL UNIQUE,
    folded_bytes BIGINT NOT NULL CHECK (folded_bytes >= 0),
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE hit_journal_home (
    id {pk} CHECK (id = 1),
    name TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
"""
        ),
        portable(
            """
DROP TABLE hit_journal_home;
DROP TABLE hit_journal_segments;
"""
        ),
    )
]
