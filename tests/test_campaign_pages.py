"""The template and campaign admin pages, on both backends: every page for a viewer, no write
forms and 403 for them, templates and campaigns created, queued, paused, resumed and cancelled
through the forms, validation errors shown on the form, the live preview endpoint's counting
(footer and {link}), and another tenant's ids (pack §2, §7, §8, §17)."""

from __future__ import annotations

import html
import re
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from smsapp.clock import ManualClock
from smsapp.db import Sql
from smsapp.keys import DB, SETTINGS
from smsapp.short_links import TOKEN_LENGTH
from tests.conftest import SignedIn, SignIn, TenantFactory, TenantFixture

Client = TestClient[Any, Any]
Form = dict[str, str] | list[tuple[str, str]]
FOOTER = "Acme: reply STOP to opt out"


@pytest.fixture
async def acme(make_tenant: TenantFactory) -> TenantFixture:
    return await make_tenant("acme")


@pytest.fixture
async def staff(sign_in: SignIn, acme: TenantFixture) -> SignedIn:
    return await sign_in("sam@example.com", tenant_id=acme.id, role="staff")


@pytest.fixture
async def viewer(sign_in: SignIn, acme: TenantFixture) -> SignedIn:
    return await sign_in("vic@example.com", tenant_id=acme.id, role="viewer")


# --- helpers ---------------------------------------------------------------------------------


async def add_contact(
    client: Client,
    tenant: TenantFixture,
    clock: ManualClock,
    phone: str,
    *,
    first_name: str = "Ann",
    tags: list[str] | None = None,
) -> int:
    now = clock.now()
    contact_id: int = await client.app[DB].val(Sql(
        "INSERT INTO contacts (tenant_id, phone_e164, first_name, country, tags, attributes, "
        "consent_source, consent_at, created_at, updated_at) VALUES (:t, :p, :f, 'AU', :tags, "
        "'{}', 'test', :now, :now, :now) RETURNING id"),
        t=tenant.id, p=phone, f=first_name, tags=tags or [], now=now)  # fmt: skip
    return contact_id


async def add_dnc(client: Client, tenant: TenantFixture, clock: ManualClock, phone: str) -> None:
    await client.app[DB].run(
        Sql(
            "INSERT INTO do_not_contact (tenant_id, phone_e164, source, created_at) "
            "VALUES (:t, :p, 'manual', :now)"
        ),
        t=tenant.id,
        p=phone,
        now=clock.now(),
    )


async def api_template(client: Client, tenant: TenantFixture, body: str, name: str = "T1") -> int:
    response = await client.post(
        "/api/templates", json={"name": name, "body": body}, headers=tenant.auth("staff")
    )
    assert response.status == 201, await response.text()
    return int((await response.json())["id"])


async def api_campaign(
    client: Client, tenant: TenantFixture, template_ids: list[int], **extra: Any
) -> int:
    response = await client.post(
        "/api/campaigns",
        json={"name": "Spring", "template_ids": template_ids, **extra},
        headers=tenant.auth("staff"),
    )
    assert response.status == 201, await response.text()
    return int((await response.json())["id"])


async def post_form(
    client: Client, user: SignedIn, path: str, data: Form | None = None
) -> aiohttp.ClientResponse:
    """A form as a browser sends it: the CSRF token in its hidden field, the session cookie."""
    fields = list(data.items()) if isinstance(data, dict) else list(data or [])
    return await client.post(
        path,
        data=[("csrf_token", user.csrf), *fields],
        headers=user.headers(),
        allow_redirects=False,
    )


async def page(client: Client, user: SignedIn, path: str) -> tuple[int, str]:
    response = await client.get(path, headers=user.headers(), allow_redirects=False)
    return response.status, html.unescape(await response.text())


def text_of(markup: str) -> str:
    """The page's text, tags dropped and whitespace folded, for assertions on what people read."""
    return " ".join(re.sub(r"<[^>]+>", " ", markup).split())


