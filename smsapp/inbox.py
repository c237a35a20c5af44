"""The replies inbox (pack §10): every message people texted the tenant, newest first, with the
campaign it is attributed to, its classification (opt-out, opt-in, help, reply) and the
contact's current do-not-contact state. Filters: classification and contact. No aiohttp here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from smsapp.contacts import get_contact
from smsapp.db import Executor, Row
from smsapp.fields import InvalidInput, iso

CLASSIFICATIONS = ("opt_out", "opt_in", "help", "reply")
LABELS = {"opt_out": "opt-out", "opt_in": "opt-in", "help": "help", "reply": "reply"}


@dataclass(frozen=True)
class Filters:
    classification: str | None = None
    contact_id: int | None = None


def parse_filters(classification: object, contact_id: object) -> Filters:
    """Query-string values (None or "" for no filter); InvalidInput for anything else."""
    wanted = str(classification).strip().lower().replace("-", "_") if classification else ""
    if wanted and wanted not in CLASSIFICATIONS:
        raise InvalidInput(
            f"classification must be one of {', '.join(CLASSIFICATIONS)}, not {classification!r}",
            field="classification",
        )
    raw = str(contact_id).strip() if contact_id is not None else ""
    if raw and (not raw.isdigit() or len(raw) > 18):
        raise InvalidInput(f"contact_id must be a contact id, not {raw!r}", field="contact_id")
    return Filters(wanted or None, int(raw) if raw else None)


async def list_messages(
    db: Executor, *, tenant_id: int, filters: Filters, limit: int, offset: int
) -> tuple[list[Row], int, dict[str, int]]:
    """One page of messages, the number matching, and the count per classification (for the
    contact when one is chosen). A contact of another tenant is NotFound (pack §2)."""
    if filters.contact_id is not None:
        await get_contact(db, tenant_id=tenant_id, contact_id=filters.contact_id)
    rows = await db.all(
        "inbox.messages",
        tenant_id=tenant_id,
        classification=filters.classification,
        contact_id=filters.contact_id,
        limit=limit,
        offset=offset,
    )
    counted = await db.all("inbox.counts", tenant_id=tenant_id, contact_id=filters.contact_id)
    counts = {c: 0 for c in CLASSIFICATIONS}
    counts.update({r["classification"]: int(r["n"]) for r in counted})
    total = counts[filters.classification] if filters.classification else sum(counts.values())
    return rows, total, counts


def contact_name(row: Row) -> str:
    if row["erased_at"] is not None:
        return f"Erased contact #{row['contact_id']}"
    name = " ".join(n for n in (row["first_name"], row["last_name"]) if n)
    return name or row["contact_phone"] or row["from_e164"]


def message_json(row: Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "received_at": iso(row["received_at"]),
        "classification": row["classification"],
        "body": row["body"],
        "from": row["from_e164"],
        "to": row["to_number"],
        "contact_id": row["contact_id"],
        "contact_name": contact_name(row) if row["contact_id"] is not None else None,
        "do_not_contact": bool(row["do_not_contact"]),
        "campaign_id": row["campaign_id"],
        "campaign_name": row["campaign_name"],
    }
