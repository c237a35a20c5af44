"""Imports keep the file's header row, so the rejected-rows CSV repeats the original columns."""

from yoyo import step

from smsapp.db.migrate import portable

__depends__ = {"0002_people"}

steps = [
    step(
        portable("ALTER TABLE import_batches ADD COLUMN headers JSONB NOT NULL DEFAULT '[]';"),
        portable("ALTER TABLE import_batches DROP COLUMN headers;"),
    )
]
