"""The queue builder (pack §7 "At enqueue"): one job per consented contact of the segment.

Set-based and in chunks: each chunk of contacts is read with one query, its lists (DNC,
suppression, cooldown, existing jobs, short links) with one query each, and its jobs written in
one bulk statement, inside one short transaction — so a 100k-contact campaign is a few dozen
round trips and never holds SQLite's writer for long. Queueing twice adds nothing (the unique
key (tenant, campaign, contact) and ON CONFLICT DO NOTHING), also when two calls race: on
PostgreSQL each chunk locks the campaign row first.

DNC and suppressed contacts get a job created already `skipped` with the reason, so the report
accounts for every contact. Pause, budget and the time gates never drop a job here: they hold
it at send time.

Sender kind (pack §10): a tenant's campaign traffic goes from phone numbers whenever it has an
active one; only a tenant with no active phone number but an active alphanumeric sender ID gets
jobs with sender_kind 'alphanumeric'. Nobody can reply STOP to those, so their footer carries
the unsubscribe link `{PUBLIC_BASE_URL}/u/{token}` instead (templating.footer_for_sender). Any
body carrying `{optout_link}` gets one token per (campaign, contact), made in bulk like the
short links; the link is rendered in full into the body, so the part count counts it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from smsapp.clock import Clock
from smsapp.config import Settings
from smsapp.db import Database, Executor, Row
from smsapp.dnc import numbers_on_dnc
from smsapp.encoding import count_parts
from smsapp.fields import Conflict, NotFound
from smsapp.rotation import template_for
from smsapp.short_links import TTL, base_url, new_token, short_url
from smsapp.suppression import active_suppressed_numbers
from smsapp.templating import OPTOUT_LINK, Recipient, SenderKind, render, with_footer
from smsapp.unsubscribe import new_token as new_unsubscribe_token
from smsapp.unsubscribe import unsubscribe_url

CHUNK = 5_000
PARALLEL_CHUNKS = 3
UNFINISHED_AFTER = timedelta(minutes=5)


@dataclass
class QueueResult:
    campaign_id: int
    added: int = 0  # jobs this call created (queued or skipped); 0 when queued before


@dataclass(frozen=True)
class Plan:
    """What every job of this campaign shares."""

    tenant: Row
    campaign: Row
    templates: dict[int, str]  # template id → body with the footer already applied
    template_ids: list[int]
    link_base: str
    tag: str | None
    sender_kind: SenderKind
    public_base: str  # unsubscribe links live on the app's own host
    uses_optout_link: bool  # some body carries {optout_link}: one token per contact


def _segment_tag(campaign: Row, override: dict[str, str] | None) -> str | None:
    segment = override if override is not None else (campaign["segment"] or {})
    tag = segment.get("tag")
    return str(tag) if tag else None


async def _plan(
    db: Executor, settings: Settings, tenant_id: int, campaign: Row, segment: dict[str, str] | None
) -> Plan:
    tenant = await db.one("campaigns.tenant_for_queue", tenant_id=tenant_id)
    assert tenant is not None
    templates = await db.all("campaigns.campaign_templates", campaign_id=campaign["id"])
    if not templates:
        raise Conflict("the campaign has no templates", code="no_templates")
    sender_kind = await campaign_sender_kind(db, tenant_id)
    placeholder = "{" + OPTOUT_LINK + "}"
    bodies = {
        # The link placeholder is kept in the footer: `render` fills it per contact.
        t["id"]: with_footer(t["body"], footer=tenant["optout_footer"], tenant_name=tenant["name"],
                             optout_link=placeholder, sender_kind=sender_kind)
        for t in templates
    }  # fmt: skip
    return Plan(
        tenant,
        campaign,
        bodies,
        [t["id"] for t in templates],
        base_url(settings, tenant["short_link_base_url"]),
        _segment_tag(campaign, segment),
        sender_kind,
        settings.public_base_url.rstrip("/"),
        any(placeholder in body for body in bodies.values()),
    )


async def campaign_sender_kind(db: Executor, tenant_id: int) -> SenderKind:
    """'phone' when the tenant has an active phone number (or no number at all: the sender
    then holds the jobs until one is added); 'alphanumeric' only when its active senders are
    all alphanumeric."""
    kinds = {r["kind"] for r in await db.all("campaigns.active_sender_kinds", tenant_id=tenant_id)}
    return "alphanumeric" if kinds == {"alphanumeric"} else "phone"


def unit_price(tenant: Row, country: str | None) -> int | None:
    """The tenant's price per segment (units) for a destination country; None when unknown."""
    book: dict[str, int] = tenant["price_book"] or {}
    price = book.get((country or "AU").upper())
    return int(price) if price is not None else None


