"""Per-tenant API keys for machines: `Authorization: Bearer sk_…`, stored as sha-256."""

from __future__ import annotations

from datetime import timedelta

from smsapp.access import Caller
from smsapp.clock import Clock
from smsapp.db import Database
from smsapp.tenancy import check_role
from smsapp.tokens import new_token, token_hash

PREFIX = "sk_"
TOUCH_EVERY = timedelta(minutes=5)  # last_used_at is informative; don't write on every request


async def create_api_key(
    db: Database,
    clock: Clock,
    *,
    tenant_id: int,
    role: str,
    name: str,
    created_by: int | None = None,
) -> tuple[int, str]:
    """A new key: (its id, the key itself — shown once, never stored)."""
    if not name.strip():
        raise ValueError("an API key needs a name")
    key = PREFIX + new_token(32)
    key_id: int = await db.val(
        "api_keys.insert",
        tenant_id=tenant_id,
        name=name.strip(),
        role=check_role(role),
        key_hash=token_hash(key),
        key_prefix=key[:10],
        created_by=created_by,
        now=clock.now(),
    )
    return key_id, key


async def authenticate_api_key(db: Database, clock: Clock, key: str) -> Caller | None:
    if not key.startswith(PREFIX) or len(key) > 200:
        return None
    row = await db.one("api_keys.active_by_hash", key_hash=token_hash(key))
    if row is None:
        return None
    now = clock.now()
    if row["last_used_at"] is None or now - row["last_used_at"] > TOUCH_EVERY:
        await db.run("api_keys.touch", id=row["id"], now=now)
    return Caller(
        kind="api_key", tenant_id=row["tenant_id"], role=row["role"], api_key_id=row["id"]
    )
