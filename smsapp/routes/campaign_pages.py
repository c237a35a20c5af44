"""Campaign admin pages (pack §7, §17):

    GET  /admin/campaigns                 the campaigns: status, jobs, created; "New campaign"
    GET  /admin/campaigns/new             the form: name, templates, segment, link, schedule
    POST /admin/campaigns                 create
    GET  /admin/campaigns/{id}            the campaign: settings, job counts by status, what
                                          holds waiting jobs until when, the queue answer, a
                                          message rendered for a sample contact, actions
    GET  /admin/campaigns/{id}/links      the campaign's short links and their clicks, 100 a page
    GET  /admin/campaigns/{id}/edit       edit, while draft or scheduled
    POST /admin/campaigns/{id}/edit
    POST /admin/campaigns/{id}/queue      queue now
    POST /admin/campaigns/{id}/pause      pause / resume
    POST /admin/campaigns/{id}/resume
    GET  /admin/campaigns/{id}/cancel     the confirmation step
    POST /admin/campaigns/{id}/cancel

Each write calls the same domain function as the JSON API (smsapp.campaigns,
smsapp.queue_builder) and writes the same audit entry. Without JavaScript the campaign page
shows the counts as of its rendering; static/campaign.js refreshes them from
GET /api/campaigns/{id} every 5 seconds.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from aiohttp import web

from smsapp.access import CALLER, Access, route
from smsapp.campaigns import (
    EDITABLE,
    TRANSITIONS,
    campaign_summary,
    get_campaign,
    queue_outlook,
)
from smsapp.db import Row
from smsapp.encoding import analyse
from smsapp.errors import path_int
from smsapp.fields import DomainError, InvalidInput
from smsapp.hit_writer import HIT_WRITER
from smsapp.keys import CLOCK, DB, SETTINGS
from smsapp.money import cents_to_units, dollars_text
from smsapp.pages import flash, redirect, render
from smsapp.queue_builder import campaign_sender_kind
from smsapp.routes.campaigns import (
    change_status_audited,
    create_campaign_audited,
    queue_audited,
    update_campaign_audited,
)
from smsapp.routes.common import PAGE_SIZE, as_api_error, page_number
from smsapp.template_preview import char_label, preview, rendered_for
from smsapp.templating import Recipient

LOCAL_MINUTE = "%Y-%m-%dT%H:%M"  # what <input type="datetime-local"> sends
TAG_LIMIT = 500
POLL_SECONDS = 5

JOB_STATUSES: tuple[tuple[str, str], ...] = (
    ("queued", "Waiting to send"),
    ("sending", "Sending"),
    ("sent", "Sent"),
    ("delivered", "Delivered"),
    ("undelivered", "Undelivered"),
    ("failed", "Failed"),
    ("unknown", "Unknown"),
    ("skipped", "Skipped"),
    ("cancelled", "Cancelled"),
)
GATES: dict[str, str] = {
    "pause": "Paused (the account or this campaign)",
    "budget": "Over the budget",
    "price_unknown": "No price for the destination",
    "quiet_hours": "Outside the send window",
    "rate_limit": "Rate limit",
    "warmup": "Sending number warm-up",
}
SKIP_REASONS: dict[str, str] = {
    "dnc": "on the do-not-contact list",
    "suppression": "under a suppression rule or the cooldown",
}
WAITING: dict[str, str] = {
    "tenant_paused": "Sending is paused for the whole account (see Settings): nothing leaves "
    "until it is resumed.",
    "campaign_paused": "This campaign is paused: its messages wait until it is resumed.",
    "over_daily_budget": "The projected cost is more than what is left of today's budget: "
    "the rest waits for the next day.",
    "over_monthly_budget": "The projected cost is more than what is left of this month's "
    "budget: the rest waits for the next month.",
    "price_unknown": "Some messages go to a country without a price: with a budget set they "
    "wait until a price is set in Settings.",
}
STATUS_BADGES: dict[str, str] = {
    "draft": "",
    "scheduled": "info",
    "sending": "good",
    "paused": "warn",
    "completed": "good",
    "cancelled": "bad",
}
# Which actions a campaign of each status offers (the buttons; the domain checks again).
ACTIONS: dict[str, tuple[str, ...]] = {
    "queue": ("draft", "scheduled"),
    "edit": EDITABLE,
    "pause": TRANSITIONS["pause"][0],
    "resume": TRANSITIONS["resume"][0],
    "cancel": TRANSITIONS["cancel"][0],
}


# --- helpers ---------------------------------------------------------------------------------


async def _tenant(request: web.Request) -> Row:
    tenant_id = request[CALLER].require_tenant()
    tenant = await request.app[DB].one("tenancy.tenant_by_id", id=tenant_id)
    assert tenant is not None
    return tenant


def local_time(value: datetime | None, tz: str) -> str:
    """A stored time as the tenant's wall clock: `2026-03-02 09:30 AEDT`."""
    if value is None:
        return ""
    return value.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M %Z")