def redirected_to(response: aiohttp.ClientResponse, pattern: str) -> re.Match[str]:
    assert response.status == 303, response.status
    match = re.fullmatch(pattern, response.headers["Location"])
    assert match, response.headers["Location"]
    return match


def actions_shown(body: str) -> set[str]:
    """The campaign actions a page shows (the others are rendered hidden, for the live script
    to reveal when the status changes)."""
    shown = set()
    for tag in re.findall(r'<(?:form|a)\b[^>]*data-when="[^"]*"[^>]*>', body):
        if re.search(r"\shidden\b", tag):
            continue
        match = re.search(r'(?:action|href)="/admin/campaigns/\d+/(\w+)"', tag)
        assert match, tag
        shown.add(match.group(1))
    return shown


async def audit_actions(client: Client) -> list[str]:
    rows = await client.app[DB].all(Sql("SELECT action FROM audit_log ORDER BY id"))
    return [r["action"] for r in rows]


async def preview(
    client: Client, user: SignedIn, body: object, *, csrf: bool = True
) -> aiohttp.ClientResponse:
    return await client.post(
        "/admin/templates/preview", json={"body": body}, headers=user.headers(unsafe=csrf)
    )


def link_length(client: Client) -> int:
    return len(f"{client.app[SETTINGS].public_base_url}/s/") + TOKEN_LENGTH


# --- who sees what ---------------------------------------------------------------------------


async def test_every_page_renders_for_a_viewer_without_write_forms(
    client: Client, acme: TenantFixture, viewer: SignedIn, clock: ManualClock
) -> None:
    await add_contact(client, acme, clock, "+61412000001")
    template_id = await api_template(client, acme, "Hi {first_name}")
    campaign_id = await api_campaign(client, acme, [template_id])
    await client.post(f"/api/campaigns/{campaign_id}/queue", headers=acme.auth("staff"))

    for path, heading in [
        ("/admin/templates", "Templates"),
        (f"/admin/templates/{template_id}", "T1"),
        ("/admin/campaigns", "Campaigns"),
        (f"/admin/campaigns/{campaign_id}", "Spring"),
    ]:
        status, body = await page(client, viewer, path)
        assert status == 200, (path, status)
        assert re.search(rf"<h1>\s*{heading}\b", body), path
        posts = re.findall(r'<form method="post" action="([^"]+)"', body)
        assert posts == ["/logout"], (path, posts)
        for write in ("New campaign", "Queue now", "Create template", ">Pause<", "Cancel…"):
            assert write not in body, (path, write)
    _, listing = await page(client, viewer, "/admin/campaigns")
    assert "Spring" in listing and ">sending<" in listing
    _, shown = await page(client, viewer, f"/admin/campaigns/{campaign_id}")
    assert "Hi Ann\nAcme: reply STOP to opt out" in shown  # the sample message
    # The navigation leads there.
    assert '<a href="/admin/templates"' in listing and '<a href="/admin/campaigns"' in listing


async def test_viewers_get_403_on_every_write(
    client: Client, acme: TenantFixture, viewer: SignedIn
) -> None:
    template_id = await api_template(client, acme, "Hi")
    campaign_id = await api_campaign(client, acme, [template_id])
    for path in ("/admin/campaigns/new", f"/admin/campaigns/{campaign_id}/edit",
                 f"/admin/campaigns/{campaign_id}/cancel"):  # fmt: skip
        assert (await page(client, viewer, path))[0] == 403, path
    for path in (
        "/admin/templates",
        f"/admin/templates/{template_id}",
        f"/admin/templates/{template_id}/archive",
        f"/admin/templates/{template_id}/unarchive",
        "/admin/campaigns",
        f"/admin/campaigns/{campaign_id}/edit",
        f"/admin/campaigns/{campaign_id}/queue",
        f"/admin/campaigns/{campaign_id}/pause",
        f"/admin/campaigns/{campaign_id}/resume",
        f"/admin/campaigns/{campaign_id}/cancel",
    ):
        response = await post_form(client, viewer, path, {"name": "x", "body": "y"})
        assert response.status == 403, path
    shown = await (
        await client.get(f"/api/campaigns/{campaign_id}", headers=acme.auth("viewer"))
    ).json()
    assert shown["status"] == "draft" and shown["name"] == "Spring"
    assert await audit_actions(client) == ["template.create", "campaign.create"]  # the API's