async def _chunk(tx: Executor, plan: Plan, contacts: list[Row], now: datetime) -> int:
    """Jobs for one page of contacts; answers how many jobs this call created."""
    tenant_id, campaign_id = plan.tenant["id"], plan.campaign["id"]
    low, high = contacts[0]["id"], contacts[-1]["id"]
    existing = {
        r["contact_id"]
        for r in await tx.all("campaigns.existing_jobs", tenant_id=tenant_id,
                              campaign_id=campaign_id, low=low, high=high)
    }  # fmt: skip
    fresh = [c for c in contacts if c["id"] not in existing]
    if not fresh:
        return 0
    phones = [c["phone_e164"] for c in fresh]
    dnc = await numbers_on_dnc(tx, tenant_id=tenant_id, phones=phones)
    suppressed = await active_suppressed_numbers(tx, tenant_id, phones, now)
    recent: set[int] = set()
    if plan.tenant["cooldown_hours"]:
        since = now - timedelta(hours=plan.tenant["cooldown_hours"])
        recent = {
            r["contact_id"]
            for r in await tx.all("campaigns.recently_messaged", tenant_id=tenant_id,
                                  since=since, low=low, high=high)
        }  # fmt: skip
    # A contact may already have its link (made singly through the API): reuse that token.
    tokens: dict[int, str] = {}
    new_links: list[dict[str, Any]] = []
    if plan.campaign["link_url"]:
        tokens = {
            r["contact_id"]: r["token"]
            for r in await tx.all("campaigns.link_tokens", campaign_id=campaign_id, low=low,
                                  high=high)
        }  # fmt: skip
        for c in fresh:
            if c["id"] not in tokens:
                tokens[c["id"]] = new_token()
                new_links.append({
                    "token": tokens[c["id"]], "tenant_id": tenant_id, "campaign_id": campaign_id,
                    "contact_id": c["id"], "target_url": plan.campaign["link_url"],
                    "expires_at": now + TTL, "now": now,
                })  # fmt: skip
    # Unsubscribe tokens likewise: an existing one (an earlier run) is reused.
    optout_tokens: dict[int, str] = {}
    new_optout_tokens: list[dict[str, Any]] = []
    if plan.uses_optout_link:
        optout_tokens = {
            r["contact_id"]: r["token"]
            for r in await tx.all("campaigns.unsubscribe_tokens", campaign_id=campaign_id,
                                  low=low, high=high)
        }  # fmt: skip
        for c in fresh:
            if c["id"] not in optout_tokens:
                optout_tokens[c["id"]] = new_unsubscribe_token()
                new_optout_tokens.append({
                    "token": optout_tokens[c["id"]], "tenant_id": tenant_id,
                    "campaign_id": campaign_id, "contact_id": c["id"], "now": now,
                })  # fmt: skip
    rows: list[dict[str, Any]] = []
    for c in fresh:
        template_id = template_for(c["id"], plan.template_ids)
        token = tokens.get(c["id"])
        optout_token = optout_tokens.get(c["id"])
        body = render(
            plan.templates[template_id],
            Recipient(c["first_name"], c["last_name"], c["attributes"] or {}),
            link=short_url(plan.link_base, token) if token else "",
            optout_link=unsubscribe_url(plan.public_base, optout_token) if optout_token else "",
        )
        encoding, parts = count_parts(body)
        reason = ("dnc" if c["phone_e164"] in dnc
                  else "suppression" if c["phone_e164"] in suppressed or c["id"] in recent
                  else None)  # fmt: skip
        price = unit_price(plan.tenant, c["country"])
        rows.append({
            "tenant_id": tenant_id, "campaign_id": campaign_id, "contact_id": c["id"],
            "template_id": template_id, "body": body, "parts": parts, "encoding": encoding,
            "status": "skipped" if reason else "queued", "reason": reason, "unit_price": price,
            "cost_estimate": None if price is None else price * parts,
            "sender_kind": plan.sender_kind, "now": now,
        })  # fmt: skip
    if tx.dialect == "postgresql":
        # One statement inserts the jobs and the QUEUED/SKIPPED events of exactly the rows it
        # inserted (RETURNING), so concurrent queue calls never double an event.
        added = await tx.bulk("campaigns.insert_jobs_with_events", rows)
    else:
        # SQLite has one writer: the events of this chunk are the jobs above the high-water mark.
        after_id = await tx.val("campaigns.max_job_id")
        await tx.bulk("campaigns.insert_jobs", rows)
        added = await tx.run("campaigns.job_events", campaign_id=campaign_id, after_id=after_id,
                             now=now)  # fmt: skip
    # New links point at their job (found by the job's unique key as each link is written).
    await tx.bulk("campaigns.insert_links", new_links)
    await tx.bulk("campaigns.insert_unsubscribe_tokens", new_optout_tokens)
    return added


