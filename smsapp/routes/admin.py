"""The admin shell: dashboard, profile, users, API keys, audit log, tenants (operators)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from smsapp import audit
from smsapp.access import CALLER, ROLES, Access, route
from smsapp.api_keys import create_api_key
from smsapp.errors import ApiError, not_found, path_int
from smsapp.keys import CLOCK, DB, SETTINGS
from smsapp.magic_links import create_login_link
from smsapp.pages import flash, redirect, render
from smsapp.routes.login import deliver_login_link
from smsapp.tenancy import TenancyError, check_role, create_tenant, ensure_user

AUDIT_PAGE_SIZE = 50


async def dashboard(request: web.Request) -> web.StreamResponse:
    caller = request[CALLER]
    counts: dict[str, Any] = {}
    if caller.tenant_id is not None:
        counts = (
            await request.app[DB].one("admin.dashboard_counts", tenant_id=caller.tenant_id) or {}
        )
    return await render(request, "dashboard.html", {"counts": counts})


async def profile(request: web.Request) -> web.StreamResponse:
    return await render(request, "profile.html")


# --- users ---------------------------------------------------------------------------------


async def users_page(request: web.Request) -> web.StreamResponse:
    tenant_id = request[CALLER].require_tenant()
    members = await request.app[DB].all("admin.members", tenant_id=tenant_id)
    return await render(request, "users.html", {"members": members, "roles": ROLES})


async def invite_user(request: web.Request) -> web.StreamResponse:
    tenant_id = request[CALLER].require_tenant()
    db, clock, settings = request.app[DB], request.app[CLOCK], request.app[SETTINGS]
    form = await request.post()
    try:
        role = check_role(str(form.get("role") or ""))
        user_id = await ensure_user(db, clock, str(form.get("email") or ""))
    except TenancyError as exc:
        raise ApiError(400, "bad_request", str(exc)) from None
    async with db.transaction() as tx:
        await tx.run(
            "admin.reactivate_membership",
            user_id=user_id,
            tenant_id=tenant_id,
            role=role,
            now=clock.now(),
        )
        member = await tx.one("admin.member", tenant_id=tenant_id, user_id=user_id)
        assert member is not None
        await audit.record_request(
            request,
            tx,
            clock,
            "user.invite",
            target_type="user",
            target_id=user_id,
            details={"email": member["email"], "role": role},
        )
    link = await create_login_link(db, clock, settings, user_id=user_id, ip=request.remote)
    deliver_login_link(request.app, member["email"], link)
    response = redirect("/admin/users")
    flash(request, response, f"Invited {member['email']} as {role}; a sign-in link is on its way.")
    raise response


async def _member_or_404(request: web.Request) -> tuple[int, dict[str, Any]]:
    tenant_id = request[CALLER].require_tenant()
    user_id = path_int(request, "user_id", "user")
    member = await request.app[DB].one("admin.member", tenant_id=tenant_id, user_id=user_id)
    if member is None:
        raise not_found("user")
    return tenant_id, member


async def _keep_an_admin(request: web.Request, tenant_id: int, user_id: int) -> None:
    others = await request.app[DB].val(
        "admin.other_active_admins", tenant_id=tenant_id, user_id=user_id
    )
    if not others:
        raise ApiError(409, "last_admin", "a tenant needs at least one active admin")


async def set_user_role(request: web.Request) -> web.StreamResponse:
    tenant_id, member = await _member_or_404(request)
    db, clock = request.app[DB], request.app[CLOCK]
    form = await request.post()
    try:
        role = check_role(str(form.get("role") or ""))
    except TenancyError as exc:
        raise ApiError(400, "bad_request", str(exc)) from None
    if member["role"] == "admin" and role != "admin":
        await _keep_an_admin(request, tenant_id, member["user_id"])
    async with db.transaction() as tx:
        await tx.run(
            "admin.set_member_role",
            tenant_id=tenant_id,
            user_id=member["user_id"],
            role=role,
            now=clock.now(),
        )
        await audit.record_request(
            request,
            tx,
            clock,
            "user.set_role",
            target_type="user",
            target_id=member["user_id"],
            details={"from": member["role"], "to": role},
        )
    response = redirect("/admin/users")
    flash(request, response, f"{member['email']} is now {role}.")
    raise response


async def _set_user_active(request: web.Request, active: bool) -> web.StreamResponse:
    tenant_id, member = await _member_or_404(request)
    db, clock = request.app[DB], request.app[CLOCK]
    if not active and member["role"] == "admin":
        await _keep_an_admin(request, tenant_id, member["user_id"])
    async with db.transaction() as tx:
        await tx.run(
            "admin.set_member_active",
            tenant_id=tenant_id,
            user_id=member["user_id"],
            active=active,
            now=clock.now(),
        )
        await audit.record_request(
            request,
            tx,
            clock,
            "user.reactivate" if active else "user.deactivate",
            target_type="user",
            target_id=member["user_id"],
        )
    response = redirect("/admin/users")
    flash(request, response, f"{member['email']} is {'active again' if active else 'deactivated'}.")
    raise response


async def deactivate_user(request: web.Request) -> web.StreamResponse:
    return await _set_user_active(request, False)


async def reactivate_user(request: web.Request) -> web.StreamResponse:
    return await _set_user_active(request, True)


# --- API keys ------------------------------------------------------------------------------


async def api_keys_page(request: web.Request, new_key: str | None = None) -> web.StreamResponse:
    tenant_id = request[CALLER].require_tenant()
    keys = await request.app[DB].all("admin.api_keys", tenant_id=tenant_id)
    return await render(
        request, "api_keys.html", {"keys": keys, "roles": ROLES, "new_key": new_key}
    )


async def create_key(request: web.Request) -> web.StreamResponse:
    caller = request[CALLER]
    tenant_id = caller.require_tenant()
    db, clock = request.app[DB], request.app[CLOCK]
    form = await request.post()
    name = str(form.get("name") or "").strip()
    try:
        role = check_role(str(form.get("role") or ""))
    except TenancyError as exc:
        raise ApiError(400, "bad_request", str(exc)) from None
    if not name or len(name) > 100:
        raise ApiError(400, "bad_request", "an API key needs a name of at most 100 characters")
    key_id, key = await create_api_key(
        db, clock, tenant_id=tenant_id, role=role, name=name, created_by=caller.user_id
    )
    await audit.record_request(
        request,
        db,
        clock,
        "api_key.create",
        target_type="api_key",
        target_id=key_id,
        details={"name": name, "role": role},
    )
    # Rendered directly (not redirected) so that the key appears once and is never stored.
    return await api_keys_page(request, new_key=key)


async def revoke_key(request: web.Request) -> web.StreamResponse:
    tenant_id = request[CALLER].require_tenant()
    db, clock = request.app[DB], request.app[CLOCK]
    key_id = path_int(request, "key_id", "API key")
    key = await db.one("admin.api_key_in_tenant", id=key_id, tenant_id=tenant_id)
    if key is None:
        raise not_found("API key")
    async with db.transaction() as tx:
        await tx.run("admin.revoke_api_key", id=key_id, tenant_id=tenant_id, now=clock.now())
        await audit.record_request(
            request,
            tx,
            clock,
            "api_key.revoke",
            target_type="api_key",
            target_id=key_id,
            details={"name": key["name"]},
        )
    response = redirect("/admin/api-keys")
    flash(request, response, f"Revoked the key {key['name']!r}.")
    raise response


# --- audit log -----------------------------------------------------------------------------


def _day(raw: str) -> datetime | None:
    try:
        return datetime.combine(date.fromisoformat(raw), datetime.min.time(), UTC) if raw else None
    except ValueError:
        raise ApiError(400, "bad_request", f"{raw!r} is not a date (YYYY-MM-DD)") from None


async def audit_page(request: web.Request) -> web.StreamResponse:
    tenant_id = request[CALLER].require_tenant()
    db = request.app[DB]
    filters = {k: request.query.get(k, "").strip() for k in ("action", "actor", "since", "until")}
    page_raw = request.query.get("page", "1")
    page = int(page_raw) if page_raw.isdigit() and int(page_raw) > 0 else 1
    until = _day(filters["until"])
    rows = await db.all(
        "audit.list",
        tenant_id=tenant_id,
        action=filters["action"] or None,
        actor=filters["actor"].lower() or None,
        since=_day(filters["since"]),
        until=until + timedelta(days=1) if until else None,
        limit=AUDIT_PAGE_SIZE + 1,
        offset=(page - 1) * AUDIT_PAGE_SIZE,
    )

    def query_for(n: int) -> str:
        return urlencode({**{k: v for k, v in filters.items() if v}, "page": n})

    return await render(
        request,
        "audit.html",
        {
            "entries": rows[:AUDIT_PAGE_SIZE],
            "has_more": len(rows) > AUDIT_PAGE_SIZE,
            "page": page,
            "filters": filters,
            "actions": [r["action"] for r in await db.all("audit.actions", tenant_id=tenant_id)],
            "query_for": query_for,
        },
    )


# --- tenants (platform operators) ----------------------------------------------------------


async def tenants_page(request: web.Request) -> web.StreamResponse:
    tenants = await request.app[DB].all("admin.tenants_with_members")
    return await render(request, "tenants.html", {"tenants": tenants})


async def create_tenant_from_form(request: web.Request) -> web.StreamResponse:
    db, clock = request.app[DB], request.app[CLOCK]
    form = await request.post()
    name, slug = str(form.get("name") or ""), str(form.get("slug") or "").strip()
    admin_email = str(form.get("admin_email") or "").strip()
    try:
        tenant_id = await create_tenant(db, clock, name=name, slug=slug)
        admin_id = await ensure_user(db, clock, admin_email) if admin_email else None
    except TenancyError as exc:
        raise ApiError(400, "bad_request", str(exc)) from None
    if admin_id is not None:
        await db.run(
            "admin.reactivate_membership",
            user_id=admin_id,
            tenant_id=tenant_id,
            role="admin",
            now=clock.now(),
        )
    await audit.record_request(
        request,
        db,
        clock,
        "tenant.create",
        target_type="tenant",
        target_id=tenant_id,
        tenant_id=tenant_id,
        details={"slug": slug, "admin": admin_email or None},
    )
    if admin_id is not None:
        link = await create_login_link(
            db, clock, request.app[SETTINGS], user_id=admin_id, ip=request.remote
        )
        deliver_login_link(request.app, admin_email.lower(), link)
    response = redirect("/admin/tenants")
    flash(request, response, f"Created tenant {slug}.")
    raise response


routes = [
    route("GET", "/admin/", dashboard, access=Access.SELF, name="dashboard"),
    route("GET", "/admin/profile", profile, access=Access.SELF, name="profile"),
    route("GET", "/admin/users", users_page, access=Access.ADMIN, name="users"),
    route("POST", "/admin/users", invite_user, access=Access.ADMIN),
    route("POST", "/admin/users/{user_id}/role", set_user_role, access=Access.ADMIN),
    route("POST", "/admin/users/{user_id}/deactivate", deactivate_user, access=Access.ADMIN),
    route("POST", "/admin/users/{user_id}/reactivate", reactivate_user, access=Access.ADMIN),
    route("GET", "/admin/api-keys", api_keys_page, access=Access.ADMIN, name="api_keys"),
    route("POST", "/admin/api-keys", create_key, access=Access.ADMIN),
    route("POST", "/admin/api-keys/{key_id}/revoke", revoke_key, access=Access.ADMIN),
    route("GET", "/admin/audit", audit_page, access=Access.VIEWER, name="audit"),
    route("GET", "/admin/tenants", tenants_page, access=Access.OPERATOR, name="tenants"),
    route("POST", "/admin/tenants", create_tenant_from_form, access=Access.OPERATOR),
]
