"""The audit log as tests read it."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from smsapp.db import Sql
from smsapp.keys import DB


async def audit_entries(
    client: TestClient[Any, Any], tenant_id: int, action: str | None = None
) -> list[dict[str, Any]]:
    """The tenant's audit entries in the order they were written (only `action`'s, if given)."""
    rows: list[dict[str, Any]] = await client.app[DB].all(
        Sql(
            "SELECT action, user_id, api_key_id, target_type, target_id, details, ip "
            "FROM audit_log WHERE tenant_id = :t ORDER BY id"
        ),
        t=tenant_id,
    )
    return [r for r in rows if action is None or r["action"] == action]
