"""Sign in by magic link, sign out, switch tenant."""

from __future__ import annotations

import logging
from urllib.parse import quote

from aiohttp import web

from smsapp import audit, sessions
from smsapp.access import CALLER, Access, route
from smsapp.background import spawn
from smsapp.errors import ApiError
from smsapp.keys import CLOCK, DB, SETTINGS
from smsapp.magic_links import consume_login_token, request_login, token_is_valid
from smsapp.mailer import send_email
from smsapp.middleware import resolve_caller
from smsapp.pages import flash, redirect, render
from smsapp.tokens import token_hash

log = logging.getLogger("smsapp.login")


def safe_next(raw: object) -> str:
    """Only a local path may follow login: no open redirect through `next`."""
    target = str(raw or "")
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/admin/"
    return target


def deliver_login_link(app: web.Application, email: str, link: str) -> None:
    settings = app[SETTINGS]
    text = (
        "Hello,\n\nUse this link to sign in to smsapp. It works once, for 15 minutes:\n\n"
        f"{link}\n\nIf you did not ask for it, ignore this email.\n"
    )
    if settings.smtp_url:
        spawn(
            app,
            send_email(settings, to=email, subject="Your smsapp sign-in link", text=text),
            name="login-email",
        )
    elif not settings.is_production:
        log.info("SMTP_URL is not set; the sign-in link for %s is %s", email, link)
    else:
        log.error("SMTP_URL is not set: cannot email a sign-in link to %s", email)


async def login_form(request: web.Request) -> web.StreamResponse:
    try:
        caller = await resolve_caller(request)
    except ApiError:
        caller = None
    next_url = safe_next(request.query.get("next"))
    if caller is not None:
        raise redirect(next_url)
    return await render(request, "login.html", {"next": next_url, "email": ""})


async def login_submit(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    email, next_url = str(form.get("email") or ""), safe_next(form.get("next"))
    result = await request_login(
        request.app[DB], request.app[CLOCK], request.app[SETTINGS], email=email, ip=request.remote
    )
    if result.outcome == "invalid_email":
        return await render(
            request,
            "login.html",
            {
                "next": next_url,
                "email": email,
                "flashes": [{"kind": "error", "message": "That is not an email address."}],
            },
            status=400,
        )
    if result.outcome == "rate_limited":
        return await render(
            request,
            "error.html",
            {
                "status": 429,
                "title": "Slow down",
                "message": "Too many sign-in requests. Wait a few minutes and try again.",
            },
            status=429,
        )
    if result.link is not None:
        link = result.link if next_url == "/admin/" else f"{result.link}?next={quote(next_url)}"
        deliver_login_link(request.app, result.email, link)
    return await render(request, "login_sent.html", {"email": result.email})


async def confirm_form(request: web.Request) -> web.StreamResponse:
    token = request.match_info["token"]
    db, clock = request.app[DB], request.app[CLOCK]
    valid = await token_is_valid(db, clock, token)
    email = ""
    if valid:
        row = await db.one(
            "people.login_token_valid", token_hash=token_hash(token), now=clock.now()
        )
        email = row["email"] if row else ""
    return await render(
        request,
        "login_confirm.html",
        {
            "valid": valid,
            "token": token,
            "email": email,
            "next": safe_next(request.query.get("next")),
        },
        status=200 if valid else 410,
    )


async def confirm_submit(request: web.Request) -> web.StreamResponse:
    db, clock, settings = request.app[DB], request.app[CLOCK], request.app[SETTINGS]
    form = await request.post()
    user_id = await consume_login_token(db, clock, request.match_info["token"])
    if user_id is None:
        return await render(
            request,
            "login_confirm.html",
            {"valid": False, "token": "", "email": "", "next": "/admin/"},
            status=410,
        )
    new = await sessions.start_session(
        db,
        clock,
        user_id=user_id,
        ip=request.remote,
        user_agent=request.headers.get("User-Agent"),
        replaces_token=request.cookies.get(sessions.COOKIE),
    )
    caller = await sessions.session_caller(db, clock, new.token)
    await audit.record(
        db,
        clock,
        caller=caller,
        action="user.login",
        tenant_id=caller.tenant_id if caller else None,
        target_type="user",
        target_id=user_id,
        ip=request.remote,
    )
    response = redirect(safe_next(form.get("next")))
    sessions.set_session_cookie(response, settings, new.token)
    raise response


async def logout(request: web.Request) -> web.StreamResponse:
    caller = request[CALLER]
    db, clock = request.app[DB], request.app[CLOCK]
    if caller.session_id is not None:
        await audit.record_request(
            request, db, clock, "user.logout", target_type="user", target_id=caller.user_id
        )
        await sessions.end_session(db, caller.session_id)
    response = redirect("/login")
    sessions.clear_session_cookie(response, request.app[SETTINGS])
    raise response


async def switch_tenant(request: web.Request) -> web.StreamResponse:
    caller = request[CALLER]
    db, clock = request.app[DB], request.app[CLOCK]
    form = await request.post()
    raw = str(form.get("tenant_id") or "")
    if caller.session_id is None or not raw.isdigit():
        raise ApiError(400, "bad_request", "choose a tenant")
    tenant_id = int(raw)
    role = await db.val("people.active_membership", user_id=caller.user_id, tenant_id=tenant_id)
    if role is None:
        raise ApiError(404, "not_found", "no such tenant")
    await db.run("people.set_session_tenant", id=caller.session_id, tenant_id=tenant_id)
    await audit.record_request(
        request,
        db,
        clock,
        "user.switch_tenant",
        target_type="tenant",
        target_id=tenant_id,
        tenant_id=tenant_id,
    )
    response = redirect("/admin/")
    flash(request, response, "Switched tenant.")
    raise response


routes = [
    route("GET", "/login", login_form, access=Access.PUBLIC, name="login"),
    route("POST", "/login", login_submit, access=Access.PUBLIC),
    route(
        "GET", "/login/confirm/{token}", confirm_form, access=Access.PUBLIC, name="login_confirm"
    ),
    route("POST", "/login/confirm/{token}", confirm_submit, access=Access.PUBLIC),
    route("POST", "/logout", logout, access=Access.SELF, name="logout"),
    route("POST", "/switch-tenant", switch_tenant, access=Access.SELF, name="switch_tenant"),
]
