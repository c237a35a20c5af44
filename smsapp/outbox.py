"""The outbox (pack §3, §7, §10): transactional messages written in the transaction that
decided them (a STOP's confirmation, a HELP reply) and sent later by the dispatcher, on a fast
lane ahead of campaign traffic, at most once per row.

`enqueue_sms` is how every such message enters; the row's `payload` holds what the dispatcher
needs: {"to", "from", "body", "contact_id"?, "campaign_id"?}.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from smsapp.db import Executor

Purpose = Literal["test_send", "optout_confirmation", "optin_confirmation", "help_reply"]


async def enqueue_sms(
    db: Executor,
    *,
    tenant_id: int,
    purpose: Purpose,
    to_e164: str,
    from_: str,
    body: str,
    now: datetime,
    contact_id: int | None = None,
    campaign_id: int | None = None,
) -> int:
    """Queue one transactional SMS; call inside the transaction that decided it."""
    payload = {"to": to_e164, "from": from_, "body": body, "contact_id": contact_id,
               "campaign_id": campaign_id}  # fmt: skip
    return int(
        await db.val(
            "outbox.insert_sms",
            tenant_id=tenant_id,
            purpose=purpose,
            to_e164=to_e164,
            payload=payload,
            now=now,
        )
    )
