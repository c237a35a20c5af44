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
from smsapp.db import Sql
from smsapp.hit_writer import HIT_WRITER
from smsapp.keys import DB, LINK_CACHE
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


# --- Tenants' own short hosts ------------------------------------------------------------------


async def tenant_with_host(client: Client, clock: ManualClock, slug: str, host: str) -> str:
    """A tenant whose own short host is `host`; its staff API key."""
    db = client.app[DB]
    tenant_id = await create_tenant(db, clock, name=slug.title(), slug=slug)
    await db.run(
        Sql("UPDATE tenants SET short_link_base_url = :u WHERE id = :t"),
        u=f"https://{host}",
        t=tenant_id,
    )
    _, key = await create_api_key(db, clock, tenant_id=tenant_id, role="staff", name="k")
    return key


async def link_of(client: Client, key: str) -> dict[str, Any]:
    made = await client.post(
        "/api/short-links", json={"target_url": TARGET},
        headers={"Authorization": f"Bearer {key}", **PUBLIC},
    )  # fmt: skip
    assert made.status == 201, await made.text()
    link: dict[str, Any] = await made.json()
    return link


async def follow(client: Client, token: str, host: str) -> Any:
    return await client.get(
        f"/s/{token}", headers={"User-Agent": PHONE, "Host": host}, allow_redirects=False
    )


async def hit_count(client: Client, token: str) -> int:
    await client.app[HIT_WRITER].fold()
    query = Sql("SELECT clicks_total FROM short_links WHERE token = :t")
    return int(await client.app[DB].val(query, t=token))


async def test_a_tenants_short_host_serves_its_links_only(
    short_client: Client, clock: ManualClock
) -> None:
    acme_key = await tenant_with_host(short_client, clock, "acme", "Acme.Link")
    other_key = await tenant_with_host(short_client, clock, "other", "other.link")
    acme, other = await link_of(short_client, acme_key), await link_of(short_client, other_key)
    assert acme["url"] == f"https://Acme.Link/s/{acme['token']}"

    # Acme's link is cached by its first hit, on the platform's short host.
    assert (await follow(short_client, acme["token"], "go.example")).status == 302
    clock.advance(seconds=5)
    assert (await follow(short_client, acme["token"], "acme.link:443")).status == 302
    # The cache never serves it on another tenant's host, nor the other's link on acme's.
    clock.advance(seconds=5)
    refused = await follow(short_client, acme["token"], "other.link")
    assert refused.status == 404
    assert "Location" not in refused.headers
    assert (await follow(short_client, other["token"], "acme.link")).status == 404
    assert await hit_count(short_client, acme["token"]) == 2
    assert await hit_count(short_client, other["token"]) == 0
    assert (await follow(short_client, other["token"], "other.link")).status == 302
    # The public host serves every link, and so does any host that is nobody's short host.
    clock.advance(seconds=5)
    assert (await follow(short_client, acme["token"], "app.example")).status == 302
    assert (await follow(short_client, other["token"], "localhost")).status == 302

    # A tenant's short host serves links, robots.txt and its root page, nothing else.
    headers = {"Authorization": f"Bearer {acme_key}", "Host": "acme.link"}
    assert (await short_client.get("/robots.txt", headers=headers)).status == 200
    root = await short_client.get("/", headers=headers)
    assert "This is a link service of smsapp." in await root.text()
    for method, path in [("GET", "/admin/"), ("GET", "/login"), ("GET", "/static/app.css"),
                         ("GET", f"/api/short-links/{acme['token']}"),
                         ("POST", "/api/short-links")]:  # fmt: skip
        response = await short_client.request(
            method, path, headers=headers, json={"target_url": TARGET}, allow_redirects=False
        )
        assert response.status == 404, (method, path)
    assert (await short_client.get("/login", headers={"Host": "localhost"})).status == 200


async def test_a_tenants_new_short_host_is_honoured_within_seconds(
    short_client: Client, clock: ManualClock
) -> None:
    key = await tenant_with_host(short_client, clock, "acme", "acme.link")
    token = (await link_of(short_client, key))["token"]
    assert (await follow(short_client, token, "acme.link")).status == 302
    await short_client.app[DB].run(
        Sql("UPDATE tenants SET short_link_base_url = 'https://new.link' WHERE slug = 'acme'")
    )
    clock.advance(seconds=5)  # the hosts read a moment ago still hold
    assert (await follow(short_client, token, "acme.link")).status == 302
    assert (await short_client.get("/login", headers={"Host": "new.link"})).status == 200
    clock.advance(seconds=6)  # past TENANT_HOSTS_TTL
    assert (await follow(short_client, token, "new.link")).status == 302
    assert (await short_client.get("/login", headers={"Host": "new.link"})).status == 404
    # The old host is nobody's short host now: an ordinary host again.
    assert (await short_client.get("/login", headers={"Host": "acme.link"})).status == 200


async def test_a_failure_of_the_redirect_answers_the_links_branded_page_on_every_host(
    short_client: Client, clock: ManualClock, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    """The redirect is a fast-path route that no middleware sees: it answers its own failures,
    with the page a person who tapped a link in a text message can read (no admin stylesheet),
    and a request id that its log line carries."""
    key = await staff_key(short_client, clock)
    token = (await link_of(short_client, key))["token"]

    async def broken(*args: Any) -> None:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(short_client.app[HIT_WRITER], "record", broken)
    monkeypatch.setattr(short_client.app[LINK_CACHE], "load", broken)
    for host, path in [("go.example", f"/s/{token}"), ("app.example", f"/s/{token}"),
                       ("app.example", "/s/Unknown123")]:  # fmt: skip
        caplog.clear()
        response = await short_client.get(path, headers={"User-Agent": PHONE, "Host": host})
        body = await response.text()
        assert response.status == 500 and response.content_type == "text/html"
        assert "Something went wrong on our side" in body and "<style>" in body
        assert "/static/" not in body
        assert response.headers["Cache-Control"] == "no-store"
        [failed] = [r for r in caplog.records if r.name == "smsapp.short_links"]
        assert failed.levelname == "ERROR" and failed.exc_info is not None
        assert response.headers["X-Request-ID"] in failed.getMessage()


async def test_the_short_hosts_error_pages_are_branded_and_self_contained(
    short_client: Client, clock: ManualClock
) -> None:
    key = await tenant_with_host(short_client, clock, "acme", "acme.link")
    token = (await link_of(short_client, key))["token"]
    await short_client.app[DB].run(
        Sql("UPDATE short_links SET expires_at = :now WHERE token = :t"), now=clock.now(), t=token
    )
    pages = [
        (404, "/s/nosuchtoken1", "go.example", "This link does not exist."),
        (404, "/admin/", "go.example", "There is nothing here."),
        (404, "/admin/", "acme.link", "There is nothing here."),
        (404, "/s/nosuchtoken1", "app.example", "This link does not exist."),
        (410, f"/s/{token}", "acme.link", "This link has expired."),
        (410, f"/s/{token}", "go.example", "This link has expired."),
    ]
    for status, path, host, message in pages:
        response = await short_client.get(path, headers={"User-Agent": PHONE, "Host": host})
        body = await response.text()
        assert response.status == status, (path, host)
        assert response.content_type == "text/html"
        assert response.headers["X-Robots-Tag"] == "noindex"
        assert response.headers["Cache-Control"] == "no-store"
        assert message in body
        assert f"Error {status}." in body
        assert '<span class="brand">smsapp</span>' in body
        assert "<style>" in body  # styled inline: a short host serves no /static
        assert "/static/" not in body and "/admin/" not in body
