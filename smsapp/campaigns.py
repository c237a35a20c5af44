"""Templates and campaigns: authoring, status changes and what a campaign page shows
(pack §7, §17). The queue builder lives in `smsapp.queue_builder`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from smsapp.clock import Clock
from smsapp.db import Database, Executor, Row
from smsapp.fields import Conflict, InvalidInput, NotFound, check_fields, parse_instant
from smsapp.held_jobs import release_held
from smsapp.templating import LINK, TemplateError, check_syntax, placeholders, unknown_placeholders

MAX_TEMPLATE_LENGTH = 1600
STATUSES = ("draft", "scheduled", "sending", "paused", "completed", "cancelled")
EDITABLE = ("draft", "scheduled")
# The fields a campaign's create and update take.
CAMPAIGN_FIELDS = ("name", "template_ids", "segment", "link_url", "scheduled_at")


# --- templates -----------------------------------------------------------------------------


def _template_fields(body: dict[str, Any]) -> tuple[str, str]:
    name, text = body.get("name"), body.get("body")
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise InvalidInput("a template needs a name of at most 200 characters")
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput("a template needs a body")
    if len(text) > MAX_TEMPLATE_LENGTH:
        raise InvalidInput(
            f"a template body is at most {MAX_TEMPLATE_LENGTH} characters", code="too_long"
        )
    try:
        check_syntax(text)
    except TemplateError as exc:
        raise InvalidInput(str(exc), code="bad_template") from None
    return name.strip(), text


async def create_template(
    db: Database, clock: Clock, *, tenant_id: int, body: dict[str, Any]
) -> Row:
    check_fields(body, ("name", "body"))
    name, text = _template_fields(body)
    try:
        row = await db.one(
            "campaigns.insert_template", tenant_id=tenant_id, name=name, body=text, now=clock.now()
        )
    except Exception as exc:
        from smsapp.db import is_unique_violation

        if is_unique_violation(exc):
            raise Conflict(f"a template named {name!r} exists already", code="duplicate") from None
        raise
    assert row is not None
    return row


async def update_template(
    db: Database, clock: Clock, *, tenant_id: int, template_id: int, body: dict[str, Any]
) -> Row:
    check_fields(body, ("name", "body", "active"))
    current = await get_template(db, tenant_id, template_id)
    merged = {"name": body.get("name", current["name"]), "body": body.get("body", current["body"])}
    name, text = _template_fields(merged)
    active = body.get("active", current["active"])
    if not isinstance(active, bool):
        raise InvalidInput("active must be true or false")
    await db.run(
        "campaigns.update_template",
        tenant_id=tenant_id,
        id=template_id,
        name=name,
        body=text,
        active=active,
        now=clock.now(),
    )
    return await get_template(db, tenant_id, template_id)


async def get_template(db: Executor, tenant_id: int, template_id: int) -> Row:
    row = await db.one("campaigns.template", tenant_id=tenant_id, id=template_id)
    if row is None:
        raise NotFound("template")
    return row


async def attribute_names(db: Executor, tenant_id: int) -> set[str]:
    return {r["name"] for r in await db.all("campaigns.attribute_names", tenant_id=tenant_id)}


# --- campaigns -----------------------------------------------------------------------------


@dataclass(frozen=True)
class CampaignInput:
    name: str
    template_ids: list[int]
    segment: dict[str, str]
    link_url: str | None
    scheduled_at: datetime | None


def check_link_url(value: object) -> str | None:
    """Only http(s) targets set by staff (pack §9: no javascript:, data:, or open redirects)."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > 2000:
        raise InvalidInput("link_url must be an http(s) URL")
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(
            "link_url must be an absolute http:// or https:// URL", code="bad_link_url"
        )
    return value.strip()


def check_segment(value: object) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or set(value) - {"tag"}:
        raise InvalidInput('segment must be {} (all contacts) or {"tag": "…"}')
    tag = value.get("tag")
    if tag is None:
        return {}
    if not isinstance(tag, str) or not tag.strip() or len(tag) > 100:
        raise InvalidInput("segment.tag must be a tag name")
    return {"tag": tag.strip()}