# --- templates -------------------------------------------------------------------------------


async def test_staff_create_edit_archive_and_unarchive_a_template(
    client: Client, acme: TenantFixture, staff: SignedIn
) -> None:
    created = await post_form(
        client, staff, "/admin/templates", {"name": "Spring", "body": "Hi {first_name}\r\nSale!"}
    )
    template_id = int(redirected_to(created, r"/admin/templates/(\d+)").group(1))
    status, body = await page(client, staff, f"/admin/templates/{template_id}")
    assert status == 200 and "Hi {first_name}\nSale!</textarea>" in body  # CRLF stored as LF
    assert 'data-testid="preview-encoding">GSM-7' in body
    _, listing = await page(client, staff, "/admin/templates")
    assert re.search(r"Spring</a>.*?active.*?GSM-7.*?>1<", listing, re.S)

    saved = await post_form(
        client, staff, f"/admin/templates/{template_id}", {"name": "Spring", "body": "Hello"}
    )
    redirected_to(saved, rf"/admin/templates/{template_id}")
    archived = await post_form(client, staff, f"/admin/templates/{template_id}/archive")
    redirected_to(archived, rf"/admin/templates/{template_id}")
    row = await client.app[DB].one(
        Sql("SELECT body, active FROM message_templates WHERE id = :i"), i=template_id
    )
    assert row == {"body": "Hello", "active": False}
    _, body = await page(client, staff, f"/admin/templates/{template_id}")
    assert 'data-testid="template-status">archived' in body and "Make active again" in body
    await post_form(client, staff, f"/admin/templates/{template_id}/unarchive")
    assert await client.app[DB].val(
        Sql("SELECT active FROM message_templates WHERE id = :i"), i=template_id
    )
    assert await audit_actions(client) == [
        "template.create", "template.update", "template.update", "template.update",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("fields", "status", "message"),
    [
        ({"name": "Bad", "body": "Hi {first name}"}, 400, "braces are only for placeholders"),
        ({"name": "", "body": "Hi"}, 400, "a template needs a name"),
        ({"name": "Long", "body": "x" * 1601}, 400, "at most 1600 characters"),
        ({"name": "T1", "body": "Again"}, 409, "a template named 'T1' exists already"),
    ],
)
async def test_a_bad_template_form_is_shown_again_with_the_message(
    client: Client,
    acme: TenantFixture,
    staff: SignedIn,
    fields: dict[str, str],
    status: int,
    message: str,
) -> None:
    await api_template(client, acme, "First", name="T1")
    response = await post_form(client, staff, "/admin/templates", fields)
    assert response.status == status
    body = html.unescape(await response.text())
    assert message in text_of(body)
    assert f'value="{fields["name"]}"' in body  # what was typed stays in the form
    count = await client.app[DB].val(Sql("SELECT count(*) FROM message_templates"))
    assert count == 1


async def test_the_preview_button_shows_the_preview_without_saving(
    client: Client, acme: TenantFixture, staff: SignedIn
) -> None:
    response = await post_form(
        client,
        staff,
        "/admin/templates",
        {"name": "Quote", "body": "It’s on — now…", "action": "preview"},
    )
    assert response.status == 200
    body = html.unescape(await response.text())
    assert 'data-testid="preview-encoding">UCS-2' in body
    assert re.search(r'data-testid="preview-suggestions">\s*<li><code class="char">’</code>', body)
    assert "It’s on — now…</textarea>" in body
    assert await client.app[DB].val(Sql("SELECT count(*) FROM message_templates")) == 0

    template_id = await api_template(client, acme, "Saved text")
    edited = await post_form(
        client,
        staff,
        f"/admin/templates/{template_id}",
        {"name": "T1", "body": "Changed {link}", "action": "preview"},
    )
    body = html.unescape(await edited.text())
    assert edited.status == 200 and "not saved yet" in body
    assert "Changed http://127.0.0.1:8080/s/xxxxxxxxxx\nAcme: reply STOP to opt out" in body
    saved = await client.app[DB].val(
        Sql("SELECT body FROM message_templates WHERE id = :i"), i=template_id
    )
    assert saved == "Saved text"