def money(cents: int | float | None) -> str:
    """Cents from the API's answers as dollars for people: 5.5 → "$0.055"."""
    return "" if cents is None else dollars_text(cents_to_units(cents))


def segment_text(segment: dict[str, Any] | None) -> str:
    tag = (segment or {}).get("tag")
    return f"Contacts tagged “{tag}”" if tag else "All consented contacts"


async def _campaign_or_404(request: web.Request, tenant_id: int) -> Row:
    campaign_id = path_int(request, "campaign_id", "campaign")
    try:
        return await get_campaign(request.app[DB], tenant_id, campaign_id)
    except DomainError as exc:
        raise as_api_error(exc) from None


def _page_helpers(tz: str) -> dict[str, Any]:
    return {
        "local": lambda value: local_time(value, tz),
        "money": money,
        "segment_text": segment_text,
        "status_badges": STATUS_BADGES,
        "char_label": char_label,
        "tz": tz,
    }


# --- the list --------------------------------------------------------------------------------


async def campaigns_page(request: web.Request) -> web.StreamResponse:
    tenant = await _tenant(request)
    page = page_number(request)
    rows = await request.app[DB].all(
        "campaigns.campaigns",
        tenant_id=tenant["id"],
        limit=PAGE_SIZE + 1,
        offset=(page - 1) * PAGE_SIZE,
    )
    return await render(
        request,
        "campaigns.html",
        {
            "campaigns": rows[:PAGE_SIZE],
            "page": page,
            "has_more": len(rows) > PAGE_SIZE,
            "query_for": lambda n: urlencode({"page": n}),
            **_page_helpers(tenant["timezone"]),
        },
    )


# --- the form --------------------------------------------------------------------------------


def _empty_values() -> dict[str, Any]:
    return {"name": "", "template_ids": [], "tag": "", "link_url": "", "scheduled_at": ""}


def _values_of(campaign: Row, template_ids: list[int], tz: str) -> dict[str, Any]:
    scheduled = campaign["scheduled_at"]
    return {
        "name": campaign["name"],
        "template_ids": [str(t) for t in template_ids],
        "tag": (campaign["segment"] or {}).get("tag", ""),
        "link_url": campaign["link_url"] or "",
        "scheduled_at": scheduled.astimezone(ZoneInfo(tz)).strftime(LOCAL_MINUTE)
        if scheduled
        else "",
    }


async def _posted(request: web.Request) -> dict[str, Any]:
    form = await request.post()
    return {
        "name": str(form.get("name") or ""),
        "template_ids": [str(v) for v in form.getall("template_ids", [])],
        "tag": str(form.get("tag") or "").strip(),
        "link_url": str(form.get("link_url") or "").strip(),
        "scheduled_at": str(form.get("scheduled_at") or "").strip(),
    }


def _body(values: dict[str, Any]) -> dict[str, Any]:
    """The form as an API body, so that the same checks apply."""
    if not values["template_ids"]:
        raise InvalidInput("Choose at least one template.", field="template_ids")
    if not all(v.isdigit() and len(v) < 19 for v in values["template_ids"]):
        raise InvalidInput("Choose the templates from the list.", field="template_ids")
    return {
        "name": values["name"],
        "template_ids": [int(v) for v in values["template_ids"]],
        "segment": {"tag": values["tag"]} if values["tag"] else {},
        "link_url": values["link_url"] or None,
        "scheduled_at": values["scheduled_at"] or None,
    }


