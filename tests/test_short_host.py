"""The short host (pack §9): with SHORT_LINK_BASE_URL on a host of its own, that host serves
only the redirect, robots.txt and a plain root page; everything else there is 404. The public
host is served as before, and without a separate short host nothing changes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import DummyCookieJar
from aiohttp.test_utils import TestClient

from smsapp.api_keys import create_api_key
from smsapp.app import create_app
from smsapp.clock import ManualClock
from smsapp.config import DatabaseUrl
from smsapp.keys import DB
from smsapp.short_host import host_name, short_host
from smsapp.tenancy import create_tenant
from tests.conftest import make_settings

Client = TestClient[Any, Any]
PHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1_2 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.1.2 Mobile/15E148 Safari/604.1"
)
TARGET = "https://shop.example.com/sale"
SHORT = {"Host": "Go.Example"}
PUBLIC = {"Host": "app.example"}


@pytest.fixture
async def short_client(
    aiohttp_client: Callable[..., Awaitable[Client]],
    database_url: DatabaseUrl,
    tmp_path: Path,
    clock: ManualClock,
) -> Client:
    settings = make_settings(
        database_url, tmp_path / "data",
        PUBLIC_BASE_URL="https://app.example", SHORT_LINK_BASE_URL="https://go.example",
    )  # fmt: skip
    app = create_app(settings, clock=clock, run_background=False)
    return await aiohttp_client(app, cookie_jar=DummyCookieJar())


async def staff_key(client: Client, clock: ManualClock) -> str:
    db = client.app[DB]
    tenant_id = await create_tenant(db, clock, name="Acme", slug="acme")
    _, key = await create_api_key(db, clock, tenant_id=tenant_id, role="staff", name="k")
    return key


async def test_the_short_host_serves_only_links_robots_and_its_root_page(
    short_client: Client, clock: ManualClock
) -> None:
    key = await staff_key(short_client, clock)
    made = await short_client.post(
        "/api/short-links", json={"target_url": TARGET},
        headers={"Authorization": f"Bearer {key}", **PUBLIC},
    )  # fmt: skip
    assert made.status == 201, await made.text()
    link = await made.json()
    assert link["url"].startswith("https://go.example/s/")

    redirect = await short_client.get(
        f"/s/{link['token']}", headers={"User-Agent": PHONE, **SHORT}, allow_redirects=False
    )
    assert redirect.status == 302
    assert redirect.headers["Location"] == TARGET
    robots = await short_client.get("/robots.txt", headers=SHORT)
    assert robots.status == 200
    assert "Disallow: /s/" in await robots.text()
    root = await short_client.get("/", headers=SHORT, allow_redirects=False)
    assert root.status == 200
    assert "This is a link service of smsapp." in await root.text()
    missing = await short_client.get("/s/nosuchtoken1", headers=SHORT)
    assert missing.status == 404

    elsewhere = [("GET", "/admin/"), ("GET", "/login"), ("GET", "/healthz"),
                 ("GET", "/static/app.css"), ("GET", f"/api/short-links/{link['token']}"),
                 ("POST", "/api/short-links"), ("POST", "/"), ("GET", "/s/a/b")]  # fmt: skip
    for method, path in elsewhere:
        response = await short_client.request(
            method, path, headers={"Authorization": f"Bearer {key}", **SHORT},
            json={"target_url": TARGET}, allow_redirects=False,
        )  # fmt: skip
        assert response.status == 404, (method, path)

    # The public host is served as before, the redirect included.
    shown = await short_client.get(
        f"/api/short-links/{link['token']}", headers={"Authorization": f"Bearer {key}", **PUBLIC}
    )
    assert shown.status == 200
    assert (await shown.json())["clicks_total"] == 1
    login = await short_client.get("/login", headers=PUBLIC)
    assert login.status == 200
    root_public = await short_client.get("/", headers=PUBLIC, allow_redirects=False)
    assert "link service" not in await root_public.text()


def test_the_short_host_is_its_own_only_when_its_name_differs(
    database_url: DatabaseUrl, tmp_path: Path
) -> None:
    def host(**env: str) -> str | None:
        return short_host(make_settings(database_url, tmp_path, **env))

    assert host() is None
    assert host(PUBLIC_BASE_URL="https://app.example") is None
    assert host(PUBLIC_BASE_URL="https://app.example",
                SHORT_LINK_BASE_URL="https://APP.example:8443") is None  # fmt: skip
    assert host(PUBLIC_BASE_URL="https://app.example",
                SHORT_LINK_BASE_URL="https://Go.Example/") == "go.example"  # fmt: skip
    assert host_name("Go.Example:443") == "go.example"
    assert host_name("[::1]:8080") == "::1"