async def queue_campaign(
    db: Database,
    clock: Clock,
    settings: Settings,
    *,
    tenant_id: int,
    campaign_id: int,
    segment: dict[str, str] | None = None,
) -> QueueResult:
    """Create the campaign's jobs (idempotent) and mark it sending. Pages of contacts are read
    in order and processed in their own short transactions, several at once on PostgreSQL
    (the server works on another core meanwhile); SQLite has one writer, so one at a time."""
    now = clock.now()
    async with db.transaction() as tx:
        campaign = await tx.one("campaigns.lock_campaign", tenant_id=tenant_id, id=campaign_id)
        if campaign is None:
            raise NotFound("campaign")
        if campaign["status"] in ("completed", "cancelled"):
            raise Conflict(f"a {campaign['status']} campaign cannot be queued", code="bad_status")
        plan = await _plan(tx, settings, tenant_id, campaign, segment)
        await tx.run("campaigns.mark_queued", tenant_id=tenant_id, id=campaign_id, now=now)
    result = QueueResult(campaign_id)
    slots = asyncio.Semaphore(PARALLEL_CHUNKS if db.dialect == "postgresql" else 1)

    async def process(contacts: list[Row]) -> None:
        async with slots:
            async with db.transaction() as tx:
                added = await _chunk(tx, plan, contacts, now)
            result.added += added  # after the await: `+=` across an await would lose updates

    tasks: list[asyncio.Task[None]] = []
    after = 0
    try:
        while True:
            contacts = await db.all("campaigns.segment_contacts", tenant_id=tenant_id,
                                    tag=plan.tag, after=after, limit=CHUNK)  # fmt: skip
            if contacts:
                await slots.acquire()  # read ahead by at most the number of slots
                slots.release()
                tasks.append(asyncio.create_task(process(contacts)))
            if len(contacts) < CHUNK:
                break
            after = contacts[-1]["id"]
        await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    await db.run("campaigns.finish_queue", tenant_id=tenant_id, id=campaign_id, now=clock.now())
    return result


async def fire_due_schedules(db: Database, clock: Clock, settings: Settings) -> list[int]:
    """Queue every scheduled campaign whose time has come. Each is claimed with a conditional
    UPDATE first, so a schedule fires once even when several processes poll."""
    fired = []
    now = clock.now()
    for due in await db.all("campaigns.due_scheduled", now=now):
        claimed = await db.run("campaigns.claim_scheduled", id=due["id"], now=now)
        if claimed:
            await queue_campaign(
                db, clock, settings, tenant_id=due["tenant_id"], campaign_id=due["id"]
            )
            fired.append(due["id"])
    # A queue run cut short (a crash, a restart) is finished by the next tick: queueing is
    # idempotent, and queued_at is only set once a run has gone through every contact.
    for stale in await db.all("campaigns.unfinished_queues", before=now - UNFINISHED_AFTER):
        await queue_campaign(
            db, clock, settings, tenant_id=stale["tenant_id"], campaign_id=stale["id"]
        )
    return fired
