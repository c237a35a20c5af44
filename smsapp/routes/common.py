"""Small helpers shared by the contact, do-not-contact and suppression routes."""

from __future__ import annotations

import functools
from typing import Any

from aiohttp import web

from smsapp.access import CALLER, Caller, Handler
from smsapp.dnc import Source
from smsapp.errors import ApiError
from smsapp.fields import DomainError, TenantDefaults, tenant_defaults
from smsapp.keys import DB

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
PAGE_SIZE = 50  # admin pages


def api_errors(handler: Handler) -> Handler:
    """Answer a domain refusal (`smsapp.fields.DomainError`) in the API's error shape."""

    @functools.wraps(handler)
    async def wrapper(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except DomainError as exc:
            raise as_api_error(exc) from None

    return wrapper


def as_api_error(exc: DomainError) -> ApiError:
    return ApiError(exc.status, exc.code, exc.message, **exc.extra)


def paging(request: web.Request) -> tuple[int, int]:
    """`limit` (default 50; above 500 reads as 500) and `offset` (default 0)."""
    limit = _non_negative(request, "limit", DEFAULT_LIMIT)
    offset = _non_negative(request, "offset", 0)
    if limit == 0:
        raise ApiError(400, "bad_request", "limit must be at least 1")
    return min(limit, MAX_LIMIT), offset


def _non_negative(request: web.Request, name: str, default: int) -> int:
    raw = request.query.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or len(raw) > 9:
        raise ApiError(400, "bad_request", f"{name} must be a whole number, not {raw!r}")
    return int(raw)


def page_number(request: web.Request) -> int:
    raw = request.query.get("page", "1")
    return int(raw) if raw.isdigit() and 0 < int(raw) < 1_000_000 else 1


def query_flag(request: web.Request, name: str) -> bool:
    return request.query.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def query_phone(request: web.Request, name: str = "phone") -> str | None:
    """A phone number from the query string. An unencoded `+` arrives as a space (form
    encoding), so ` 61…` is read back as `+61…`."""
    raw = request.query.get(name)
    if raw is None or not raw.strip():
        return None
    if raw.startswith(" ") and raw[1:2].isdigit():
        return "+" + raw[1:].strip()
    return raw.strip()


async def tenant_and_defaults(request: web.Request) -> tuple[int, TenantDefaults]:
    tenant_id = request[CALLER].require_tenant()
    return tenant_id, await tenant_defaults(request.app[DB], tenant_id)


def dnc_source(caller: Caller) -> Source:
    """`manual` for a person signed in, `api` for an API key (pack §3)."""
    return "manual" if caller.kind == "user" else "api"


def json_created(body: dict[str, Any]) -> web.Response:
    return web.json_response(body, status=201)
