"""Templates and a campaign in a real Chromium against a real `smsapp serve`, on both backends
(pack §7, §8, §17): a template written while the live preview follows the typing (a curly
apostrophe turns it UCS-2 and a GSM replacement is offered), a campaign made with it, queued,
and its counts on the campaign page following actions done through the API, without a reload.
Then the same pages with JavaScript off: the server renders the preview on the Preview button.

Screenshots land in test-artifacts/campaign-<backend>-*.png, for a human to look at.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from http.client import HTTPConnection
from typing import Any
from urllib.parse import urlsplit

import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, Page, expect

from smsapp.encoding import analyse, render_for_count
from smsapp.short_links import TOKEN_LENGTH
from tests.browser_support import (
    ARTIFACTS,
    TENANT_NAME,
    RunningApp,
    path_is,
    sign_in_with_cli_link,
)

# The fixtures chromium, app_server and browser_ctx come from the shared module.
pytest_plugins = ["tests.browser_support"]
pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

FOOTER = f"{TENANT_NAME}: reply STOP to opt out"
FIRST_PART = "Hi {first_name}, our spring sale is on: {link}"
CURLY_PART = " It’s 20% off"
CAMPAIGN_URL = re.compile(r"^https?://[^/]+/admin/campaigns/(\d+)$")
LIVE_TIMEOUT = 15_000  # the page polls every 5 s


@pytest_asyncio.fixture(loop_scope="module")
async def js_ctx(chromium: Browser, app_server: RunningApp) -> AsyncIterator[BrowserContext]:
    """Like `browser_ctx`, with JavaScript on: the live preview and the live counts."""
    ctx = await chromium.new_context(
        base_url=app_server.base_url,
        viewport={"width": 1280, "height": 800},
        java_script_enabled=True,
    )
    ctx.set_default_timeout(10_000)
    try:
        yield ctx
    finally:
        await ctx.close()


async def screenshot(page: Page, backend: str, name: str) -> None:
    await page.screenshot(path=ARTIFACTS / f"campaign-{backend}-{name}.png", full_page=True)


class Api:
    """The JSON API with an admin key made by `smsapp api-key create`."""

    def __init__(self, app: RunningApp) -> None:
        self.base = app.base_url
        self.key = (
            app.cli(
                "api-key", "create", "--tenant", "acme", "--role", "admin", "--name", "browser test"
            )
            .strip()
            .splitlines()[-1]
        )

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        parts = urlsplit(self.base)
        connection = HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
        try:
            connection.request(
                method,
                path,
                body=None if body is None else json.dumps(body).encode(),
                headers={"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"},
            )
            response = connection.getresponse()
            data = response.read()
        finally:
            connection.close()
        assert response.status < 300, f"{method} {path}: {response.status} {data!r}"
        return json.loads(data or b"null")


def add_contacts(api: Api) -> None:
    """Three consented contacts tagged vip (one of them on the do-not-contact list), one not."""
    consent = (datetime.now(UTC) - timedelta(days=3)).isoformat()
    for phone, name, tags in [
        ("0412 000 001", "Ann", ["vip"]),
        ("0412 000 002", "Bob", ["vip"]),
        ("0412 000 003", "Cat", ["vip"]),
        ("0412 000 004", "Dan", ["news"]),
    ]:
        api.call("POST", "/api/contacts", {
            "phone": phone, "first_name": name, "tags": tags, "consent_at": consent,
            "consent_source": "shop sign-up",
        })  # fmt: skip
    api.call("POST", "/api/do-not-contact", {"phone": "0412 000 003", "reason": "asked"})


def expected(app: RunningApp, body: str) -> tuple[str, int, int]:
    """Encoding, units and segments of `body` as sent: the footer and {link} counted."""
    link_length = len(f"{app.base_url}/s/") + TOKEN_LENGTH
    counted = analyse(render_for_count(body, footer=FOOTER, link_length=link_length))
    return counted.encoding, counted.units, counted.segments


async def expect_preview(page: Page, encoding: str, units: int, segments: int) -> None:
    await expect(page.get_by_test_id("preview-encoding")).to_have_text(encoding)
    await expect(page.get_by_test_id("preview-units")).to_have_text(str(units))
    await expect(page.get_by_test_id("preview-segments")).to_have_text(str(segments))


async def test_a_campaign_from_template_to_live_counts(
    backend: str, app_server: RunningApp, js_ctx: BrowserContext
) -> None:
    api = Api(app_server)
    add_contacts(api)
    page = await js_ctx.new_page()
    await sign_in_with_cli_link(page, app_server)
    nav = page.get_by_role("navigation", name="Main")

    # Templates: none yet; the create form with its preview beside the message.
    await nav.get_by_role("link", name="Templates").click()
    await expect(page).to_have_url(path_is("/admin/templates"))
    await expect(page.get_by_test_id("templates")).to_contain_text("No templates yet.")
    await page.get_by_label("Name", exact=True).fill("Spring sale")
    message = page.get_by_label("Message", exact=True)

    # The preview follows the typing: GSM-7 with the footer and the link counted…
    await message.press_sequentially(FIRST_PART)
    await expect_preview(page, *expected(app_server, FIRST_PART))
    await expect(page.get_by_test_id("preview-message")).to_contain_text(
        f"Hi {{first_name}}, our spring sale is on: {app_server.base_url}/s/"
    )
    await expect(page.get_by_test_id("preview-message")).to_contain_text(FOOTER)
    await expect(page.get_by_test_id("preview-unicode")).to_be_hidden()
    # …and one curly apostrophe makes it UCS-2, with the GSM replacement offered.
    await message.press_sequentially(CURLY_PART)
    encoding, units, segments = expected(app_server, FIRST_PART + CURLY_PART)
    assert encoding == "UCS-2" and segments == 2
    await expect_preview(page, encoding, units, segments)
    await expect(page.get_by_test_id("preview-per-segment")).to_have_text("67")
    await expect(page.get_by_test_id("preview-unicode")).to_be_visible()
    await expect(page.get_by_test_id("preview-suggestions")).to_have_text(re.compile(r"’\s*→\s*'"))
    await screenshot(page, backend, "1-template-ucs2")
    await page.get_by_role("button", name="Replace them in the message").click()
    await expect(message).to_have_value(FIRST_PART + " It's 20% off")
    await expect_preview(page, *expected(app_server, FIRST_PART + " It's 20% off"))
    await expect(page.get_by_test_id("preview-unicode")).to_be_hidden()
    await screenshot(page, backend, "2-template-gsm")
    await page.get_by_role("button", name="Create template").click()
    await expect(page.get_by_role("status")).to_have_text("Template 'Spring sale' created.")
    await expect(page.get_by_test_id("template-status")).to_have_text("active")

    # A campaign with it, for the vip tag.
    await nav.get_by_role("link", name="Campaigns").click()
    await expect(page.get_by_test_id("campaigns")).to_contain_text("No campaigns yet.")
    await page.get_by_test_id("new-campaign").click()
    await page.get_by_label("Name", exact=True).fill("Spring VIPs")
    await page.get_by_role("checkbox", name=re.compile("Spring sale")).check()
    await page.get_by_test_id("segment").select_option("vip")
    await expect(page.get_by_test_id("segment")).to_contain_text("Tagged “vip” (3)")
    await page.get_by_label("Link", exact=True).fill("https://shop.example/spring")
    await screenshot(page, backend, "3-new-campaign")
    await page.get_by_role("button", name="Create campaign").click()
    await expect(page).to_have_url(CAMPAIGN_URL)
    match = CAMPAIGN_URL.match(page.url)
    assert match
    campaign_id = int(match.group(1))
    await expect(page.get_by_test_id("campaign-status")).to_have_text("draft")
    await expect(page.get_by_test_id("sample-message")).to_contain_text(
        "Hi Ann, our spring sale is on: "
    )
    await expect(page.get_by_test_id("sample-message")).to_contain_text(FOOTER)
    await screenshot(page, backend, "4-campaign-draft")

    # Queue now: two messages wait, the do-not-contact one is skipped; the queue answer.
    await page.get_by_test_id("queue").click()
    await expect(page.get_by_role("status")).to_contain_text("Queued 3 new messages")
    await expect(page.get_by_test_id("campaign-status")).to_have_text("sending")
    await expect(page.get_by_test_id("count-queued")).to_have_text("2")
    await expect(page.get_by_test_id("count-skipped")).to_have_text("1")
    await expect(page.get_by_test_id("count-total")).to_have_text("3")
    await expect(page.get_by_test_id("queue-skipped")).to_contain_text("on the do-not-contact list")
    await expect(page.get_by_test_id("queue-cost")).to_have_text("$0.11")  # 2 × 5.5 cents
    await expect(page.get_by_test_id("pause")).to_be_visible()
    await expect(page.get_by_test_id("queue")).to_be_hidden()
    await expect(page.get_by_test_id("live-note")).to_contain_text("live", timeout=LIVE_TIMEOUT)
    await screenshot(page, backend, "5-queued")

    # Done through the API, seen on the page without a reload.
    assert api.call("POST", f"/api/campaigns/{campaign_id}/pause")["status"] == "paused"
    await expect(page.get_by_test_id("campaign-status")).to_have_text(
        "paused", timeout=LIVE_TIMEOUT
    )
    await expect(page.get_by_test_id("resume")).to_be_visible()
    await expect(page.get_by_test_id("pause")).to_be_hidden()
    await expect(page.get_by_test_id("queue-stale")).to_be_visible()
    assert api.call("POST", f"/api/campaigns/{campaign_id}/cancel")["status"] == "cancelled"
    await expect(page.get_by_test_id("count-cancelled")).to_have_text("2", timeout=LIVE_TIMEOUT)
    await expect(page.get_by_test_id("count-queued")).to_have_text("0")
    await expect(page.get_by_test_id("campaign-status")).to_have_text("cancelled")
    await expect(page.get_by_test_id("resume")).to_be_hidden()
    await expect(page.get_by_test_id("cancel")).to_be_hidden()
    await expect(page.get_by_test_id("live-note")).to_contain_text("updated")
    await screenshot(page, backend, "6-cancelled-live")

    # The list.
    await nav.get_by_role("link", name="Campaigns").click()
    row = page.get_by_test_id(f"campaign-{campaign_id}")
    await expect(row).to_contain_text("Spring VIPs")
    await expect(row).to_contain_text("cancelled")
    await expect(row).to_contain_text("Contacts tagged “vip”")
    await screenshot(page, backend, "7-list")


async def test_the_pages_work_without_javascript(
    backend: str, app_server: RunningApp, browser_ctx: BrowserContext
) -> None:
    api = Api(app_server)
    add_contacts(api)
    page = await browser_ctx.new_page()
    await sign_in_with_cli_link(page, app_server)

    # The Preview button asks the server for the panel; nothing is saved.
    await page.goto("/admin/templates")
    await page.get_by_label("Name", exact=True).fill("Quote")
    await page.get_by_label("Message", exact=True).fill("It’s on — see {link}")
    await page.get_by_role("button", name="Preview", exact=True).click()
    await expect_preview(page, *expected(app_server, "It’s on — see {link}"))
    await expect(page.get_by_test_id("preview-suggestions")).to_contain_text("’")
    await expect(page.get_by_test_id("preview-suggestions")).to_contain_text("—")
    await expect(page.get_by_role("button", name="Replace them in the message")).to_be_hidden()
    await expect(page.get_by_label("Message", exact=True)).to_have_value("It’s on — see {link}")
    await expect(page.get_by_test_id("templates")).to_contain_text("No templates yet.")
    await screenshot(page, backend, "8-nojs-preview")

    # A mistake is shown on the form, with what was typed.
    await page.get_by_label("Message", exact=True).fill("Hi {first name}")
    await page.get_by_role("button", name="Create template").click()
    await expect(page.get_by_test_id("form-error")).to_contain_text("braces are only")
    await expect(page.get_by_label("Message", exact=True)).to_have_value("Hi {first name}")
    await page.get_by_label("Message", exact=True).fill("Hi {first_name}, it's on")
    await page.get_by_role("button", name="Create template").click()
    await expect(page.get_by_role("status")).to_have_text("Template 'Quote' created.")

    # A campaign for everyone, queued; the cancel has its confirmation step.
    await page.get_by_role("link", name="New campaign with it").click()
    await expect(page.get_by_role("checkbox", name=re.compile("Quote"))).to_be_checked()
    await page.get_by_label("Name", exact=True).fill("Everyone")
    await page.get_by_role("button", name="Create campaign").click()
    await expect(page.get_by_test_id("campaign-status")).to_have_text("draft")
    await page.get_by_test_id("queue").click()
    await expect(page.get_by_test_id("count-queued")).to_have_text("3")
    await expect(page.get_by_test_id("count-skipped")).to_have_text("1")
    await expect(page.get_by_test_id("live-note")).to_contain_text("as of")
    await page.get_by_test_id("cancel").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Cancel “Everyone”?")
    await expect(page.locator("main")).to_contain_text("The 3 messages still waiting")
    await screenshot(page, backend, "9-nojs-cancel-confirm")
    await page.get_by_test_id("confirm-cancel").click()
    await expect(page.get_by_test_id("campaign-status")).to_have_text("cancelled")
    await expect(page.get_by_test_id("count-cancelled")).to_have_text("3")