async def _checked_input(
    db: Executor, clock: Clock, tenant_id: int, tz: str, body: dict[str, Any], current: Row | None
) -> CampaignInput:
    def pick(key: str, default: Any) -> Any:
        return body[key] if key in body else default

    name = pick("name", current["name"] if current else None)
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise InvalidInput("a campaign needs a name of at most 200 characters")
    template_ids = pick("template_ids", None)
    if template_ids is None and current is not None:
        template_ids = [
            t["id"] for t in await db.all("campaigns.campaign_templates", campaign_id=current["id"])
        ]
    if (
        not isinstance(template_ids, list)
        or not template_ids
        or not all(isinstance(t, int) and not isinstance(t, bool) for t in template_ids)
        or len(set(template_ids)) != len(template_ids)
        or len(template_ids) > 20
    ):
        raise InvalidInput("template_ids must list 1 to 20 distinct template ids")
    link_url = check_link_url(pick("link_url", current["link_url"] if current else None))
    segment = check_segment(pick("segment", current["segment"] if current else None))
    scheduled_at = parse_instant(
        pick(
            "scheduled_at",
            current["scheduled_at"].isoformat() if current and current["scheduled_at"] else None,
        ),
        "scheduled_at",
        tz,
    )
    if scheduled_at is not None and scheduled_at <= clock.now() and "scheduled_at" in body:
        raise InvalidInput("scheduled_at must be in the future")
    attributes = await attribute_names(db, tenant_id)
    uses_link = False
    for template_id in template_ids:
        template = await db.one("campaigns.template", tenant_id=tenant_id, id=template_id)
        if template is None:
            raise InvalidInput(f"template {template_id} does not exist", code="unknown_template")
        if not template["active"]:
            raise InvalidInput(
                f"template {template['name']!r} is archived", code="inactive_template"
            )
        unknown = unknown_placeholders(template["body"], attributes)
        if unknown:
            raise InvalidInput(
                f"template {template['name']!r} uses unknown placeholders: "
                + ", ".join("{" + u + "}" for u in unknown)
                + "; use {first_name}, {last_name}, {link} or a contact attribute",
                code="unknown_placeholder",
                placeholders=unknown,
            )
        uses_link = uses_link or LINK in placeholders(template["body"])
    if uses_link and link_url is None:
        raise InvalidInput("a template uses {link}: set link_url", code="link_url_required")
    return CampaignInput(name.strip(), template_ids, segment, link_url, scheduled_at)


async def _tenant_tz(db: Executor, tenant_id: int) -> str:
    tenant = await db.one("tenancy.tenant_by_id", id=tenant_id)
    assert tenant is not None
    return str(tenant["timezone"])


async def create_campaign(
    db: Database, clock: Clock, *, tenant_id: int, body: dict[str, Any], created_by: int | None
) -> int:
    check_fields(body, CAMPAIGN_FIELDS)
    tz = await _tenant_tz(db, tenant_id)
    data = await _checked_input(db, clock, tenant_id, tz, body, None)
    now = clock.now()
    async with db.transaction() as tx:
        campaign_id: int = await tx.val(
            "campaigns.insert_campaign",
            tenant_id=tenant_id,
            name=data.name,
            status="scheduled" if data.scheduled_at else "draft",
            segment=data.segment,
            link_url=data.link_url,
            scheduled_at=data.scheduled_at,
            created_by=created_by,
            now=now,
        )
        await _insert_templates(tx, campaign_id, data.template_ids, now)
    return campaign_id


async def _insert_templates(
    tx: Executor, campaign_id: int, template_ids: list[int], now: datetime
) -> None:
    """The campaign's templates, in the order given (the rotation's order)."""
    for position, template_id in enumerate(template_ids):
        await tx.run(
            "campaigns.insert_campaign_template",
            campaign_id=campaign_id,
            template_id=template_id,
            position=position,
            now=now,
        )


async def get_campaign(db: Executor, tenant_id: int, campaign_id: int) -> Row:
    row = await db.one("campaigns.campaign", tenant_id=tenant_id, id=campaign_id)
    if row is None:
        raise NotFound("campaign")
    return row


async def update_campaign(
    db: Database, clock: Clock, *, tenant_id: int, campaign_id: int, body: dict[str, Any]
) -> None:
    check_fields(body, CAMPAIGN_FIELDS)
    current = await get_campaign(db, tenant_id, campaign_id)
    if current["status"] not in EDITABLE:
        raise Conflict(f"a {current['status']} campaign cannot be edited", code="not_editable")
    data = await _checked_input(
        db, clock, tenant_id, await _tenant_tz(db, tenant_id), body, current
    )
    now = clock.now()
    async with db.transaction() as tx:
        changed = await tx.run(
            "campaigns.update_campaign",
            tenant_id=tenant_id,
            id=campaign_id,
            name=data.name,
            segment=data.segment,
            link_url=data.link_url,
            scheduled_at=data.scheduled_at,
            status="scheduled" if data.scheduled_at else "draft",
            now=now,
        )
        if not changed:
            raise Conflict(
                "the campaign was queued meanwhile and cannot be edited", code="not_editable"
            )
        if "template_ids" in body:
            await tx.run("campaigns.delete_campaign_templates", campaign_id=campaign_id)
            await _insert_templates(tx, campaign_id, data.template_ids, now)


TRANSITIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "cancel": (("draft", "scheduled", "sending", "paused"), "cancelled"),
    "pause": (("sending",), "paused"),
    "resume": (("paused",), "sending"),
}


