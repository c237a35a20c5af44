"""What the browser tests share: a headless Debian Chromium driven by Playwright, and a real
`smsapp serve` process on a fresh database of either backend.

Browser tests run in their own pytest invocation (`pytest -m browser`, see scripts/test):
Playwright's event loop and pytest-aiohttp's must not share a process. They need Debian's
chromium at /usr/bin/chromium; without it they are skipped, unless
SMSAPP_TEST_REQUIRE_BROWSER=1, when they fail.

Screenshots land in test-artifacts/ (gitignored), for a human to look at.

A test module names this module in `pytest_plugins` (for the fixtures `chromium_path`,
`chromium`, `app_server`, `browser_ctx`) and imports its constants and helpers. Because that
import runs before pytest loads the plugin, assertion rewriting is left off here
(PYTEST_DONT_REWRITE); the assertions below carry their own messages.
"""

from __future__ import annotations

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
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect

from tests.conftest import FreshDatabases
from tests.mailbox import SmtpServer, free_port

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
APP_ENV_PREFIXES = (
    "SMSAPP_",
    "DATABASE_URL",
    "PUBLIC_BASE_URL",
    "SMTP_URL",
    "TWILIO_",
    "SANDBOX_",
    "METRICS_",
    "ALERT_",
)


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
    env: dict[str, str]  # the server's environment: `cli` runs commands against its database

    def cli(self, *args: str) -> str:
        return run_cli(self.env, *args)

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])


def _app_env(database_url: str, data_dir: Path, port: int, smtp_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(APP_ENV_PREFIXES)}
    env.update(
        {
            "SMSAPP_ENV": "development",
            "DATABASE_URL": database_url,
            "SMSAPP_DATA_DIR": str(data_dir),
            "SMSAPP_SECRET_KEY": SECRET_KEY,
            "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
            "SMTP_URL": smtp_url,
        }
    )
    return env


def run_cli(env: dict[str, str], *args: str) -> str:
    """`smsapp ARGS…` in a subprocess; its standard output."""
    done = subprocess.run(
        [sys.executable, "-m", "smsapp", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, f"smsapp {' '.join(args)} failed:\n{done.stdout}{done.stderr}"
    return done.stdout


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
    run_cli(env, "tenant", "create", "--name", TENANT_NAME, "--slug", "acme")
    run_cli(env, "user", "create", EMAIL, "--tenant", "acme", "--role", "admin")

    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "smsapp", "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    app = RunningApp(f"http://127.0.0.1:{port}", log_path, env)
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


def path_is(path: str) -> re.Pattern[str]:
    """Matches a full URL whose path is exactly `path` (any query string)."""
    return re.compile(rf"^https?://[^/]+{re.escape(path)}(\?.*)?$")


async def sign_in_with_cli_link(page: Page, app: RunningApp) -> None:
    """`smsapp login-link` prints the link on its last line; opening it shows a button."""
    link = app.cli("login-link", EMAIL).strip().splitlines()[-1]
    assert link.startswith(f"{app.base_url}/login/confirm/"), link
    await page.goto(link)
    await page.get_by_test_id("confirm-login").click()
    await expect(page).to_have_url(path_is("/admin/"))
    await expect(page.get_by_test_id("tenant-name")).to_have_text(TENANT_NAME)
