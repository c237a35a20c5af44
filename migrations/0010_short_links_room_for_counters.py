"""PostgreSQL: short_links pages filled to 70 %, leaving room for the counters' updates.

Every fold of the hit journal updates the counters of each link it has hits for, so a link that
is being clicked is updated about twice a second. PostgreSQL writes an updated row as a new
version of it; when the new version fits on the same page and no indexed column changed (the
counters and hit times are in no index), the update is a heap-only tuple (HOT) update: no new
entry in any of the table's three indexes, and the old version is reclaimed in passing. With
pages filled to the brim (the default, fillfactor 100) almost none fit: 16–23 % of the counter
updates were HOT in the benchmark's folds (1,000 links, 3,000 hits a fold); at 70 %, 88–89 %,
and a fold cost 25–29 µs a hit instead of 36–37 (docs/click-integrity.md).

The setting applies to pages written from now on (a new campaign's links); the rows already
stored keep their pages until the table is rewritten (`VACUUM FULL short_links` in a quiet
moment, which locks the table while it runs), and links old enough to be full-paged are rarely
clicked. SQLite rewrites a row in place and has no such setting: nothing to do there."""

from yoyo import step

from smsapp.db.migrate import per_dialect

__depends__ = {"0009_hits_tenant_without_fk"}

steps = [
    step(
        per_dialect(sqlite="", postgresql="ALTER TABLE short_links SET (fillfactor = 70);"),
        per_dialect(sqlite="", postgresql="ALTER TABLE short_links RESET (fillfactor);"),
    )
]
