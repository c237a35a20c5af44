"""The campaign's links page `GET /admin/campaigns/{id}/links` (pack §9), on both backends: the
links with their contact, target and clicks, the totals, 100 a page, for a viewer; another
tenant's campaign is not found."""

from __future__ import annotations

from typing import Any

from smsapp.clock import ManualClock
from smsapp.db import Sql
from smsapp.keys import DB
from tests.conftest import SignedIn, SignIn, TenantFactory, TenantFixture
from tests.test_campaign_pages import (
    Client,
    acme,
    add_contact,
    api_campaign,
    api_template,
    page,
    text_of,
    viewer,
)

__all__ = ["acme", "viewer"]  # fixtures shared with test_campaign_pages

PHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1_2 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.1.2 Mobile/15E148 Safari/604.1"
)
TARGET = "https://shop.example.com/sale"


async def make_link(client: Client, tenant: TenantFixture, **body: Any) -> str:
    response = await client.post(
        "/api/short-links", json={"target_url": TARGET, **body}, headers=tenant.auth("staff")
    )
    assert response.status == 201, await response.text()
    return str((await response.json())["token"])


async def hit(client: Client, token: str, method: str = "GET") -> None:
    response = await client.request(
        method, f"/s/{token}", headers={"User-Agent": PHONE}, allow_redirects=False
    )
    assert response.status == 302


async def test_a_viewer_sees_the_links_their_clicks_and_the_totals(
    client: Client, acme: TenantFixture, viewer: SignedIn, clock: ManualClock
) -> None:
    template_id = await api_template(client, acme, "Hi {first_name} {link}")
    campaign_id = await api_campaign(client, acme, [template_id], link_url=TARGET)
    ann = await add_contact(client, acme, clock, "+61400000001", first_name="Ann")
    bob = await add_contact(client, acme, clock, "+61400000002", first_name="Bob")
    ann_token = await make_link(client, acme, campaign_id=campaign_id, contact_id=ann)
    bob_token = await make_link(client, acme, campaign_id=campaign_id, contact_id=bob)
    loose_token = await make_link(client, acme, campaign_id=campaign_id)
    await hit(client, ann_token)  # human
    await hit(client, bob_token, "HEAD")  # a bot: HEAD
    clock.advance(seconds=5)
    await hit(client, ann_token)  # human again

    status, body = await page(client, viewer, f"/admin/campaigns/{campaign_id}/links")
    assert status == 200, body
    text = text_of(body)
    for name, value in (("links", 3), ("clicked-human", 1), ("hits", 3), ("human-hits", 2)):
        assert f'data-testid="total-{name}">{value}<' in body, name
    ann_row = body.split(f'data-testid="link-{ann_token}"')[1].split("</tr>")[0]
    assert "Ann" in ann_row and TARGET in ann_row
    assert [cell for cell in text_of(ann_row).split() if cell.isdigit()][:2] == ["2", "2"]
    assert "—" not in text_of(ann_row).split(TARGET)[1].split()[2]  # first human click shown
    loose_row = body.split(f'data-testid="link-{loose_token}"')[1].split("</tr>")[0]
    assert "—" in loose_row
    assert "Bob" in text
    _, campaign_page = await page(client, viewer, f"/admin/campaigns/{campaign_id}")
    assert f'href="/admin/campaigns/{campaign_id}/links"' in campaign_page


async def test_the_links_are_paged_100_at_a_time(
    client: Client, acme: TenantFixture, viewer: SignedIn, clock: ManualClock
) -> None:
    template_id = await api_template(client, acme, "Hi {link}")
    campaign_id = await api_campaign(client, acme, [template_id], link_url=TARGET)
    now = clock.now()
    await client.app[DB].run_many(
        Sql(
            "INSERT INTO short_links (token, tenant_id, campaign_id, target_url, expires_at, "
            "created_at, updated_at) VALUES (:token, :t, :c, :target, :now, :now, :now)"
        ),
        [{"token": f"tok{n:07d}", "t": acme.id, "c": campaign_id, "target": TARGET, "now": now}
         for n in range(101)],
    )  # fmt: skip
    path = f"/admin/campaigns/{campaign_id}/links"
    _, first = await page(client, viewer, path)
    assert first.count('data-testid="link-tok') == 100
    assert 'data-testid="total-links">101<' in first
    assert "?page=2" in first
    _, second = await page(client, viewer, path + "?page=2")
    assert second.count('data-testid="link-tok') == 1
    assert 'data-testid="link-tok0000100"' in second


async def test_another_tenants_campaign_links_are_not_found(
    client: Client, acme: TenantFixture, sign_in: SignIn, make_tenant: TenantFactory
) -> None:
    viewer = await sign_in("vic@example.com", tenant_id=acme.id, role="viewer")
    other = await make_tenant("other")
    template_id = await api_template(client, other, "Theirs {link}")
    campaign_id = await api_campaign(client, other, [template_id], link_url=TARGET)
    await make_link(client, other, campaign_id=campaign_id)
    for path in (f"/admin/campaigns/{campaign_id}/links", "/admin/campaigns/99999999/links",
                 "/admin/campaigns/abc/links"):  # fmt: skip
        assert (await page(client, viewer, path))[0] == 404, path