async def test_the_preview_endpoint_counts_the_footer_and_the_link(
    client: Client, acme: TenantFixture, viewer: SignedIn
) -> None:
    link = link_length(client)
    response = await preview(client, viewer, "Hi {link}")
    assert response.status == 200
    answer = await response.json()
    assert answer["footer"] == FOOTER and answer["link_length"] == link
    assert answer["units"] == len("Hi ") + link + 1 + len(FOOTER)
    assert answer["encoding"] == "GSM-7" and answer["per_segment"] == 160
    assert answer["segments"] == 1 and answer["placeholders"] == ["link"]
    assert answer["message"] == f"Hi http://127.0.0.1:8080/s/{'x' * TOKEN_LENGTH}\n{FOOTER}"

    # A body that names the sender and carries the opt-out gets no footer.
    own = await (await preview(client, viewer, "Acme sale. Reply STOP to opt out")).json()
    assert own["footer"] is None and own["units"] == len("Acme sale. Reply STOP to opt out")

    # One curly apostrophe: UCS-2, counted in UTF-16 units, with its GSM replacement.
    quoted = await (await preview(client, viewer, "It’s on")).json()
    assert quoted["encoding"] == "UCS-2" and quoted["per_segment"] == 70
    assert quoted["unicode_characters"] == ["’"]
    assert quoted["suggestions"] == [{"character": "’", "replacement": "'"}]
    assert quoted["units"] == len("It’s on") + 1 + len(FOOTER)

    # Long enough for two parts once the footer is counted.
    long = await (await preview(client, viewer, "x" * 140)).json()
    assert long["segments"] == 2 and long["per_segment"] == 153

    # The tenant's own short host sets the link length.
    await client.app[DB].run(
        Sql("UPDATE tenants SET short_link_base_url = 'https://go.acme.example' WHERE id = :t"),
        t=acme.id,
    )
    custom = await (await preview(client, viewer, "{link}")).json()
    assert custom["link_length"] == len("https://go.acme.example/s/") + TOKEN_LENGTH

    # Errors in the API's shape; the CSRF header is required.
    bad = await preview(client, viewer, 42)
    assert bad.status == 400 and (await bad.json())["error"]["code"] == "bad_request"
    too_long = await preview(client, viewer, "x" * 1601)
    assert (await too_long.json())["error"]["code"] == "too_long"
    broken = await (await preview(client, viewer, "Hi {")).json()
    assert "braces are only for placeholders" in broken["problem"]
    assert (await preview(client, viewer, "Hi", csrf=False)).status == 403


# --- campaigns -------------------------------------------------------------------------------


