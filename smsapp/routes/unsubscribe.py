"""The public unsubscribe link (pack §10): `GET /u/{token}` confirms, `POST /u/{token}` acts.

Both are PUBLIC routes: the access middleware resolves no caller and checks no CSRF token for
them, so the form works in any browser, signed in or not; the token in the path is the
credential, as with a magic link. GET never changes anything (mail and message scanners follow
links); POST is idempotent.
"""

from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web

from smsapp.access import Access, route
from smsapp.keys import CLOCK, DB
from smsapp.unsubscribe import find_token, unsubscribe

HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",  # the token must not leak to anything the page loads
    "X-Robots-Tag": "noindex",
}


def masked(phone: str | None) -> str:
    """The number as the page shows it: enough to recognise, not enough to harvest."""
    return f"the number ending in {phone[-3:]}" if phone else "your number"


def page(
    request: web.Request, state: str, *, token: str = "", tenant_name: str = "",
    phone: str | None = None, status: int = 200,
) -> web.Response:  # fmt: skip
    response = aiohttp_jinja2.render_template(
        "unsubscribe.html",
        request,
        {
            "state": state,
            "token": token,
            "tenant_name": tenant_name,
            "masked_phone": masked(phone),
        },
        status=status,
    )
    response.headers.update(HEADERS)
    return response


async def confirm_page(request: web.Request) -> web.StreamResponse:
    token = request.match_info["token"]
    found = await find_token(request.app[DB], token)
    if found is None:
        return page(request, "unknown", status=404)
    state = "done" if found["on_dnc"] or found["phone_e164"] is None else "confirm"
    return page(request, state, token=token, tenant_name=found["tenant_name"],
                phone=found["phone_e164"])  # fmt: skip


async def confirm_submit(request: web.Request) -> web.StreamResponse:
    token = request.match_info["token"]
    result = await unsubscribe(request.app[DB], request.app[CLOCK], token)
    if result is None:
        return page(request, "unknown", status=404)
    return page(request, "done", tenant_name=result.tenant_name, phone=result.phone_e164)


routes = [
    route("GET", "/u/{token}", confirm_page, access=Access.PUBLIC, name="unsubscribe"),
    route("POST", "/u/{token}", confirm_submit, access=Access.PUBLIC),
]
