"""Tenants, users and their memberships (roles per tenant)."""

from __future__ import annotations

import re

from smsapp.access import ROLES, Role
from smsapp.clock import Clock
from smsapp.db import Database, Row, is_unique_violation

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class TenancyError(ValueError):
    pass


def normalise_email(raw: str) -> str:
    email = raw.strip().lower()
    if not EMAIL.match(email):
        raise TenancyError(f"{raw!r} is not an email address")
    return email


def check_role(role: str) -> Role:
    if role not in ROLES:
        raise TenancyError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    return role


async def create_tenant(db: Database, clock: Clock, *, name: str, slug: str) -> int:
    if not SLUG.match(slug):
        raise TenancyError(
            f"slug {slug!r} must be lower-case letters, digits and dashes (at most 63)"
        )
    if not name.strip():
        raise TenancyError("a tenant needs a name")
    try:
        tenant_id: int = await db.val(
            "tenancy.insert_tenant", name=name.strip(), slug=slug, now=clock.now()
        )
    except Exception as exc:
        if is_unique_violation(exc):
            raise TenancyError(f"a tenant with slug {slug!r} already exists") from None
        raise
    return tenant_id


async def tenant_by_slug(db: Database, slug: str) -> Row:
    tenant = await db.one("tenancy.tenant_by_slug", slug=slug)
    if tenant is None:
        raise TenancyError(f"no tenant with slug {slug!r}")
    return tenant


async def ensure_user(
    db: Database, clock: Clock, email: str, *, is_operator: bool | None = None
) -> int:
    """The user's id, creating the user if new; `is_operator` set when given."""
    email = normalise_email(email)
    now = clock.now()
    async with db.transaction() as tx:
        user = await tx.one("tenancy.user_by_email", email=email)
        if user is None:
            user_id: int = await tx.val(
                "tenancy.insert_user", email=email, is_operator=bool(is_operator), now=now
            )
            return user_id
        if is_operator is not None and user["is_operator"] != is_operator:
            await tx.run("tenancy.set_operator", id=user["id"], is_operator=is_operator, now=now)
        return int(user["id"])


async def set_membership(
    db: Database, clock: Clock, *, user_id: int, tenant_id: int, role: str
) -> None:
    await db.run(
        "tenancy.upsert_membership",
        user_id=user_id,
        tenant_id=tenant_id,
        role=check_role(role),
        now=clock.now(),
    )