async def test_staff_run_a_campaign_through_the_pages(
    client: Client, acme: TenantFixture, staff: SignedIn, clock: ManualClock
) -> None:
    await add_contact(client, acme, clock, "+61412000001", first_name="Ann", tags=["vip"])
    await add_contact(client, acme, clock, "+61412000002", first_name="Bob", tags=["vip"])
    await add_contact(client, acme, clock, "+61412000003", first_name="Cat", tags=["vip"])
    await add_contact(client, acme, clock, "+61412000004", first_name="Dan", tags=["news"])
    await add_dnc(client, acme, clock, "+61412000003")
    template_id = await api_template(client, acme, "Hi {first_name}, 20% off: {link}")
    other_id = await api_template(client, acme, "Hello {first_name}: {link}", name="T2")

    status, form = await page(client, staff, "/admin/campaigns/new")
    assert status == 200
    assert f'name="template_ids" value="{template_id}"' in form
    assert re.search(r'<option value="vip"\s*>Tagged “vip” \(3\)</option>', form)
    assert "All consented contacts (4)" in form

    created = await post_form(client, staff, "/admin/campaigns", [
        ("name", "Spring sale"), ("template_ids", str(template_id)),
        ("template_ids", str(other_id)), ("tag", "vip"),
        ("link_url", "https://shop.example/spring"), ("scheduled_at", ""),
    ])  # fmt: skip
    campaign_id = int(redirected_to(created, r"/admin/campaigns/(\d+)").group(1))
    url = f"/admin/campaigns/{campaign_id}"
    _, body = await page(client, staff, url)
    assert 'data-testid="campaign-status">draft' in body
    assert "Contacts tagged “vip” · 3 consented contacts" in text_of(body)
    assert actions_shown(body) == {"queue", "edit", "cancel"}
    assert "Hi Ann, 20% off: http://127.0.0.1:8080/s/" in body  # the sample, for Ann

    queued = await post_form(client, staff, f"{url}/queue")
    redirected_to(queued, url)
    _, body = await page(client, staff, url)
    shown = text_of(body)
    assert 'data-testid="campaign-status">sending' in body
    assert re.search(r'data-testid="count-queued">2<', body)
    assert re.search(r'data-testid="count-skipped">1<', body)
    assert re.search(r'data-testid="count-total">3<', body)
    assert "Waiting to send 2 Skipped" in shown
    assert "Skipped 1 1 on the do-not-contact list" in shown
    assert "Projected cost $0.11" in shown  # 2 × 5.5 cents
    assert "Fits today's budget no daily budget" in shown
    assert actions_shown(body) == {"pause", "cancel"}

    paused = await post_form(client, staff, f"{url}/pause")
    redirected_to(paused, url)
    _, body = await page(client, staff, url)
    assert 'data-testid="campaign-status">paused' in body
    assert "This campaign is paused" in body
    assert actions_shown(body) == {"resume", "cancel"}
    redirected_to(await post_form(client, staff, f"{url}/resume"), url)
    _, body = await page(client, staff, url)
    assert 'data-testid="campaign-status">sending' in body

    status, confirm = await page(client, staff, f"{url}/cancel")
    assert status == 200 and "The 2 messages still waiting will not be sent." in text_of(confirm)
    redirected_to(await post_form(client, staff, f"{url}/cancel"), url)
    _, body = await page(client, staff, url)
    assert 'data-testid="campaign-status">cancelled' in body
    assert re.search(r'data-testid="count-cancelled">2<', body)
    # A cancelled campaign offers no action, and refuses one with the page and its message.
    assert actions_shown(body) == set()
    again = await post_form(client, staff, f"{url}/resume")
    assert again.status == 409
    assert "a cancelled campaign cannot resume" in text_of(html.unescape(await again.text()))

    _, listing = await page(client, staff, "/admin/campaigns")
    assert re.search(r"Spring sale</a>.*?cancelled.*?Contacts tagged “vip”.*?>3<", listing, re.S)
    assert await audit_actions(client) == [
        "template.create", "template.create", "campaign.create", "campaign.queue",
        "campaign.pause", "campaign.resume", "campaign.cancel",
    ]  # fmt: skip
    rotation = await client.app[DB].one(
        Sql("SELECT count(DISTINCT template_id) AS n FROM send_jobs WHERE campaign_id = :c"),
        c=campaign_id,
    )
    assert rotation is not None and rotation["n"] >= 1


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ([("name", "No template")], "Choose at least one template."),
        ([("name", "x"), ("template_ids", "{t}")], "a template uses {link}: set link_url"),
        (
            [("name", "x"), ("template_ids", "{t}"), ("link_url", "javascript:alert(1)")],
            "link_url must be an absolute http:// or https:// URL",
        ),
        (
            [("name", "x"), ("template_ids", "{t}"), ("link_url", "https://a.example"),
             ("scheduled_at", "2020-01-01T09:00")],
            "scheduled_at must be in the future",
        ),
        ([("name", ""), ("template_ids", "{t}")], "a campaign needs a name"),
        ([("name", "x"), ("template_ids", "999999")], "template 999999 does not exist"),
    ],
)  # fmt: skip
async def test_a_bad_campaign_form_is_shown_again_with_the_message(
    client: Client,
    acme: TenantFixture,
    staff: SignedIn,
    fields: list[tuple[str, str]],
    message: str,
) -> None:
    template_id = await api_template(client, acme, "Hi {link}")
    posted = [(k, v.replace("{t}", str(template_id))) for k, v in fields]
    response = await post_form(client, staff, "/admin/campaigns", posted)
    assert response.status == 400
    body = html.unescape(await response.text())
    assert message in text_of(body)
    assert "<h1>New campaign</h1>" in body
    if ("template_ids", str(template_id)) in posted:
        assert re.search(rf'value="{template_id}" checked', body)  # the choices stay
    assert await client.app[DB].val(Sql("SELECT count(*) FROM campaigns")) == 0


