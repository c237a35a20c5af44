"""Magic-link login against a real SMTP server (aiosmtpd), on both backends."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import DummyCookieJar
from aiohttp.test_utils import TestClient

from smsapp.app import create_app
from smsapp.clock import ManualClock
from smsapp.config import DatabaseUrl
from smsapp.db import Sql
from smsapp.keys import DB
from smsapp.tenancy import ensure_user, set_membership
from tests.conftest import TenantFactory, make_settings
from tests.mailbox import SmtpServer

EMAIL = "alice@example.com"


@pytest.fixture
async def mail_client(
    aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]],
    database_url: DatabaseUrl,
    tmp_path: Path,
    clock: ManualClock,
    smtp_server: SmtpServer,
) -> TestClient[Any, Any]:
    settings = make_settings(database_url, tmp_path / "data", SMTP_URL=smtp_server.url)
    return await aiohttp_client(
        create_app(settings, clock=clock, run_background=False), cookie_jar=DummyCookieJar()
    )


@pytest.fixture
async def alice(mail_client: TestClient[Any, Any], clock: ManualClock) -> int:
    from smsapp.tenancy import create_tenant

    db = mail_client.app[DB]
    tenant_id = await create_tenant(db, clock, name="Acme", slug="acme")
    user_id = await ensure_user(db, clock, EMAIL)
    await set_membership(db, clock, user_id=user_id, tenant_id=tenant_id, role="staff")
    return user_id


async def request_link(client: TestClient[Any, Any], smtp: SmtpServer, email: str = EMAIL) -> str:
    before = len(smtp.mailbox.messages)
    response = await client.post("/login", data={"email": email, "next": "/admin/"})
    assert response.status == 200
    assert "Check your email" in await response.text()
    await asyncio.to_thread(smtp.mailbox.wait_for, before + 1)
    link = smtp.mailbox.links()[-1]
    return link.split("/login/confirm/", 1)[1]


async def test_it_emails_a_link_whose_get_shows_a_button_and_whose_post_signs_in(
    mail_client: TestClient[Any, Any], alice: int, smtp_server: SmtpServer
) -> None:
    token = await request_link(mail_client, smtp_server)
    message = smtp_server.mailbox.messages[-1]
    assert message["To"] == EMAIL
    assert message["From"] == "login@smsapp.test"
    assert len(token) >= 43  # 32 random bytes, url-safe base64

    # A mail scanner's GET shows the confirm button and does not burn the link.
    for _ in range(2):
        page = await mail_client.get(f"/login/confirm/{token}")
        assert page.status == 200
        assert 'data-testid="confirm-login"' in await page.text()

    response = await mail_client.post(
        f"/login/confirm/{token}", data={"next": "/admin/"}, allow_redirects=False
    )
    assert response.status == 303
    assert response.headers["Location"] == "/admin/"
    cookie = response.cookies["smsapp_session"].value
    me = await mail_client.get("/api/me", headers={"Cookie": f"smsapp_session={cookie}"})
    body = await me.json()
    assert me.status == 200, body
    assert body["role"] == "staff"
    assert body["tenant"]["slug"] == "acme"
    assert body["user"]["email"] == EMAIL


async def test_it_answers_the_same_for_an_unknown_address_and_sends_nothing(
    mail_client: TestClient[Any, Any], alice: int, smtp_server: SmtpServer
) -> None:
    known = await mail_client.post("/login", data={"email": EMAIL})
    unknown = await mail_client.post("/login", data={"email": "nobody@example.com"})
    assert known.status == unknown.status == 200
    known_text = (await known.text()).replace(EMAIL, "X")
    unknown_text = (await unknown.text()).replace("nobody@example.com", "X")
    assert known_text == unknown_text
    await asyncio.to_thread(smtp_server.mailbox.wait_for, 1)
    assert [m["To"] for m in smtp_server.mailbox.messages] == [EMAIL]
    # Only the known address got a token, so no email for the other can still be on its way.
    tokens = await mail_client.app[DB].all(Sql("SELECT user_id FROM login_tokens"))
    assert [t["user_id"] for t in tokens] == [alice]


async def test_it_refuses_an_expired_link(
    mail_client: TestClient[Any, Any], alice: int, smtp_server: SmtpServer, clock: ManualClock
) -> None:
    token = await request_link(mail_client, smtp_server)
    clock.advance(minutes=15, seconds=1)
    assert (await mail_client.get(f"/login/confirm/{token}")).status == 410
    response = await mail_client.post(f"/login/confirm/{token}", allow_redirects=False)
    assert response.status == 410
    assert "smsapp_session" not in response.cookies


async def test_it_accepts_a_link_just_before_it_expires(
    mail_client: TestClient[Any, Any], alice: int, smtp_server: SmtpServer, clock: ManualClock
) -> None:
    token = await request_link(mail_client, smtp_server)
    clock.advance(minutes=14, seconds=59)
    response = await mail_client.post(f"/login/confirm/{token}", allow_redirects=False)
    assert response.status == 303


async def test_it_refuses_a_reused_link(
    mail_client: TestClient[Any, Any], alice: int, smtp_server: SmtpServer
) -> None:
    token = await request_link(mail_client, smtp_server)
    first = await mail_client.post(f"/login/confirm/{token}", allow_redirects=False)
    assert first.status == 303
    second = await mail_client.post(f"/login/confirm/{token}", allow_redirects=False)
    assert second.status == 410
    assert "smsapp_session" not in second.cookies


@pytest.mark.parametrize("tamper", ["flip", "truncate", "extend", "empty-ish"])
async def test_it_refuses_a_tampered_link(
    mail_client: TestClient[Any, Any], alice: int, smtp_server: SmtpServer, tamper: str
) -> None:
    token = await request_link(mail_client, smtp_server)
    forged = {
        "flip": token[:-1] + ("A" if token[-1] != "A" else "B"),
        "truncate": token[:-2],
        "extend": token + "x",
        "empty-ish": "x",
    }[tamper]
    response = await mail_client.post(f"/login/confirm/{forged}", allow_redirects=False)
    assert response.status == 410
    # The real one still works: a failed guess does not burn it.
    assert (await mail_client.post(f"/login/confirm/{token}", allow_redirects=False)).status == 303


async def test_it_lets_exactly_one_of_two_concurrent_confirmations_through(
    mail_client: TestClient[Any, Any], alice: int, smtp_server: SmtpServer
) -> None:
    token = await request_link(mail_client, smtp_server)
    responses = await asyncio.gather(
        *[mail_client.post(f"/login/confirm/{token}", allow_redirects=False) for _ in range(2)]
    )
    assert sorted(r.status for r in responses) == [303, 410]


async def test_it_rate_limits_login_requests_per_address(
    mail_client: TestClient[Any, Any], alice: int, clock: ManualClock
) -> None:
    for _ in range(5):
        assert (await mail_client.post("/login", data={"email": EMAIL})).status == 200
    assert (await mail_client.post("/login", data={"email": EMAIL})).status == 429
    # Unknown addresses are limited alike, so the limit reveals nothing.
    for _ in range(5):
        assert (await mail_client.post("/login", data={"email": "x@example.com"})).status == 200
    assert (await mail_client.post("/login", data={"email": "x@example.com"})).status == 429
    clock.advance(minutes=16)
    assert (await mail_client.post("/login", data={"email": EMAIL})).status == 200


async def test_it_rate_limits_login_requests_per_ip(
    mail_client: TestClient[Any, Any], alice: int
) -> None:
    for n in range(20):
        assert (await mail_client.post("/login", data={"email": f"u{n}@example.com"})).status == 200
    assert (await mail_client.post("/login", data={"email": "u99@example.com"})).status == 429


async def test_it_rejects_a_malformed_address_with_a_400_page(
    mail_client: TestClient[Any, Any],
) -> None:
    response = await mail_client.post("/login", data={"email": "not-an-address"})
    assert response.status == 400
    assert "not an email address" in await response.text()


async def test_it_never_redirects_off_site_after_login(
    mail_client: TestClient[Any, Any], alice: int, smtp_server: SmtpServer
) -> None:
    for target in ["https://evil.example/", "//evil.example/", "/\\evil.example"]:
        token = await request_link(mail_client, smtp_server)
        response = await mail_client.post(
            f"/login/confirm/{token}", data={"next": target}, allow_redirects=False
        )
        assert response.headers["Location"] == "/admin/"


async def test_it_logs_the_link_when_no_smtp_is_configured(
    client: TestClient[Any, Any],
    make_tenant: TenantFactory,
    clock: ManualClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    tenant = await make_tenant("acme")
    db = client.app[DB]
    user_id = await ensure_user(db, clock, EMAIL)
    await set_membership(db, clock, user_id=user_id, tenant_id=tenant.id, role="viewer")
    with caplog.at_level("INFO", logger="smsapp.login"):
        assert (await client.post("/login", data={"email": EMAIL})).status == 200
    assert any("/login/confirm/" in r.getMessage() for r in caplog.records)


async def test_it_signs_in_after_a_link_from_the_cli(
    client: TestClient[Any, Any], make_tenant: TenantFactory, clock: ManualClock
) -> None:
    from smsapp.keys import SETTINGS
    from smsapp.magic_links import create_login_link

    tenant = await make_tenant("acme")
    db = client.app[DB]
    user_id = await ensure_user(db, clock, EMAIL)
    await set_membership(db, clock, user_id=user_id, tenant_id=tenant.id, role="admin")
    link = await create_login_link(db, clock, client.app[SETTINGS], user_id=user_id, ip=None)
    token = link.rsplit("/", 1)[1]
    response = await client.post(f"/login/confirm/{token}", allow_redirects=False)
    assert response.status == 303