async def change_status(
    db: Database, clock: Clock, *, tenant_id: int, campaign_id: int, action: str
) -> str:
    """cancel / pause / resume; answers the new status. Cancelling also cancels queued jobs."""
    allowed, target = TRANSITIONS[action]
    now = clock.now()
    async with db.transaction() as tx:
        if action != "resume":
            # The stop rule (pack §7): no job of this campaign starts once this has answered.
            await tx.stop_lock(tenant_id)
        campaign = await tx.one("campaigns.lock_campaign", tenant_id=tenant_id, id=campaign_id)
        if campaign is None:
            raise NotFound("campaign")
        if campaign["status"] == target:
            return target
        if campaign["status"] not in allowed:
            raise Conflict(f"a {campaign['status']} campaign cannot {action}", code="bad_status")
        await tx.run(
            "campaigns.set_status",
            tenant_id=tenant_id,
            id=campaign_id,
            status=target,
            from_status=campaign["status"],
            now=now,
        )
        if action == "resume":
            await release_held(tx, tenant_id=tenant_id, gates=("pause",), now=now,
                               campaign_id=campaign_id)  # fmt: skip
        if action == "cancel":
            await tx.run(
                "campaigns.cancel_queued_jobs",
                tenant_id=tenant_id,
                campaign_id=campaign_id,
                now=now,
            )
    return target


async def campaign_summary(db: Executor, tenant_id: int, campaign_id: int) -> dict[str, Any]:
    """The campaign with its templates, job counts by status and what holds waiting jobs."""
    from smsapp.fields import iso
    from smsapp.money import units_to_cents

    campaign = await get_campaign(db, tenant_id, campaign_id)
    templates = await db.all("campaigns.campaign_templates", campaign_id=campaign_id)
    counts = {
        r["status"]: r["n"] for r in await db.all("campaigns.job_counts", campaign_id=campaign_id)
    }
    held = {
        r["held_by"]: {"count": r["n"], "until": iso(r["until"])}
        for r in await db.all("campaigns.held_counts", campaign_id=campaign_id)
    }
    projected = await db.one("campaigns.projected_cost", campaign_id=campaign_id)
    assert projected is not None
    return {
        "id": campaign["id"],
        "name": campaign["name"],
        "status": campaign["status"],
        "segment": campaign["segment"],
        "link_url": campaign["link_url"],
        "scheduled_at": iso(campaign["scheduled_at"]),
        "queued_at": iso(campaign["queued_at"]),
        "created_at": iso(campaign["created_at"]),
        "updated_at": iso(campaign["updated_at"]),
        "template_ids": [t["id"] for t in templates],
        "templates": [{"id": t["id"], "name": t["name"]} for t in templates],
        "jobs": counts,
        "held": held,
        "projected_cost": units_to_cents(projected["cost"] or 0),
        "unpriced_jobs": projected["unpriced"] or 0,
    }


async def queue_outlook(
    db: Executor, now: datetime, tenant_id: int, campaign_id: int, *, added: int
) -> dict[str, Any]:
    """The queue answer (pack §7, §17): how many jobs, what they cost, how much fits today's
    and this month's budget, and why jobs may wait. Nothing is dropped for pause or budget."""
    from smsapp.budgets import headroom
    from smsapp.money import cents_to_units, units_to_cents

    summary = await campaign_summary(db, tenant_id, campaign_id)
    cost = cents_to_units(summary["projected_cost"])
    room = await headroom(db, tenant_id, now)
    tenant = await db.one("tenancy.tenant_by_id", id=tenant_id)
    assert tenant is not None
    waiting = []
    if tenant["paused"]:
        waiting.append("tenant_paused")
    if summary["status"] == "paused":
        waiting.append("campaign_paused")
    if room.remaining_today is not None and cost > room.remaining_today:
        waiting.append("over_daily_budget")
    if room.remaining_month is not None and cost > room.remaining_month:
        waiting.append("over_monthly_budget")
    if summary["unpriced_jobs"] and room.has_budget:
        waiting.append("price_unknown")

    def fits(remaining: int | None) -> int | float | None:
        return None if remaining is None else units_to_cents(min(cost, remaining))

    skipped = await db.all("campaigns.skipped_reasons", campaign_id=campaign_id)
    return {
        "id": campaign_id,
        "status": summary["status"],
        "jobs": summary["jobs"].get("queued", 0),
        "added": added,
        "skipped": summary["jobs"].get("skipped", 0),
        "skipped_reasons": {r["reason"]: r["n"] for r in skipped},
        "projected_cost": summary["projected_cost"],
        "unpriced_jobs": summary["unpriced_jobs"],
        "fits_budget_today": fits(room.remaining_today),
        "fits_budget_month": fits(room.remaining_month),
        "waiting": waiting,
    }
