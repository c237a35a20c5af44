"""Request middlewares, outermost first: correlation id and request log, the short hosts' rules
(smsapp/short_host.py), error shape, caller resolution and the access check of the matched
route. The route table wraps each route's handler in them (`access.register_routes`), except
the fast-path routes'."""

from __future__ import annotations

import logging
import re
import time
import uuid

from aiohttp import hdrs, web

from smsapp import sessions
from smsapp.access import CALLER, Access, Caller, Handler, enforce, is_api_request, route_access
from smsapp.api_keys import authenticate_api_key
from smsapp.errors import ApiError, error_response
from smsapp.keys import CLOCK, DB, SESSION_TOKEN, SETTINGS
from smsapp.logs import request_id_var
from smsapp.pages import render_error_page
from smsapp.tokens import same

log = logging.getLogger("smsapp.http")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


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


async def error_shape(request: web.Request, handler: Handler) -> web.StreamResponse:
    """ApiError → the JSON error shape; for /api, aiohttp's own 404/405/413 too."""
    try:
        return await handler(request)
    except ApiError as exc:
        if is_api_request(request):
            return exc.response()
        return render_error_page(request, exc.status, exc.message)
    except web.HTTPException as exc:
        if exc.status >= 400 and is_api_request(request):
            code = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}.get(
                exc.status, "http_error"
            )
            kept = {
                k: v for k, v in exc.headers.items() if k.lower() in ("allow", "www-authenticate")
            }
            return error_response(exc.status, code, exc.reason, headers=kept)
        if exc.status in (403, 404, 405, 410, 413) and exc.content_type != "text/html":
            page = render_error_page(request, exc.status, exc.reason)
            if hdrs.ALLOW in exc.headers:  # a 405 says what is allowed (RFC 9110 §15.5.6)
                page.headers[hdrs.ALLOW] = exc.headers[hdrs.ALLOW]
            return page
        raise
    except Exception:
        log.exception("unhandled error in %s %s", request.method, request.path)
        message = f"something went wrong; request id {request_id_var.get()}"
        if is_api_request(request):
            return error_response(500, "internal_error", message)
        return render_error_page(request, 500, message)


UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"


async def resolve_caller(request: web.Request) -> Caller | None:
    """The caller from `Authorization: Bearer` (a bad key is 401, never anonymous), else from
    the session cookie (an unknown or expired session is simply anonymous)."""
    db, clock = request.app[DB], request.app[CLOCK]
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, credential = header.partition(" ")
        if scheme.lower() != "bearer" or not credential.strip():
            raise ApiError(401, "unauthenticated", "Authorization must be 'Bearer <api key>'")
        caller = await authenticate_api_key(db, clock, credential.strip())
        if caller is None:
            raise ApiError(401, "unauthenticated", "unknown or revoked API key")
        return caller
    token = request.cookies.get(sessions.COOKIE)
    if token:
        caller = await sessions.session_caller(db, clock, token)
        if caller is not None:
            request[SESSION_TOKEN] = token
        return caller
    return None


async def check_csrf(request: web.Request, session_token: str) -> None:
    """Unsafe requests authenticated by the session cookie carry the session's CSRF token:
    in the X-CSRF-Token header (fetch), a `csrf_token` form field (forms), or for multipart
    uploads the `csrf_token` query parameter (so the upload can stream)."""
    if request.method not in UNSAFE_METHODS:
        return
    expected = sessions.csrf_token(request.app[SETTINGS], session_token)
    given = request.headers.get(CSRF_HEADER) or request.query.get(CSRF_FIELD)
    if not given and request.content_type == "application/x-www-form-urlencoded":
        given = str((await request.post()).get(CSRF_FIELD) or "")
    if not given or not same(given, expected):
        raise ApiError(
            403, "csrf_failed", "missing or wrong CSRF token: reload the page and try again"
        )


async def access_control(request: web.Request, handler: Handler) -> web.StreamResponse:
    access = route_access(request)
    if access is None:
        # No route matched: let the router's own 404/405 answer.
        return await handler(request)
    if access is Access.PUBLIC:
        # Public routes (the redirect among them) do no caller lookup; the few that care
        # (the login page) call resolve_caller themselves.
        return await handler(request)
    caller = await resolve_caller(request)
    enforce(access, caller, request)
    assert caller is not None
    request[CALLER] = caller
    session_token = request.get(SESSION_TOKEN)
    if session_token is not None:
        await check_csrf(request, session_token)
    return await handler(request)
