"""webhook_events.message_id: the provider's id of the message a callback is about (a status
callback's message, an inbound message), indexed, so that a contact's erasure finds the
callbacks of its messages — which hold the person's number (`To`, `From`) and an inbound
text's words as received — without reading every callback's payload.

Rows stored before the migration get it from their payload (`MessageSid` for Twilio,
`message_id` for the sandbox). On PostgreSQL, CREATE INDEX holds off writes to the table
while it builds; yoyo applies a step in a transaction, where CONCURRENTLY cannot run."""

from yoyo import step

from smsapp.db.migrate import portable

__depends__ = {"0012_hits_index_by_link"}

steps = [
    step(
        portable(
            """
ALTER TABLE webhook_events ADD COLUMN message_id TEXT;
UPDATE webhook_events
SET message_id = coalesce(payload ->> 'MessageSid', payload ->> 'message_id');
CREATE INDEX webhook_events_message ON webhook_events (message_id);
"""
        ),
        portable(
            """
DROP INDEX webhook_events_message;
ALTER TABLE webhook_events DROP COLUMN message_id;
"""
        ),
    )
]