async def _form(
    request: web.Request,
    *,
    values: dict[str, Any],
    campaign: Row | None = None,
    error: str | None = None,
    status: int = 200,
) -> web.Response:
    tenant = await _tenant(request)
    db, settings = request.app[DB], request.app[SETTINGS]
    kind = await campaign_sender_kind(db, tenant["id"])
    rows = await db.all("campaigns.templates", tenant_id=tenant["id"])
    chosen = set(values["template_ids"])
    # Archived templates cannot be chosen anew; one the campaign already has is still shown.
    templates = [
        {"row": r, "preview": preview(settings, tenant, r["body"], kind)}
        for r in rows
        if r["active"] or str(r["id"]) in chosen
    ]
    tags = await db.all("campaign_pages.tag_counts", tenant_id=tenant["id"], limit=TAG_LIMIT)
    everyone = await db.val("campaign_pages.segment_size", tenant_id=tenant["id"], tag=None)
    return await render(
        request,
        "campaign_form.html",
        {
            "campaign": campaign,
            "values": values,
            "error": error,
            "templates": templates,
            "tags": tags,
            "known_tag": any(t["tag"] == values["tag"] for t in tags),
            "everyone": everyone,
            **_page_helpers(tenant["timezone"]),
        },
        status=status,
    )


async def new_campaign_page(request: web.Request) -> web.StreamResponse:
    values = _empty_values()
    chosen = request.query.get("template", "")
    if chosen.isdigit():
        values["template_ids"] = [chosen]
    return await _form(request, values=values)


async def create_from_form(request: web.Request) -> web.StreamResponse:
    tenant_id = request[CALLER].require_tenant()
    values = await _posted(request)
    try:
        campaign_id = await create_campaign_audited(request, tenant_id, _body(values))
    except DomainError as exc:
        return await _form(request, values=values, error=exc.message, status=exc.status)
    response = redirect(f"/admin/campaigns/{campaign_id}")
    flash(request, response, f"Campaign {values['name'].strip()!r} created.")
    raise response


async def edit_page(request: web.Request) -> web.StreamResponse:
    tenant = await _tenant(request)
    campaign = await _campaign_or_404(request, tenant["id"])
    if campaign["status"] not in EDITABLE:
        response = redirect(f"/admin/campaigns/{campaign['id']}")
        flash(request, response, f"A {campaign['status']} campaign cannot be edited.", "error")
        raise response
    template_ids = [
        t["id"]
        for t in await request.app[DB].all(
            "campaigns.campaign_templates", campaign_id=campaign["id"]
        )
    ]
    return await _form(
        request, values=_values_of(campaign, template_ids, tenant["timezone"]), campaign=campaign
    )


async def update_from_form(request: web.Request) -> web.StreamResponse:
    tenant = await _tenant(request)
    campaign = await _campaign_or_404(request, tenant["id"])
    db = request.app[DB]
    values = await _posted(request)
    template_ids = [
        t["id"] for t in await db.all("campaigns.campaign_templates", campaign_id=campaign["id"])
    ]
    shown = _values_of(campaign, template_ids, tenant["timezone"])
    try:
        body = _body(values)
        # A schedule left as shown is not sent again: it may have passed since (and then
        # fires at the next poll), which is not an error of this edit.
        if values["scheduled_at"] == shown["scheduled_at"]:
            del body["scheduled_at"]
        if values["template_ids"] == shown["template_ids"]:
            del body["template_ids"]
        await update_campaign_audited(request, tenant["id"], campaign["id"], body)
    except DomainError as exc:
        return await _form(
            request, values=values, campaign=campaign, error=exc.message, status=exc.status
        )
    response = redirect(f"/admin/campaigns/{campaign['id']}")
    flash(request, response, "Saved.")
    raise response


# --- the campaign page -----------------------------------------------------------------------


async def _outlook(request: web.Request, tenant_id: int, campaign_id: int) -> dict[str, Any]:
    """The queue answer (the same as POST /api/campaigns/{id}/queue's), for people."""
    answer = await queue_outlook(
        request.app[DB], request.app[CLOCK].now(), tenant_id, campaign_id, added=0
    )
    return {
        **answer,
        "skipped_list": [
            (SKIP_REASONS.get(reason, reason), n)
            for reason, n in sorted(answer["skipped_reasons"].items())
        ],
        "waiting_list": [WAITING.get(w, w) for w in answer["waiting"]],
    }