async def test_staff_edit_a_draft_into_a_schedule_and_not_once_sending(
    client: Client, acme: TenantFixture, staff: SignedIn, clock: ManualClock
) -> None:
    await add_contact(client, acme, clock, "+61412000001")
    template_id = await api_template(client, acme, "Hi")
    campaign_id = await api_campaign(client, acme, [template_id])
    url = f"/admin/campaigns/{campaign_id}"
    status, form = await page(client, staff, f"{url}/edit")
    assert status == 200 and 'value="Spring"' in form
    assert re.search(rf'value="{template_id}" checked', form)

    when = (clock.now() + timedelta(days=2)).astimezone(ZoneInfo("Australia/Sydney"))
    local = when.strftime("%Y-%m-%dT%H:%M")
    saved = await post_form(client, staff, f"{url}/edit", [
        ("name", "Spring, later"), ("template_ids", str(template_id)), ("tag", ""),
        ("link_url", ""), ("scheduled_at", local),
    ])  # fmt: skip
    redirected_to(saved, url)
    shown = await (
        await client.get(f"/api/campaigns/{campaign_id}", headers=acme.auth("viewer"))
    ).json()
    assert shown["name"] == "Spring, later" and shown["status"] == "scheduled"
    assert shown["scheduled_at"] == when.replace(second=0, microsecond=0).astimezone(
        ZoneInfo("UTC")
    ).isoformat().replace("+00:00", "Z")
    _, body = await page(client, staff, url)
    assert f"queued automatically at {when.strftime('%Y-%m-%d %H:%M %Z')}" in text_of(body)

    # Saving the form unchanged keeps the schedule; an emptied one makes it a draft again.
    await post_form(client, staff, f"{url}/edit", [
        ("name", "Spring, later"), ("template_ids", str(template_id)), ("scheduled_at", local),
    ])  # fmt: skip
    await post_form(client, staff, f"{url}/edit", [
        ("name", "Spring, later"), ("template_ids", str(template_id)), ("scheduled_at", ""),
    ])  # fmt: skip
    shown = await (
        await client.get(f"/api/campaigns/{campaign_id}", headers=acme.auth("viewer"))
    ).json()
    assert shown["status"] == "draft" and shown["scheduled_at"] is None

    await post_form(client, staff, f"{url}/queue")
    late = await client.get(f"{url}/edit", headers=staff.headers(), allow_redirects=False)
    redirected_to(late, url)
    refused = await post_form(client, staff, f"{url}/edit", [
        ("name", "Too late"), ("template_ids", str(template_id)),
    ])  # fmt: skip
    assert refused.status == 409
    assert "a sending campaign cannot be edited" in text_of(html.unescape(await refused.text()))
    assert await audit_actions(client) == [
        "template.create", "campaign.create", "campaign.update", "campaign.update",
        "campaign.update", "campaign.queue",
    ]  # fmt: skip


