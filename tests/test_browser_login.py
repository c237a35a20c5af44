"""Magic-link login in a real Chromium against a real `smsapp serve` process, on both backends.

Runs in its own pytest invocation (`pytest -m browser`, see scripts/test): Playwright's event
loop and pytest-aiohttp's must not share a process. Needs Debian's chromium at /usr/bin/chromium;
without it the tests are skipped, unless SMSAPP_TEST_REQUIRE_BROWSER=1, when they fail.

Screenshots of every page visited land in test-artifacts/ (gitignored), for a human to look at.
"""

from __future__ import annotations

import asyncio

import pytest
from playwright.async_api import BrowserContext, Cookie, Page, expect

from tests.browser_support import (
    ARTIFACTS,
    EMAIL,
    SESSION_COOKIE,
    TENANT_NAME,
    RunningApp,
    path_is,
)
from tests.mailbox import SmtpServer

# The fixtures chromium, app_server and browser_ctx come from the shared module.
pytest_plugins = ["tests.browser_support"]
pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]


async def screenshot(page: Page, backend: str, name: str) -> None:
    await page.screenshot(path=ARTIFACTS / f"login-{backend}-{name}.png", full_page=True)


async def session_cookies(context: BrowserContext) -> list[Cookie]:
    return [c for c in await context.cookies() if c.get("name") == SESSION_COOKIE]


async def test_magic_link_login_and_logout_in_a_real_browser(
    backend: str, app_server: RunningApp, browser_ctx: BrowserContext, smtp_server: SmtpServer
) -> None:
    context = browser_ctx
    page = await context.new_page()
    sign_in_heading = page.get_by_role("heading", name="Sign in", exact=True)

    # Signed out, the dashboard sends us to the login page.
    await page.goto("/admin/")
    await expect(page).to_have_url(path_is("/login"))
    await expect(sign_in_heading).to_be_visible()
    await screenshot(page, backend, "login")

    await page.get_by_label("Email address").fill(EMAIL)
    await page.get_by_role("button", name="Email me a sign-in link").click()
    await expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    await expect(page.get_by_test_id("login-sent")).to_contain_text(EMAIL)
    await screenshot(page, backend, "login-sent")

    messages = await asyncio.to_thread(smtp_server.mailbox.wait_for, 1, 10.0)
    assert messages[0]["To"] == EMAIL
    links = smtp_server.mailbox.links()
    assert len(links) == 1, links
    link = links[0]
    assert link.startswith(f"{app_server.base_url}/login/confirm/"), link

    # Opening the link (twice, as a mail scanner and then the user might) only shows a button.
    for _ in range(2):
        await page.goto(link)
        await expect(page.get_by_role("heading", name="Sign in to smsapp")).to_be_visible()
        await expect(page.get_by_test_id("confirm-login")).to_have_text("Sign in")
        await expect(page.locator("strong")).to_have_text(EMAIL)
    assert await session_cookies(context) == [], "opening the link must not sign anyone in"
    await screenshot(page, backend, "confirm")

    await page.get_by_test_id("confirm-login").click()
    await expect(page).to_have_url(path_is("/admin/"))
    await expect(page.get_by_test_id("tenant-name")).to_have_text(TENANT_NAME)
    await expect(page.get_by_role("heading", level=1)).to_have_text(TENANT_NAME)
    await expect(page.locator("header")).to_contain_text(EMAIL)
    await screenshot(page, backend, "dashboard")

    cookies = await session_cookies(context)
    assert len(cookies) == 1, await context.cookies()
    session = cookies[0]
    assert session.get("httpOnly") is True
    assert session.get("sameSite") == "Lax"
    assert session.get("path") == "/"

    # The link is spent: opening it again says so and does not sign in again.
    await page.goto(link)
    await expect(page.get_by_role("heading", name="This link no longer works")).to_be_visible()
    await expect(page.get_by_test_id("confirm-login")).to_have_count(0)

    # The admin pages render for the admin; creating a key goes through the CSRF-protected form.
    for path, heading in [("/admin/users", "Users"), ("/admin/api-keys", "API keys")]:
        await page.goto(path)
        await expect(page.get_by_role("heading", level=1)).to_have_text(heading)
        await expect(page.locator("nav a[aria-current=page]")).to_have_attribute("href", path)
    await expect(page.get_by_text("No keys yet.")).to_be_visible()
    await page.get_by_label("Name").fill("Website signup form")
    await page.get_by_label("Role").select_option("staff")
    await page.get_by_role("button", name="Create").click()
    await expect(page.get_by_test_id("new-key")).to_be_visible()
    await expect(page.locator("tbody")).to_contain_text("Website signup form")
    await screenshot(page, backend, "api-keys")

    await page.goto("/admin/users")
    await expect(page.locator("tbody")).to_contain_text(EMAIL)
    await screenshot(page, backend, "users")

    await page.goto("/admin/audit")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Audit log")
    await expect(page.locator("tbody")).to_contain_text("user.login")
    await expect(page.locator("tbody")).to_contain_text("api_key.create")
    await screenshot(page, backend, "audit")

    # Log out: back on the login page, the cookie gone, and the old session dead on the server.
    await page.goto("/admin/")
    await page.get_by_test_id("logout").click()
    await expect(page).to_have_url(path_is("/login"))
    await expect(sign_in_heading).to_be_visible()
    assert await session_cookies(context) == []
    await page.goto("/admin/")
    await expect(page).to_have_url(path_is("/login"))

    await context.add_cookies([{
        "name": SESSION_COOKIE, "value": session.get("value", ""),
        "url": app_server.base_url,
    }])
    await page.goto("/admin/")
    await expect(page).to_have_url(path_is("/login"))
    await expect(sign_in_heading).to_be_visible()
