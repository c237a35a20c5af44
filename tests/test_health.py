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
    assert body["checks"] == {"database": "ok", "migrations": "ok", "hit_journal": "ok"}


async def test_it_is_not_ready_when_the_hit_journal_is_gone(
    client: TestClient[Any, Any],
) -> None:
    """Each redirect journals its hit first (smsapp/hit_writer.py): a journal deleted under
    the app would take hits no fold can find."""
    import shutil

    from smsapp.hit_writer import HIT_WRITER

    assert (await client.get("/readyz")).status == 200
    shutil.rmtree(client.app[HIT_WRITER].journal.directory)
    response = await client.get("/readyz")
    body = await response.json()
    assert response.status == 503
    assert body["checks"]["hit_journal"].startswith("missing: ")
    assert body["checks"]["database"] == "ok"


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
    assert "hit_journal" not in body["checks"]  # its tables come with the migrations
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