async def _sample(
    request: web.Request, tenant: Row, campaign: Row, templates: list[Row]
) -> dict[str, Any] | None:
    """The first template rendered for the first contact of the segment (a made-up one when
    the segment is empty), with its encoding and segments."""
    if not templates:
        return None
    db, settings = request.app[DB], request.app[SETTINGS]
    tag = (campaign["segment"] or {}).get("tag") or None
    contacts = await db.all(
        "campaigns.segment_contacts", tenant_id=tenant["id"], tag=tag, after=0, limit=1
    )
    if contacts:
        c = contacts[0]
        recipient = Recipient(c["first_name"], c["last_name"], c["attributes"] or {})
        who = " ".join(n for n in (c["first_name"], c["last_name"]) if n) or c["phone_e164"]
        contact_id: int | None = c["id"]
    else:
        recipient = Recipient("Alex", "Citizen", {})
        who, contact_id = None, None
    first = templates[0]
    kind = await campaign_sender_kind(db, tenant["id"])
    text = rendered_for(settings, tenant, first["body"], recipient, kind)
    return {
        "template": first,
        "text": text,
        "who": who,
        "contact_id": contact_id,
        "analysis": analyse(text),
    }


async def _campaign_page(
    request: web.Request,
    campaign_id: int,
    *,
    error: str | None = None,
    status: int = 200,
) -> web.Response:
    tenant = await _tenant(request)
    db, settings = request.app[DB], request.app[SETTINGS]
    try:
        summary = await campaign_summary(db, tenant["id"], campaign_id)
    except DomainError as exc:
        raise as_api_error(exc) from None
    campaign = await get_campaign(db, tenant["id"], campaign_id)
    templates = await db.all("campaigns.campaign_templates", campaign_id=campaign_id)
    kind = await campaign_sender_kind(db, tenant["id"])
    jobs: dict[str, int] = summary["jobs"]
    tz = str(tenant["timezone"])
    tag = (campaign["segment"] or {}).get("tag") or None
    creator = None
    if campaign["created_by"] is not None:
        creator = await db.val("campaign_pages.creator", user_id=campaign["created_by"])
    return await render(
        request,
        "campaign.html",
        {
            "campaign": campaign,
            "summary": summary,
            "creator": creator,
            "templates": [
                {"row": t, "preview": preview(settings, tenant, t["body"], kind)} for t in templates
            ],
            "job_statuses": JOB_STATUSES,
            "jobs": jobs,
            "jobs_total": sum(jobs.values()),
            "held": [
                {
                    "gate": gate,
                    "label": GATES.get(gate, gate),
                    "count": held["count"],
                    "until": held["until"],
                    "until_local": local_time(datetime.fromisoformat(held["until"]), tz)
                    if held["until"]
                    else "",
                }
                for gate, held in sorted(summary["held"].items())
            ],
            "gates": GATES,
            "audience": await db.val(
                "campaign_pages.segment_size", tenant_id=tenant["id"], tag=tag
            ),
            "outlook": await _outlook(request, tenant["id"], campaign_id)
            if jobs or campaign["status"] in ("sending", "paused")
            else None,
            "sample": await _sample(request, tenant, campaign, templates),
            "actions": {name: campaign["status"] in when for name, when in ACTIONS.items()},
            "action_states": {name: " ".join(when) for name, when in ACTIONS.items()},
            "error": error,
            "poll_seconds": POLL_SECONDS,
            "rendered_at": request.app[CLOCK].now().astimezone(ZoneInfo(tz)).strftime("%H:%M:%S"),
            **_page_helpers(tz),
        },
        status=status,
    )


async def campaign_page(request: web.Request) -> web.StreamResponse:
    request[CALLER].require_tenant()
    return await _campaign_page(request, path_int(request, "campaign_id", "campaign"))


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


async def queue_from_form(request: web.Request) -> web.StreamResponse:
    tenant_id = request[CALLER].require_tenant()
    campaign = await _campaign_or_404(request, tenant_id)
    try:
        result = await queue_audited(request, tenant_id, campaign["id"])
    except DomainError as exc:
        return await _campaign_page(request, campaign["id"], error=exc.message, status=exc.status)
    response = redirect(f"/admin/campaigns/{campaign['id']}")
    if result.added:
        jobs = (await campaign_summary(request.app[DB], tenant_id, campaign["id"]))["jobs"]
        message = (
            f"Queued {_plural(result.added, 'new message')}: "
            f"{jobs.get('queued', 0):,} waiting to send, {jobs.get('skipped', 0):,} skipped."
        )
    else:
        message = "Nothing new to queue: every contact of the audience has a message already."
    flash(request, response, message)
    raise response


