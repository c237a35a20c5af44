"""Request middlewares, outermost first: correlation id and request log, error shape,
caller resolution and the access check of the matched route."""

from __future__ import annotations

import logging
import re
import time
import uuid

from aiohttp import web

from smsapp.access import CALLER, Access, Caller, Handler, enforce, is_api_request, route_access
from smsapp.api_keys import authenticate_api_key
from smsapp.errors import ApiError, error_response
from smsapp.keys import CLOCK, DB
from smsapp.logs import request_id_var

log = logging.getLogger("smsapp.http")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


@web.middleware
async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Take X-Request-ID (or make one), keep it on every log line, echo it back."""
    incoming = request.headers.get("X-Request-ID", "")
    request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
    token = request_id_var.set(request_id)
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        response.headers["X-Request-ID"] = request_id
        return response
    except web.HTTPException as exc:
        status = exc.status
        exc.headers["X-Request-ID"] = request_id
        raise
    finally:
        log.info(
            "%s %s %s",
            request.method,
            request.path,
            status,
            extra={"status": status, "ms": round((time.perf_counter() - started) * 1000, 2)},
        )
        request_id_var.reset(token)


@web.middleware
async def error_shape(request: web.Request, handler: Handler) -> web.StreamResponse:
    """ApiError → the JSON error shape; for /api, aiohttp's own 404/405/413 too."""
    try:
        return await handler(request)
    except ApiError as exc:
        return exc.response()
    except web.HTTPException as exc:
        if exc.status >= 400 and is_api_request(request):
            code = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}.get(
                exc.status, "http_error"
            )
            return error_response(exc.status, code, exc.reason, headers=dict(exc.headers))
        raise
    except Exception:
        log.exception("unhandled error in %s %s", request.method, request.path)
        return error_response(
            500, "internal_error", f"something went wrong; request id {request_id_var.get()}"
        )


async def resolve_caller(request: web.Request) -> Caller | None:
    """The caller from `Authorization: Bearer`; a bad key is 401, never anonymous."""
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, credential = header.partition(" ")
    if scheme.lower() != "bearer" or not credential.strip():
        raise ApiError(401, "unauthenticated", "Authorization must be 'Bearer <api key>'")
    caller = await authenticate_api_key(request.app[DB], request.app[CLOCK], credential.strip())
    if caller is None:
        raise ApiError(401, "unauthenticated", "unknown or revoked API key")
    return caller


@web.middleware
async def access_control(request: web.Request, handler: Handler) -> web.StreamResponse:
    access = route_access(request)
    if access is None:
        # No route matched: let the router's own 404/405 answer.
        return await handler(request)
    caller = await resolve_caller(request) if access is not Access.PUBLIC else None
    enforce(access, caller, request)
    if caller is not None:
        request[CALLER] = caller
    return await handler(request)
