from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp.test_utils import TestClient

from smsapp.clock import ManualClock


async def test_it_answers_healthz_with_ok_and_a_utc_timestamp(
    client: TestClient[Any, Any], clock: ManualClock
) -> None:
    response = await client.get("/healthz")
    assert response.status == 200
    body = await response.json()
    assert body == {"ok": True, "ts": "2026-01-05T00:00:00Z"}
    assert datetime.fromisoformat(body["ts"]) == clock.now()


async def test_it_is_ready_when_the_database_answers_and_migrations_are_current(
    client: TestClient[Any, Any],
) -> None:
    response = await client.get("/readyz")
    body = await response.json()
    assert response.status == 200, body
    assert body["checks"] == {"database": "ok", "migrations": "ok"}
