"""Magic-link login in a real Chromium against a real `smsapp serve` process, on both backends.

Runs in its own pytest invocation (`pytest -m browser`, see scripts/test): Playwright's event
loop and pytest-aiohttp's must not share a process. Needs Debian's chromium at /usr/bin/chromium;
without it the tests are skipped, unless SMSAPP_TEST_REQUIRE_BROWSER=1, when they fail.

Screenshots of every page visited land in test-artifacts/ (gitignored), for a human to look at.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from http.client import HTTPConnection
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, Cookie, Page, async_playwright, expect

from tests.conftest import FreshDatabases
from tests.mailbox import SmtpServer, free_port

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

CHROMIUM = Path("/usr/bin/chromium")
REQUIRE_BROWSER = os.environ.get("SMSAPP_TEST_REQUIRE_BROWSER") == "1"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
SECRET_KEY = "browser-test-secret-key-0123456789abcdefgh"  # 40+ characters
STARTUP_TIMEOUT = 15.0
EMAIL = "alice@example.com"
TENANT_NAME = "Acme Pty Ltd"
SESSION_COOKIE = "smsapp_session"
# Only the app's own variables are replaced; PATH, HOME and the like pass through.
APP_ENV_PREFIXES = ("SMSAPP_", "DATABASE_URL", "PUBLIC_BASE_URL", "SMTP_URL", "TWILIO_",
                    "SANDBOX_", "METRICS_", "ALERT_")


@pytest.fixture(scope="module")
def chromium_path() -> Path:
    """Checked here, not at import, so that `pytest -m "not browser"` never trips over it."""
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing (apt-get install chromium)"
        if REQUIRE_BROWSER:
            pytest.fail(f"SMSAPP_TEST_REQUIRE_BROWSER=1 but {message}", pytrace=False)
        pytest.skip(f"{message}; set SMSAPP_TEST_REQUIRE_BROWSER=1 to fail instead")
    ARTIFACTS.mkdir(exist_ok=True)
    return CHROMIUM


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def chromium(chromium_path: Path) -> AsyncIterator[Browser]:
    """One headless Chromium for the whole module; each test gets its own context."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(chromium_path), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            await browser.close()


@dataclass
class RunningApp:
    base_url: str
    log_path: Path

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])


def _app_env(database_url: str, data_dir: Path, port: int, smtp_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(APP_ENV_PREFIXES)}
    env.update({
        "SMSAPP_ENV": "development",
        "DATABASE_URL": database_url,
        "SMSAPP_DATA_DIR": str(data_dir),
        "SMSAPP_SECRET_KEY": SECRET_KEY,
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "SMTP_URL": smtp_url,
    })
    return env


def _cli(env: dict[str, str], *args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "smsapp", *args],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, f"smsapp {' '.join(args)} failed:\n{done.stdout}{done.stderr}"


def _healthy(port: int) -> bool:
    connection = HTTPConnection("127.0.0.1", port, timeout=1)
    try:
        connection.request("GET", "/healthz")
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


@pytest.fixture
def app_server(
    backend: str,
    fresh_databases: FreshDatabases,
    sqlite_template: Path,
    smtp_server: SmtpServer,
    tmp_path: Path,
) -> Iterator[RunningApp]:
    """`smsapp serve` in a subprocess on a fresh database holding Acme and its admin alice."""
    database = fresh_databases.make(backend, sqlite_template=sqlite_template)
    port = free_port()
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    env = _app_env(database.url, data_dir, port, smtp_server.url)
    _cli(env, "tenant", "create", "--name", TENANT_NAME, "--slug", "acme")
    _cli(env, "user", "create", EMAIL, "--tenant", "acme", "--role", "admin")

    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "smsapp", "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    app = RunningApp(f"http://127.0.0.1:{port}", log_path)
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not _healthy(port):
            if process.poll() is not None:
                pytest.fail(f"smsapp serve exited with {process.returncode}:\n{app.log_tail()}")
            if time.monotonic() > deadline:
                pytest.fail(
                    f"smsapp serve not healthy after {STARTUP_TIMEOUT:.0f} s:\n{app.log_tail()}"
                )
            time.sleep(0.1)
        yield app
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest_asyncio.fixture(loop_scope="module")
async def browser_ctx(chromium: Browser, app_server: RunningApp) -> AsyncIterator[BrowserContext]:
    """A fresh browser profile (no cookies, no JavaScript) pointed at the app. Not named
    `context`: pytest-playwright-asyncio owns that name and would parametrise over browsers."""
    ctx = await chromium.new_context(
        base_url=app_server.base_url,
        viewport={"width": 1280, "height": 800},
        java_script_enabled=False,  # the pages must work without it
    )
    ctx.set_default_timeout(10_000)
    try:
        yield ctx
    finally:
        await ctx.close()


async def screenshot(page: Page, backend: str, name: str) -> None:
    await page.screenshot(path=ARTIFACTS / f"login-{backend}-{name}.png", full_page=True)


async def session_cookies(context: BrowserContext) -> list[Cookie]:
    return [c for c in await context.cookies() if c.get("name") == SESSION_COOKIE]


def path_is(path: str) -> re.Pattern[str]:
    """Matches a full URL whose path is exactly `path` (any query string)."""
    return re.compile(rf"^https?://[^/]+{re.escape(path)}(\?.*)?$")


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
