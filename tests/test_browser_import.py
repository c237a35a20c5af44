"""A contacts import in a real Chromium (JavaScript off) against a real `smsapp serve`, on both
backends: upload, preview, preview again with the mapping form, consent, commit, the
rejected-rows download and the list of past imports (pack §6).

Screenshots land in test-artifacts/import-<backend>-*.png, for a human to look at.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest
from playwright.async_api import BrowserContext, Page, expect

from tests.browser_support import (
    ARTIFACTS,
    EMAIL,
    RunningApp,
    path_is,
    sign_in_with_cli_link,
)

# The fixtures chromium, app_server and browser_ctx come from the shared module.
pytest_plugins = ["tests.browser_support"]
pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

CONSENT = "I confirm these contacts consented to receive marketing messages from us"
CONTACTS_CSV = (
    "Mobile,Email,First Name,Tags\r\n"
    "0412 345 678,ann@example.com,Ann,vip\r\n"  # row 2: create
    '0413 222 333,bob@example.com,Bob,"vip, newsletter"\r\n'  # row 3: create
    "12345,carl@example.com,Carl,newsletter\r\n"  # row 4: invalid_phone
    "+61 412 345 678,ann.other@example.com,Annie,\r\n"  # row 5: duplicate of row 2
    "0414 555 666,dee@example.com,Dee,\r\n"  # row 6: create
)
EXPECTED_COUNTS = {"create": "3", "update": "0", "invalid_phone": "1", "duplicate": "1",
                   "dnc": "0", "suppressed_by_cooldown": "0"}  # fmt: skip
IMPORT_URL = re.compile(r"^https?://[^/]+/admin/imports/(\d+)$")


async def screenshot(page: Page, backend: str, name: str) -> None:
    await page.screenshot(path=ARTIFACTS / f"import-{backend}-{name}.png", full_page=True)


async def expect_counts(page: Page, expected: dict[str, str]) -> None:
    for decision, n in expected.items():
        await expect(page.get_by_test_id(f"count-{decision}").locator(".big")).to_have_text(n)


def import_id(page: Page) -> int:
    match = IMPORT_URL.match(page.url)
    assert match, page.url
    return int(match.group(1))


async def test_a_csv_import_from_upload_to_commit_in_a_real_browser(
    backend: str, app_server: RunningApp, browser_ctx: BrowserContext, tmp_path: Path
) -> None:
    page = await browser_ctx.new_page()
    await sign_in_with_cli_link(page, app_server)

    # The list, empty, with the upload form; reached from the main navigation.
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Imports").click()
    await expect(page).to_have_url(path_is("/admin/imports"))
    await expect(page.get_by_role("heading", level=1)).to_have_text("Imports")
    await expect(page.locator("nav a[aria-current=page]")).to_have_attribute(
        "href", "/admin/imports"
    )
    await expect(page.get_by_test_id("imports")).to_contain_text("No imports yet.")
    await screenshot(page, backend, "1-list-empty")

    # Upload: the mapping is guessed from the header names and the preview is shown at once.
    upload = tmp_path / "spring-customers.csv"
    upload.write_text(CONTACTS_CSV, encoding="utf-8")
    await page.get_by_label("CSV file").set_input_files(upload)
    await page.get_by_role("button", name="Upload and preview").click()
    await expect(page).to_have_url(IMPORT_URL)
    first = import_id(page)
    await expect(page.get_by_role("status")).to_contain_text("Read 5 rows of spring-customers.csv")
    await expect(page.get_by_test_id("import-status")).to_have_text("dry run")
    await expect(page.get_by_test_id("preview-note")).to_contain_text("nothing has been imported")
    await expect_counts(page, EXPECTED_COUNTS)
    mapping = page.get_by_test_id("mapping")
    for field, header in [("Phone", "Mobile"), ("Email", "Email"),
                          ("First name", "First Name"), ("Tags", "Tags")]:  # fmt: skip
        await expect(mapping).to_contain_text(f"{field}{header}")
    decisions = page.get_by_test_id("decisions").locator("tbody tr")
    await expect(decisions).to_have_count(5)
    await expect(decisions.nth(0)).to_contain_text("+61412345678")
    await expect(decisions.nth(2)).to_contain_text("invalid_phone")
    await expect(decisions.nth(2)).to_contain_text("not a valid number")
    await expect(decisions.nth(3)).to_contain_text("same number as row 2")
    await expect(page.get_by_label(CONSENT)).to_have_attribute("required", "")
    await screenshot(page, backend, "2-preview")

    # "Change mapping" (a <details>, no script needed): every field pre-selected; preview again.
    await page.get_by_text("Change mapping").click()
    await expect(page.get_by_test_id("map-phone")).to_have_value("Mobile")
    await expect(page.get_by_test_id("map-first_name")).to_have_value("First Name")
    await expect(page.get_by_test_id("map-last_name")).to_have_value("")
    await page.get_by_test_id("map-last_name").select_option("First Name")
    await page.get_by_test_id("map-first_name").select_option("")
    await screenshot(page, backend, "3-change-mapping")
    await page.get_by_role("button", name="Preview again with this mapping").click()
    await expect(page).to_have_url(IMPORT_URL)
    second = import_id(page)
    assert second != first
    await expect(page.get_by_role("status")).to_contain_text(f"Import #{first} stays uncommitted")
    await expect(page.get_by_test_id("mapping")).to_contain_text("Last nameFirst Name")
    await expect_counts(page, EXPECTED_COUNTS)
    # …and back, so that the names land in first_name.
    await page.get_by_text("Change mapping").click()
    await page.get_by_test_id("map-first_name").select_option("First Name")
    await page.get_by_test_id("map-last_name").select_option("")
    await page.get_by_role("button", name="Preview again with this mapping").click()
    await expect(page).to_have_url(IMPORT_URL)
    third = import_id(page)
    await expect(page.get_by_test_id("mapping")).to_contain_text("First nameFirst Name")

    # Commit, after ticking the consent box.
    await page.get_by_label(CONSENT).check()
    await page.get_by_role("button", name="Import 3 contacts").click()
    await expect(page).to_have_url(path_is(f"/admin/imports/{third}"))
    await expect(page.get_by_role("status")).to_have_text(
        "Imported: 3 new contacts, 0 updated, 2 rows left out."
    )
    await expect(page.get_by_test_id("import-status")).to_have_text("committed")
    await expect_counts(page, EXPECTED_COUNTS)
    await expect(page.get_by_test_id("committed")).to_contain_text(EMAIL)
    await expect(page.get_by_label(CONSENT)).to_have_count(0)
    await screenshot(page, backend, "4-committed")

    # The rejected rows, downloaded as a file: the original columns plus decision and reason.
    async with page.expect_download() as download_info:
        await page.get_by_role("link", name="Download rejected rows (CSV)").click()
    download = await download_info.value
    assert download.suggested_filename == f"import-{third}-rejected.csv"
    saved = tmp_path / download.suggested_filename
    await download.save_as(saved)
    with saved.open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows == [
        ["Mobile", "Email", "First Name", "Tags", "decision", "reason"],
        ["12345", "carl@example.com", "Carl", "newsletter", "invalid_phone", "invalid_number"],
        ["'+61 412 345 678", "ann.other@example.com", "Annie", "", "duplicate",
         "duplicate_of_row:2"],
    ]  # fmt: skip

    # The list of past imports: the committed one and the two previews before it.
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Imports").click()
    table = page.get_by_test_id("imports")
    await expect(table.locator("tbody tr")).to_have_count(3)
    committed_row = page.get_by_test_id(f"import-{third}")
    cells = [
        " ".join((await c.inner_text()).split()) for c in await committed_row.locator("td").all()
    ]
    assert cells[:7] == [f"#{third}", "spring-customers.csv", "committed", "5", "3", "0", "2"]
    assert EMAIL in cells[7]
    for earlier in (first, second):
        await expect(page.get_by_test_id(f"import-{earlier}")).to_contain_text("dry run")
    await screenshot(page, backend, "5-list")

    # The contacts are there, with their names and tags.
    await page.get_by_role("link", name=f"#{third}").click()
    await expect(page).to_have_url(path_is(f"/admin/imports/{third}"))
    await page.goto("/admin/contacts")
    await expect(page.get_by_test_id("contact-count")).to_have_text("3 contacts.")
    await expect(page.locator("tbody")).to_contain_text("Bob")
    await expect(page.locator("tbody")).to_contain_text("vip, newsletter")


async def test_the_upload_asks_for_the_phone_column_when_none_looks_like_one(
    backend: str, app_server: RunningApp, browser_ctx: BrowserContext, tmp_path: Path
) -> None:
    page = await browser_ctx.new_page()
    await sign_in_with_cli_link(page, app_server)
    await page.goto("/admin/imports")
    upload = tmp_path / "members.csv"
    upload.write_text(
        "Member,Reach me on,Notes\nM-1,0412 000 001,hello\nM-2,,there\nM-3,ask Bob,\nM-4,?,\n",
        encoding="utf-8",
    )
    await page.get_by_label("CSV file").set_input_files(upload)
    await page.get_by_role("button", name="Upload and preview").click()

    # Nothing stored yet: the page asks for the column, with a select per field.
    await expect(page.get_by_test_id("upload-error")).to_contain_text(
        "Which column of members.csv holds the phone numbers?"
    )
    await expect(page.get_by_test_id("map-phone")).to_have_value("")
    await screenshot(page, backend, "6-choose-phone-column")
    await page.get_by_test_id("map-phone").select_option("Reach me on")
    await page.get_by_label("CSV file").set_input_files(upload)  # a browser cannot keep it
    await page.get_by_role("button", name="Upload and preview").click()

    await expect(page).to_have_url(IMPORT_URL)
    await expect(page.get_by_test_id("mapping")).to_have_text(
        re.compile(r"^\s*Phone\s*Reach me on\s*$")
    )
    await expect_counts(page, {"create": "1", "invalid_phone": "3"})
