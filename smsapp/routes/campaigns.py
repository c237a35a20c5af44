"""Templates and campaigns API (pack §7, §17)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from smsapp import audit
from smsapp.access import CALLER, Access, route
from smsapp.campaigns import (
    campaign_summary,
    change_status,
    check_segment,
    create_campaign,
    create_template,
    get_template,
    queue_outlook,
    update_campaign,
    update_template,
)
from smsapp.db import Row
from smsapp.errors import path_int, read_json
from smsapp.fields import check_fields, iso
from smsapp.keys import CLOCK, DB, SETTINGS
from smsapp.queue_builder import QueueResult, queue_campaign
from smsapp.routes.common import api_errors, json_created, paging


def template_json(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"], "name": row["name"], "body": row["body"], "active": row["active"],
        "created_at": iso(row["created_at"]), "updated_at": iso(row["updated_at"]),
    }  # fmt: skip


# One function per action, with its audit entry, for the API below and the admin pages.


async def create_template_audited(
    request: web.Request, tenant_id: int, body: dict[str, Any]
) -> Row:
    db, clock = request.app[DB], request.app[CLOCK]
    row = await create_template(db, clock, tenant_id=tenant_id, body=body)
    await audit.record_request(
        request,
        db,
        clock,
        "template.create",
        target_type="template",
        target_id=row["id"],
        details={"name": row["name"]},
    )
    return row


async def update_template_audited(
    request: web.Request, tenant_id: int, template_id: int, body: dict[str, Any]
) -> Row:
    db, clock = request.app[DB], request.app[CLOCK]
    row = await update_template(db, clock, tenant_id=tenant_id, template_id=template_id, body=body)
    await audit.record_request(
        request,
        db,
        clock,
        "template.update",
        target_type="template",
        target_id=template_id,
        details={"fields": sorted(body)},
    )
    return row


async def create_campaign_audited(
    request: web.Request, tenant_id: int, body: dict[str, Any]
) -> int:
    db, clock = request.app[DB], request.app[CLOCK]
    campaign_id = await create_campaign(
        db, clock, tenant_id=tenant_id, body=body, created_by=request[CALLER].user_id
    )
    await audit.record_request(
        request, db, clock, "campaign.create", target_type="campaign", target_id=campaign_id
    )
    return campaign_id


async def update_campaign_audited(
    request: web.Request, tenant_id: int, campaign_id: int, body: dict[str, Any]
) -> None:
    db, clock = request.app[DB], request.app[CLOCK]
    await update_campaign(db, clock, tenant_id=tenant_id, campaign_id=campaign_id, body=body)
    await audit.record_request(
        request,
        db,
        clock,
        "campaign.update",
        target_type="campaign",
        target_id=campaign_id,
        details={"fields": sorted(body)},
    )


async def change_status_audited(
    request: web.Request, tenant_id: int, campaign_id: int, action: str
) -> str:
    db, clock = request.app[DB], request.app[CLOCK]
    status = await change_status(
        db, clock, tenant_id=tenant_id, campaign_id=campaign_id, action=action
    )
    await audit.record_request(
        request, db, clock, f"campaign.{action}", target_type="campaign", target_id=campaign_id
    )
    return status


async def queue_audited(
    request: web.Request,
    tenant_id: int,
    campaign_id: int,
    segment: dict[str, str] | None = None,
) -> QueueResult:
    db, clock, settings = request.app[DB], request.app[CLOCK], request.app[SETTINGS]
    result = await queue_campaign(
        db, clock, settings, tenant_id=tenant_id, campaign_id=campaign_id, segment=segment
    )
    await audit.record_request(
        request,
        db,
        clock,
        "campaign.queue",
        target_type="campaign",
        target_id=campaign_id,
        details={"added": result.added},
    )
    return result


@api_errors
async def list_templates(request: web.Request) -> web.StreamResponse:
    tenant_id = request[CALLER].require_tenant()
    rows = await request.app[DB].all("campaigns.templates", tenant_id=tenant_id)
    return web.json_response({"templates": [template_json(r) for r in rows]})


@api_errors
async def show_template(request: web.Request) -> web.StreamResponse:
    tenant_id = request[CALLER].require_tenant()
    row = await get_template(
        request.app[DB], tenant_id, path_int(request, "template_id", "template")
    )
    return web.json_response(template_json(row))


@api_errors
async def create_template_api(request: web.Request) -> web.StreamResponse:
    tenant_id = request[CALLER].require_tenant()
    row = await create_template_audited(request, tenant_id, await read_json(request))
    return json_created(template_json(row))


@api_errors
async def patch_template_api(request: web.Request) -> web.StreamResponse:
    tenant_id = request[CALLER].require_tenant()
    template_id = path_int(request, "template_id", "template")
    body = await read_json(request)
    row = await update_template_audited(request, tenant_id, template_id, body)
    return web.json_response(template_json(row))


@api_errors
async def list_campaigns(request: web.Request) -> web.StreamResponse:
    tenant_id = request[CALLER].require_tenant()
    limit, offset = paging(request)
    rows = await request.app[DB].all(
        "campaigns.campaigns", tenant_id=tenant_id, limit=limit, offset=offset
    )
    return web.json_response({"campaigns": [
        {"id": r["id"], "name": r["name"], "status": r["status"], "segment": r["segment"],
         "scheduled_at": iso(r["scheduled_at"]), "created_at": iso(r["created_at"]),
         "jobs_total": r["jobs_total"]}
        for r in rows
    ]})  # fmt: skip


@api_errors
async def show_campaign(request: web.Request) -> web.StreamResponse:
    tenant_id = request[CALLER].require_tenant()
    campaign_id = path_int(request, "campaign_id", "campaign")
    return web.json_response(await campaign_summary(request.app[DB], tenant_id, campaign_id))


@api_errors
async def create_campaign_api(request: web.Request) -> web.StreamResponse:
    tenant_id = request[CALLER].require_tenant()
    campaign_id = await create_campaign_audited(request, tenant_id, await read_json(request))
    return json_created(await campaign_summary(request.app[DB], tenant_id, campaign_id))


@api_errors
async def patch_campaign_api(request: web.Request) -> web.StreamResponse:
    tenant_id = request[CALLER].require_tenant()
    campaign_id = path_int(request, "campaign_id", "campaign")
    body = await read_json(request)
    await update_campaign_audited(request, tenant_id, campaign_id, body)
    return web.json_response(await campaign_summary(request.app[DB], tenant_id, campaign_id))


def status_action(action: str) -> Any:
    @api_errors
    async def handler(request: web.Request) -> web.StreamResponse:
        tenant_id = request[CALLER].require_tenant()
        campaign_id = path_int(request, "campaign_id", "campaign")
        status = await change_status_audited(request, tenant_id, campaign_id, action)
        return web.json_response({"id": campaign_id, "status": status})

    return handler


@api_errors
async def queue_api(request: web.Request) -> web.StreamResponse:
    tenant_id = request[CALLER].require_tenant()
    campaign_id = path_int(request, "campaign_id", "campaign")
    body = await read_json(request) if request.can_read_body else {}
    check_fields(body, ("segment",))
    segment = check_segment(body["segment"]) if "segment" in body else None
    result = await queue_audited(request, tenant_id, campaign_id, segment)
    db, clock = request.app[DB], request.app[CLOCK]
    answer = await queue_outlook(db, clock.now(), tenant_id, campaign_id, added=result.added)
    return web.json_response(answer)


routes = [
    route("GET", "/api/templates", list_templates, access=Access.VIEWER),
    route("POST", "/api/templates", create_template_api, access=Access.STAFF),
    route("GET", "/api/templates/{template_id}", show_template, access=Access.VIEWER),
    route("PATCH", "/api/templates/{template_id}", patch_template_api, access=Access.STAFF),
    route("GET", "/api/campaigns", list_campaigns, access=Access.VIEWER),
    route("POST", "/api/campaigns", create_campaign_api, access=Access.STAFF),
    route("GET", "/api/campaigns/{campaign_id}", show_campaign, access=Access.VIEWER),
    route("PATCH", "/api/campaigns/{campaign_id}", patch_campaign_api, access=Access.STAFF),
    route(
        "POST", "/api/campaigns/{campaign_id}/cancel", status_action("cancel"), access=Access.STAFF
    ),
    route(
        "POST", "/api/campaigns/{campaign_id}/pause", status_action("pause"), access=Access.STAFF
    ),
    route(
        "POST", "/api/campaigns/{campaign_id}/resume", status_action("resume"), access=Access.STAFF
    ),
    route("POST", "/api/campaigns/{campaign_id}/queue", queue_api, access=Access.STAFF),
]
