"""Server-side sessions (pack §14): the cookie holds a random token, the database its sha-256.
Idle TTL 12 h, absolute 7 days, rotated at login, deleted at logout."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import timedelta

from aiohttp import web

from smsapp.access import Caller
from smsapp.clock import Clock
from smsapp.config import Settings
from smsapp.db import Database
from smsapp.tokens import new_token, token_hash

COOKIE = "smsapp_session"
IDLE_TTL = timedelta(hours=12)
ABSOLUTE_TTL = timedelta(days=7)
TOUCH_EVERY = timedelta(minutes=1)  # last_seen_at needs minute precision, not a write per request


@dataclass(frozen=True)
class NewSession:
    id: int
    token: str


async def start_session(
    db: Database,
    clock: Clock,
    *,
    user_id: int,
    ip: str | None,
    user_agent: str | None,
    replaces_token: str | None,
) -> NewSession:
    """A fresh session for the user; the one it replaces (if any) is deleted (rotation)."""
    now = clock.now()
    token = new_token(32)
    async with db.transaction() as tx:
        if replaces_token:
            await tx.run("people.delete_session_by_hash", token_hash=token_hash(replaces_token))
        first = await tx.one("people.first_membership", user_id=user_id)
        session_id: int = await tx.val(
            "people.insert_session",
            user_id=user_id,
            token_hash=token_hash(token),
            tenant_id=first["tenant_id"] if first else None,
            ip=ip,
            user_agent=(user_agent or "")[:300],
            expires_at=now + ABSOLUTE_TTL,
            now=now,
        )
        await tx.run("people.set_last_login", id=user_id, now=now)
    return NewSession(session_id, token)


async def session_caller(db: Database, clock: Clock, token: str) -> Caller | None:
    """The caller behind a session cookie, or None when it is unknown or expired."""
    if not token or len(token) > 200:
        return None
    row = await db.one("people.session_by_hash", token_hash=token_hash(token))
    if row is None:
        return None
    now = clock.now()
    if now >= row["expires_at"] or now - row["last_seen_at"] >= IDLE_TTL:
        await db.run("people.delete_session", id=row["id"])
        return None
    if now - row["last_seen_at"] >= TOUCH_EVERY:
        await db.run("people.touch_session", id=row["id"], now=now)
    tenant_id, role = row["tenant_id"], row["role"]
    if role is None:
        # No longer a member of the session's tenant: fall back to another membership.
        first = await db.one("people.first_membership", user_id=row["user_id"])
        tenant_id, role = (first["tenant_id"], first["role"]) if first else (None, None)
        if tenant_id != row["tenant_id"]:
            await db.run("people.set_session_tenant", id=row["id"], tenant_id=tenant_id)
    return Caller(
        kind="user",
        tenant_id=tenant_id,
        role=role,
        user_id=row["user_id"],
        session_id=row["id"],
        is_operator=row["is_operator"],
        email=row["email"],
    )


async def end_session(db: Database, session_id: int) -> None:
    await db.run("people.delete_session", id=session_id)


def csrf_token(settings: Settings, session_token: str) -> str:
    """The session's CSRF token: derived from the session, so nothing more is stored."""
    message = b"csrf:" + token_hash(session_token).encode()
    return hmac.new(settings.secret_key.encode(), message, hashlib.sha256).hexdigest()


def set_session_cookie(response: web.StreamResponse, settings: Settings, token: str) -> None:
    response.set_cookie(
        COOKIE,
        token,
        max_age=int(ABSOLUTE_TTL.total_seconds()),
        path="/",
        httponly=True,
        samesite="Lax",
        secure=settings.secure_cookies,
    )


def clear_session_cookie(response: web.StreamResponse, settings: Settings) -> None:
    response.del_cookie(
        COOKIE, path="/", samesite="Lax", secure=settings.secure_cookies, httponly=True
    )
