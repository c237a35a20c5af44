"""Acceptance (pack §9): a real `smsapp serve` killed with SIGKILL right after answering
redirects loses none of their hits: the next process folds what the killed one journaled, each
hit once. These tests start real processes and wait for them (boundedly)."""

from __future__ import annotations

import asyncio
import os
import time
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest

from smsapp.clock import SystemClock
from smsapp.config import DatabaseUrl
from smsapp.db import Database, Sql
from smsapp.tenancy import create_tenant
from tests.test_send_processes import healthy
from tests.test_serve_process import Server, clean_environment, free_port

pytestmark = pytest.mark.slow

PHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1_2 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.1.2 Mobile/15E148 Safari/604.1"
)
TOKEN = "KillTest01"
FOLD_LIMIT_S = 30.0


def serve(workdir: Path, database_url: DatabaseUrl) -> Server:
    env = clean_environment(
        DATABASE_URL=database_url.url,
        SMSAPP_DATA_DIR=str(workdir / "data"),
        SMSAPP_SECRET_KEY="test-secret-key-0123456789abcdef0123456789",
    )
    return Server(workdir, free_port(), env)


async def stored(db: Database) -> tuple[int, int]:
    row = await db.one(
        Sql("SELECT clicks_total, (SELECT count(*) FROM short_link_hits) AS hits"
            " FROM short_links WHERE token = :t"),
        t=TOKEN,
    )  # fmt: skip
    assert row is not None
    return int(row["clicks_total"]), int(row["hits"])


def journal_files(workdir: Path) -> list[str]:
    return sorted(name for _, _, names in os.walk(workdir / "data" / "hits") for name in names)


async def test_a_process_killed_after_answering_loses_no_hit(
    db: Database, database_url: DatabaseUrl, tmp_path: Path
) -> None:
    clock = SystemClock()
    tenant_id = await create_tenant(db, clock, name="Acme", slug="acme")
    await db.run(
        Sql("INSERT INTO short_links (token, tenant_id, target_url, expires_at, created_at,"
            " updated_at) VALUES (:token, :t, 'https://shop.example/', :e, :now, :now)"),
        token=TOKEN, t=tenant_id, e=clock.now() + timedelta(days=60), now=clock.now(),
    )  # fmt: skip

    first = serve(tmp_path, database_url)
    try:
        await healthy(first)
        async with aiohttp.ClientSession() as http:
            for n in range(60):
                url = f"http://127.0.0.1:{first.port}/s/{TOKEN}"
                headers = {"User-Agent": f"{PHONE} {n}"}
                async with http.get(url, headers=headers, allow_redirects=False) as response:
                    assert response.status == 302
        first.kill()  # at once: hits not folded yet
    finally:
        first.stop()
    assert (await stored(db))[0] <= 60

    second = serve(tmp_path, database_url)
    try:
        await healthy(second)
        deadline = time.monotonic() + FOLD_LIMIT_S
        while time.monotonic() < deadline:
            # The new process adopts the killed one's journal: folds it, then deletes it.
            if await stored(db) == (60, 60) and len(journal_files(tmp_path)) == 2:
                break
            await asyncio.sleep(0.1)  # a real process at work
        assert await stored(db) == (60, 60), second.stderr()
        # Only the new process's own files are left (its lock and its one segment).
        assert len(journal_files(tmp_path)) == 2, journal_files(tmp_path)
    finally:
        second.stop()
    assert await stored(db) == (60, 60)  # each hit once, whoever folded it
