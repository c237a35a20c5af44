"""The forward-only job state machine that status callbacks drive (pack §7, §11). Pure.

A job's status only ever moves up this rank; a callback that would not move it up changes
nothing (a late `sent` after `delivered`):

    queued 0 < sending 1 = unknown 1 < sent 2 < delivered | undelivered | failed 3 (final)

`unknown` (a send the loop could not settle) ranks with `sending`: a callback is exactly what
settles it. `skipped` and `cancelled` jobs were never sent and no callback moves them.

Events: SENT is emitted once per job, by whoever moves it out of `sending` (the sender on the
provider's acceptance, or a callback that comes first); a final status adds its own event.
"""

from __future__ import annotations

from dataclasses import dataclass

RANK: dict[str, int] = {
    "queued": 0,
    "sending": 1,
    "unknown": 1,
    "sent": 2,
    "delivered": 3,
    "undelivered": 3,
    "failed": 3,
}
SENT_RANK = RANK["sent"]

# Provider status words (Twilio's, which the sandbox imitates) → the job status they mean.
# queued/accepted/scheduled/sending: the provider still holds the message, nothing to record.
PROVIDER_STATUSES: dict[str, str | None] = {
    "accepted": None,
    "scheduled": None,
    "queued": None,
    "sending": None,
    "sent": "sent",
    "delivered": "delivered",
    "read": "delivered",  # only channels with read receipts: it was delivered
    "undelivered": "undelivered",
    "failed": "failed",
}
FINAL_EVENTS: dict[str, str] = {
    "delivered": "DELIVERED",
    "undelivered": "UNDELIVERED",
    "failed": "FAILED",
}


@dataclass(frozen=True)
class Transition:
    status: str  # the job's new status
    events: tuple[str, ...]  # in the order they are written


def job_status_for(provider_status: str) -> str | None:
    """The job status a provider's status word means, or None when it means no change (also
    for words we do not know, such as `canceled` or `receiving`)."""
    return PROVIDER_STATUSES.get(provider_status.strip().lower())


def transition(current: str, provider_status: str) -> Transition | None:
    """How a job in `current` moves on a callback saying `provider_status`, or None."""
    target = job_status_for(provider_status)
    if target is None or current not in RANK or RANK[target] <= RANK[current]:
        return None
    events: list[str] = []
    if RANK[current] < SENT_RANK:
        events.append("SENT")  # this callback is what moves the job out of sending
    if target in FINAL_EVENTS:
        events.append(FINAL_EVENTS[target])
    return Transition(target, tuple(events))
