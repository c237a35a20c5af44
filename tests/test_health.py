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


async def test_it_is_not_ready_while_migrations_are_pending(
    aiohttp_client: Any, backend: str, fresh_databases: Any, tmp_path: Any, clock: ManualClock
) -> None:
    from smsapp.app import create_app
    from tests.conftest import make_settings

    empty = fresh_databases.make(backend, migrated=False)
    app = create_app(make_settings(empty, tmp_path / "data"), clock=clock, run_background=False)
    client = await aiohttp_client(app)
    response = await client.get("/readyz")
    body = await response.json()
    assert response.status == 503
    assert body["ok"] is False
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["migrations"].startswith("pending: 0001_initial_schema")
    assert "smsapp migrate" in body["checks"]["migrations"]
    health = await client.get("/healthz")
    assert health.status == 200  # liveness does not depend on the database


async def test_it_is_not_ready_when_the_database_stops_answering(
    client: TestClient[Any, Any],
) -> None:
    from smsapp.keys import DB

    await client.app[DB].close()
    response = await client.get("/readyz")
    body = await response.json()
    assert response.status == 503
    assert body["checks"]["database"].startswith("unreachable")
