"""POST /api/campaigns/{id}/test (pack §17): one message now, transactional."""

from __future__ import annotations

from aiohttp import web

from smsapp import audit
from smsapp.access import CALLER, Access, route
from smsapp.errors import path_int, read_json
from smsapp.fields import check_fields
from smsapp.keys import CLOCK, DB, PROVIDER, SETTINGS
from smsapp.routes.common import api_errors
from smsapp.test_send import send_test


@api_errors
async def test_send_api(request: web.Request) -> web.StreamResponse:
    tenant_id = request[CALLER].require_tenant()
    db, clock = request.app[DB], request.app[CLOCK]
    campaign_id = path_int(request, "campaign_id", "campaign")
    body = await read_json(request)
    check_fields(body, ("phone",))
    sent = await send_test(
        db,
        clock,
        request.app[SETTINGS],
        request.app[PROVIDER],
        tenant_id=tenant_id,
        campaign_id=campaign_id,
        phone=body.get("phone"),
    )
    await audit.record_request(
        request,
        db,
        clock,
        "campaign.test_send",
        target_type="campaign",
        target_id=campaign_id,
        details={"to": sent.to},
    )
    return web.json_response({
        "to": sent.to, "from": sent.from_, "body": sent.body, "parts": sent.parts,
        "encoding": sent.encoding, "provider_message_id": sent.provider_message_id,
        "status": sent.status,
    })  # fmt: skip


routes = [
    route("POST", "/api/campaigns/{campaign_id}/test", test_send_api, access=Access.STAFF),
]