STATUS_MESSAGES = {
    "pause": "Paused: no more messages of this campaign leave until it is resumed.",
    "resume": "Resumed: waiting messages send again within the send window and limits.",
    "cancel": "Cancelled: the messages still waiting will not be sent.",
}


def status_from_form(action: str) -> Any:
    async def handler(request: web.Request) -> web.StreamResponse:
        tenant_id = request[CALLER].require_tenant()
        campaign = await _campaign_or_404(request, tenant_id)
        try:
            await change_status_audited(request, tenant_id, campaign["id"], action)
        except DomainError as exc:
            return await _campaign_page(
                request, campaign["id"], error=exc.message, status=exc.status
            )
        response = redirect(f"/admin/campaigns/{campaign['id']}")
        flash(request, response, STATUS_MESSAGES[action])
        raise response

    return handler


LINKS_PAGE_SIZE = 100


def contact_name(row: Row) -> str:
    name = " ".join(part for part in (row["first_name"], row["last_name"]) if part)
    return name or "—"


async def links_page(request: web.Request) -> web.StreamResponse:
    """The campaign's short links: who each is for, where it goes, its clicks (pack §9)."""
    tenant = await _tenant(request)
    campaign = await _campaign_or_404(request, tenant["id"])
    db, page = request.app[DB], page_number(request)
    await request.app[HIT_WRITER].fold_before_read()  # every hit answered so far, if quick
    rows = await db.all(
        "short_links.campaign_links",
        tenant_id=tenant["id"],
        campaign_id=campaign["id"],
        limit=LINKS_PAGE_SIZE + 1,
        offset=(page - 1) * LINKS_PAGE_SIZE,
    )
    totals = await db.one(
        "short_links.campaign_link_totals", tenant_id=tenant["id"], campaign_id=campaign["id"]
    )
    assert totals is not None
    return await render(
        request,
        "campaign_links.html",
        {
            "campaign": campaign,
            "links": rows[:LINKS_PAGE_SIZE],
            "totals": {name: int(value) for name, value in totals.items()},
            "contact_name": contact_name,
            "page": page,
            "has_more": len(rows) > LINKS_PAGE_SIZE,
            "query_for": lambda n: urlencode({"page": n}),
            **_page_helpers(tenant["timezone"]),
        },
    )


async def cancel_confirm_page(request: web.Request) -> web.StreamResponse:
    tenant = await _tenant(request)
    campaign = await _campaign_or_404(request, tenant["id"])
    summary = await campaign_summary(request.app[DB], tenant["id"], campaign["id"])
    return await render(
        request,
        "campaign_cancel.html",
        {
            "campaign": campaign,
            "waiting": summary["jobs"].get("queued", 0),
            "can_cancel": campaign["status"] in ACTIONS["cancel"],
            **_page_helpers(tenant["timezone"]),
        },
    )


routes = [
    route("GET", "/admin/campaigns", campaigns_page, access=Access.VIEWER, name="campaigns"),
    route("POST", "/admin/campaigns", create_from_form, access=Access.STAFF),
    route("GET", "/admin/campaigns/new", new_campaign_page, access=Access.STAFF),
    route("GET", "/admin/campaigns/{campaign_id}", campaign_page, access=Access.VIEWER),
    route("GET", "/admin/campaigns/{campaign_id}/links", links_page, access=Access.VIEWER),
    route("GET", "/admin/campaigns/{campaign_id}/edit", edit_page, access=Access.STAFF),
    route("POST", "/admin/campaigns/{campaign_id}/edit", update_from_form, access=Access.STAFF),
    route("POST", "/admin/campaigns/{campaign_id}/queue", queue_from_form, access=Access.STAFF),
    route(
        "POST",
        "/admin/campaigns/{campaign_id}/pause",
        status_from_form("pause"),
        access=Access.STAFF,
    ),
    route(
        "POST",
        "/admin/campaigns/{campaign_id}/resume",
        status_from_form("resume"),
        access=Access.STAFF,
    ),
    route("GET", "/admin/campaigns/{campaign_id}/cancel", cancel_confirm_page, access=Access.STAFF),
    route(
        "POST",
        "/admin/campaigns/{campaign_id}/cancel",
        status_from_form("cancel"),
        access=Access.STAFF,
    ),
]
