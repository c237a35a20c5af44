"""Message preview (pack §8, §17): how a body is encoded and how many parts it costs.

The body is counted exactly as given; the tenant footer and `{link}` at the real short-link
length belong to the template/campaign preview, which counts `encoding.render_for_count(...)`.
"""

from __future__ import annotations

from aiohttp import web

from smsapp.access import Access, route
from smsapp.encoding import MAX_BODY_CHARACTERS, analyse
from smsapp.errors import ApiError, read_json
from smsapp.fields import check_fields
from smsapp.routes.common import api_errors


@api_errors
async def api_preview(request: web.Request) -> web.StreamResponse:
    payload = await read_json(request)
    check_fields(payload, ("body",))
    body = payload.get("body")
    if not isinstance(body, str):
        raise ApiError(400, "bad_request", "send 'body': the message text, a string", field="body")
    if len(body) > MAX_BODY_CHARACTERS:
        raise ApiError(
            400,
            "too_long",
            f"the body is {len(body)} characters; at most {MAX_BODY_CHARACTERS} are accepted",
            field="body",
        )
    try:
        body.encode("utf-8")
    except UnicodeEncodeError:  # JSON "\ud83d" alone decodes to a lone surrogate: not text
        raise ApiError(
            400, "bad_request", "the body contains a lone UTF-16 surrogate", field="body"
        ) from None
    return web.json_response(analyse(body).as_json())


routes = [route("POST", "/api/messages/preview", api_preview, access=Access.VIEWER)]
