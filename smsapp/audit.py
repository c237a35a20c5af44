"""The audit log: who (user or API key) did what to which target, when, from where."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from smsapp.access import CALLER, Caller
from smsapp.clock import Clock
from smsapp.db import Executor


def client_ip(request: web.Request) -> str | None:
    return request.remote


async def record(
    db: Executor,
    clock: Clock,
    *,
    caller: Caller | None,
    action: str,
    tenant_id: int | None,
    target_type: str | None = None,
    target_id: object = None,
    details: dict[str, Any] | None = None,
    ip: str | None = None,
    user_id: int | None = None,
) -> None:
    await db.run(
        "audit.insert",
        tenant_id=tenant_id,
        user_id=caller.user_id if caller else user_id,
        api_key_id=caller.api_key_id if caller else None,
        action=action,
        target_type=target_type,
        target_id=None if target_id is None else str(target_id),
        details=details or {},
        ip=ip,
        now=clock.now(),
    )


async def record_request(
    request: web.Request,
    db: Executor,
    clock: Clock,
    action: str,
    *,
    target_type: str | None = None,
    target_id: object = None,
    details: dict[str, Any] | None = None,
    tenant_id: int | None = None,
) -> None:
    """Record an action of the request's caller in the caller's tenant."""
    caller = request.get(CALLER)
    await record(
        db,
        clock,
        caller=caller,
        action=action,
        tenant_id=tenant_id if tenant_id is not None else (caller.tenant_id if caller else None),
        target_type=target_type,
        target_id=target_id,
        details=details,
        ip=client_ip(request),
    )