async def test_the_campaign_page_says_what_holds_messages_and_why_they_wait(
    client: Client, acme: TenantFixture, viewer: SignedIn, clock: ManualClock
) -> None:
    for n in range(4):
        await add_contact(client, acme, clock, f"+6141200000{n}")
    db = client.app[DB]
    await db.run(
        Sql(
            "INSERT INTO budgets (tenant_id, daily_limit, monthly_limit, created_at, updated_at) "
            "VALUES (:t, 100000, 1000000, :now, :now)"
        ),
        t=acme.id,
        now=clock.now(),
    )
    await db.run(Sql("UPDATE tenants SET paused = TRUE WHERE id = :t"), t=acme.id)
    template_id = await api_template(client, acme, "Hi")
    campaign_id = await api_campaign(client, acme, [template_id])
    await client.post(f"/api/campaigns/{campaign_id}/queue", headers=acme.auth("staff"))
    until = clock.now() + timedelta(hours=9)
    await db.run(
        Sql("UPDATE send_jobs SET held_by = 'quiet_hours', next_attempt_at = :u WHERE id IN "
            "(SELECT id FROM send_jobs ORDER BY id LIMIT 3)"), u=until,
    )  # fmt: skip
    await db.run(
        Sql("UPDATE send_jobs SET held_by = 'budget', next_attempt_at = :u WHERE held_by IS NULL"),
        u=until + timedelta(days=1),
    )

    status, body = await page(client, viewer, f"/admin/campaigns/{campaign_id}")
    assert status == 200
    shown = text_of(body)
    local = until.astimezone(ZoneInfo("Australia/Sydney")).strftime("%Y-%m-%d %H:%M %Z")
    assert f"Outside the send window 3 {local}" in shown
    assert "Over the budget 1" in shown
    assert "Projected cost $0.22" in shown
    assert "Fits today's budget $0.10 of $0.22" in shown
    assert "Fits this month's $0.22 of $0.22" in shown
    assert "Sending is paused for the whole account" in shown
    assert "more than what is left of today's budget" in shown


async def test_another_tenants_templates_and_campaigns_are_not_found(
    client: Client, acme: TenantFixture, staff: SignedIn, make_tenant: TenantFactory
) -> None:
    other = await make_tenant("other")
    template_id = await api_template(client, other, "Theirs")
    campaign_id = await api_campaign(client, other, [template_id])
    for path in (f"/admin/templates/{template_id}", f"/admin/campaigns/{campaign_id}",
                 f"/admin/campaigns/{campaign_id}/edit", f"/admin/campaigns/{campaign_id}/cancel",
                 "/admin/templates/abc", "/admin/campaigns/99999999"):  # fmt: skip
        assert (await page(client, staff, path))[0] == 404, path
    for path in (
        f"/admin/templates/{template_id}",
        f"/admin/templates/{template_id}/archive",
        f"/admin/campaigns/{campaign_id}/edit",
        f"/admin/campaigns/{campaign_id}/queue",
        f"/admin/campaigns/{campaign_id}/pause",
        f"/admin/campaigns/{campaign_id}/resume",
        f"/admin/campaigns/{campaign_id}/cancel",
    ):
        response = await post_form(client, staff, path, {"name": "Mine", "body": "x"})
        assert response.status == 404, path
    # Their template cannot be put in one of ours either.
    smuggled = await post_form(client, staff, "/admin/campaigns", [
        ("name", "Mine"), ("template_ids", str(template_id)),
    ])  # fmt: skip
    assert smuggled.status == 400
    _, listing = await page(client, staff, "/admin/templates")
    assert "Theirs" not in listing
    shown = await (
        await client.get(f"/api/campaigns/{campaign_id}", headers=other.auth("viewer"))
    ).json()
    assert shown["status"] == "draft" and shown["name"] == "Spring"
