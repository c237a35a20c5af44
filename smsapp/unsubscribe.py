"""Unsubscribe links (pack §10): `/u/{token}` in campaign messages from alphanumeric senders,
which nobody can reply STOP to. No aiohttp here.

A token is 16 characters of [A-Za-z0-9] from `secrets` (~95 bits), one per (campaign,
contact), made in bulk by the queue builder; it carries no personal data, and it is the only
credential the page needs. GET shows a confirm page and changes nothing (link scanners and
previews fetch links); only POST unsubscribes: the number goes on the do-not-contact list
(source `unsubscribe_link`, taking the stop lock first), an OPT_OUT event is attributed to the
token's campaign, the contact's queued jobs are cancelled, and the token's used_at is set. A
second POST changes nothing and shows the same done page.
"""

from __future__ import annotations

import re
import secrets
import string
from dataclasses import dataclass
from typing import Literal

from smsapp.clock import Clock
from smsapp.db import Database, Row
from smsapp.dnc import add_to_dnc

ALPHABET = string.ascii_letters + string.digits
TOKEN_LENGTH = 16
TOKEN_SHAPE = re.compile(r"[A-Za-z0-9]{16,64}")


def new_token() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(TOKEN_LENGTH))


def unsubscribe_url(public_base_url: str, token: str) -> str:
    return f"{public_base_url.rstrip('/')}/u/{token}"


async def find_token(db: Database, token: str) -> Row | None:
    """The token with its tenant's name, the contact's number and whether that number is on
    the do-not-contact list; None for a token that does not exist (or cannot)."""
    if not TOKEN_SHAPE.fullmatch(token):
        return None
    return await db.one("unsubscribe.by_token", token=token)


@dataclass(frozen=True)
class Unsubscribed:
    outcome: Literal["unsubscribed", "already", "no_number"]
    tenant_name: str
    phone_e164: str | None
    cancelled_jobs: int = 0


async def unsubscribe(db: Database, clock: Clock, token: str) -> Unsubscribed | None:
    """Honour the link (None for an unknown token). Safe to repeat and to race: the stop lock
    serialises a tenant's opt-outs, and only the call that puts the number on the list writes
    the OPT_OUT event."""
    found = await find_token(db, token)
    if found is None:
        return None
    phone = found["phone_e164"]
    if phone is None:  # an erased contact: no number left to put on the list
        return Unsubscribed("no_number", found["tenant_name"], None)
    tenant_id, contact_id, campaign_id = (
        found["tenant_id"],
        found["contact_id"],
        found["campaign_id"],
    )
    async with db.transaction() as tx:
        # First statement: the stop lock (inside add_to_dnc). From the moment this commits, no
        # campaign message to the number starts (pack §7).
        _, created = await add_to_dnc(
            tx,
            clock,
            tenant_id=tenant_id,
            phone_e164=phone,
            source="unsubscribe_link",
            reason=f"unsubscribe link of campaign {campaign_id}" if campaign_id else None,
            created_by=None,
        )
        now = clock.now()
        await tx.run("unsubscribe.mark_used", id=found["id"], now=now)
        cancelled = await tx.all(
            "unsubscribe.cancel_queued_jobs", tenant_id=tenant_id, contact_id=contact_id, now=now
        )
        for job in cancelled:
            await tx.run(
                "unsubscribe.insert_event", tenant_id=tenant_id, campaign_id=job["campaign_id"],
                contact_id=contact_id, send_job_id=job["id"], type="CANCELLED",
                data={"reason": "opt_out"}, now=now,
            )  # fmt: skip
        if created:
            # One OPT_OUT per opt-out: a number already on the list (an earlier STOP or an
            # earlier click) is not counted again in the campaign's report.
            await tx.run(
                "unsubscribe.insert_event", tenant_id=tenant_id, campaign_id=campaign_id,
                contact_id=contact_id, send_job_id=None, type="OPT_OUT",
                data={"source": "unsubscribe_link"}, now=now,
            )  # fmt: skip
    return Unsubscribed(
        "unsubscribed" if created else "already", found["tenant_name"], phone, len(cancelled)
    )
