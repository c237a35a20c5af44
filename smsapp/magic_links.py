"""Magic-link login (pack §14): 32 random bytes, stored as sha-256, 15 minutes, single use.

The login form answers the same whether or not the address belongs to anyone; it is
rate-limited per address and per IP. Opening a link only shows a confirm button: mail scanners
that prefetch links must not burn them, so only the POST consumes the token.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from smsapp.clock import Clock
from smsapp.config import Settings
from smsapp.db import Database
from smsapp.tenancy import TenancyError, normalise_email
from smsapp.tokens import new_token, token_hash

log = logging.getLogger("smsapp.login")

TOKEN_TTL = timedelta(minutes=15)
RATE_WINDOW = timedelta(minutes=15)
MAX_PER_EMAIL = 5
MAX_PER_IP = 20


@dataclass(frozen=True)
class LoginRequest:
    outcome: Literal["sent", "rate_limited", "invalid_email"]
    email: str
    link: str | None = None  # only when the address belongs to an active user


def confirm_url(settings: Settings, token: str) -> str:
    return f"{settings.public_base_url}/login/confirm/{token}"


async def create_login_link(
    db: Database, clock: Clock, settings: Settings, *, user_id: int, ip: str | None
) -> str:
    token = new_token(32)
    now = clock.now()
    await db.run(
        "people.insert_login_token",
        user_id=user_id,
        token_hash=token_hash(token),
        expires_at=now + TOKEN_TTL,
        ip=ip,
        now=now,
    )
    return confirm_url(settings, token)


async def request_login(
    db: Database, clock: Clock, settings: Settings, *, email: str, ip: str | None
) -> LoginRequest:
    """Record the request and make a link when the address is an active user's.
    The caller answers the same in both cases; only `link` differs."""
    try:
        address = normalise_email(email)
    except TenancyError:
        return LoginRequest("invalid_email", email)
    now = clock.now()
    since = now - RATE_WINDOW
    by_email = await db.val("people.login_requests_by_email", email=address, since=since)
    by_ip = await db.val("people.login_requests_by_ip", ip=ip, since=since) if ip else 0
    if by_email >= MAX_PER_EMAIL or by_ip >= MAX_PER_IP:
        log.warning("login requests rate-limited", extra={"email": address, "ip": ip})
        return LoginRequest("rate_limited", address)
    await db.run("people.record_login_request", email=address, ip=ip, now=now)
    user = await db.one("people.active_user_by_email", email=address)
    if user is None:
        return LoginRequest("sent", address)
    link = await create_login_link(db, clock, settings, user_id=user["id"], ip=ip)
    return LoginRequest("sent", address, link)


async def token_is_valid(db: Database, clock: Clock, token: str) -> bool:
    if not token or len(token) > 200:
        return False
    row = await db.one("people.login_token_valid", token_hash=token_hash(token), now=clock.now())
    return row is not None


async def consume_login_token(db: Database, clock: Clock, token: str) -> int | None:
    """The user id when the token was valid and unused (and is now used), else None."""
    if not token or len(token) > 200:
        return None
    async with db.transaction() as tx:
        user_id = await tx.val(
            "people.consume_login_token", token_hash=token_hash(token), now=clock.now()
        )
    return None if user_id is None else int(user_id)
