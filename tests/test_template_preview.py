"""The template preview (pack §7, §8, §10) counts what the queue builder will send: the footer
for the tenant's sender kind, decided by the queue builder's own rule (an alphanumeric sender
only when every active sender of the tenant is one), and the unsubscribe link at its real
`/u/{token}` length on the app's own host."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from smsapp.clock import ManualClock
from smsapp.config import Settings
from smsapp.db import Row, Sql
from smsapp.keys import DB, SETTINGS
from smsapp.numbers import add_sending_number
from smsapp.queue_builder import campaign_sender_kind
from smsapp.short_links import TOKEN_LENGTH as LINK_TOKEN_LENGTH
from smsapp.template_preview import preview, rendered_for, sample_optout_link
from smsapp.templating import Recipient, SenderKind
from smsapp.unsubscribe import TOKEN_LENGTH as UNSUBSCRIBE_TOKEN_LENGTH
from tests.conftest import SignIn, TenantFactory, TenantFixture
from tests.test_unsubscribe import add_contact, jobs, queued_campaign

Client = TestClient[Any, Any]
PUBLIC = "http://127.0.0.1:8080"  # the test settings' PUBLIC_BASE_URL
U_LINK = f"{PUBLIC}/u/" + "x" * UNSUBSCRIBE_TOKEN_LENGTH
S_LINK = f"{PUBLIC}/s/" + "x" * LINK_TOKEN_LENGTH


def tenant_row(**overrides: Any) -> Row:
    row: Row = {"name": "Acme", "optout_footer": "{tenant_name}: reply STOP to opt out",
                "short_link_base_url": None, "price_book": {}, "default_country": "AU"}  # fmt: skip
    return {**row, **overrides}


@pytest.mark.parametrize(
    ("kind", "body", "footer", "message"),
    [
        # A phone number: the tenant's footer, "reply STOP".
        ("phone", "Sale on", "Acme: reply STOP to opt out", "Sale on\nAcme: reply STOP to opt out"),
        # From an alphanumeric sender nobody can reply STOP: the unsubscribe link instead.
        ("alphanumeric", "Sale on", f"Acme: opt out at {U_LINK}",
         f"Sale on\nAcme: opt out at {U_LINK}"),
        # "Reply STOP" in the body counts as an opt-out only from a phone number.
        ("phone", "Acme sale. Reply STOP to opt out", None, "Acme sale. Reply STOP to opt out"),
        ("alphanumeric", "Acme sale. Reply STOP to opt out", f"Acme: opt out at {U_LINK}",
         f"Acme sale. Reply STOP to opt out\nAcme: opt out at {U_LINK}"),
        # A body with its own link and the sender's name needs no footer; the link is counted
        # at its real length, and {link} at the short link's.
        ("alphanumeric", "Acme: {link} or opt out {optout_link}", None,
         f"Acme: {S_LINK} or opt out {U_LINK}"),
    ],
)  # fmt: skip
def test_it_counts_the_footer_of_the_sender_kind_with_the_real_unsubscribe_link(
    settings: Settings, kind: SenderKind, body: str, footer: str | None, message: str
) -> None:
    shown = preview(settings, tenant_row(), body, kind)
    assert shown.footer == footer
    assert shown.message == message
    assert shown.analysis.units == len(message)  # all GSM-7 basic: one septet each
    assert shown.as_json()["sender_kind"] == kind


def test_a_footer_of_the_tenants_own_with_the_link_gets_the_real_link_from_any_sender(
    settings: Settings,
) -> None:
    tenant = tenant_row(optout_footer="{tenant_name}: stop texts at {optout_link}")
    for kind in ("phone", "alphanumeric"):
        shown = preview(settings, tenant, "Sale on", kind)
        assert shown.footer == f"Acme: stop texts at {U_LINK}"
        assert shown.analysis.units == len("Sale on\n") + len(shown.footer)
    assert sample_optout_link(settings) == U_LINK


async def test_the_preview_counts_what_the_queue_builder_writes(
    client: Client, clock: ManualClock, make_tenant: TenantFactory
) -> None:
    """One rule: for a tenant with an alphanumeric sender only, the preview's footer, length
    and parts are those of the job the queue builder writes (the token aside); once the
    tenant has an active phone number too, both go back to "reply STOP"."""
    db, settings = client.app[DB], client.app[SETTINGS]
    acme = await make_tenant("acme")
    await add_sending_number(db, clock, tenant_id=acme.id, value="Acme")
    await add_contact(client, acme, clock, "+61412000001")
    body = "Winter sale: 20% off everything this weekend only"
    tenant = await db.one(Sql("SELECT * FROM tenants WHERE id = :t"), t=acme.id)
    assert tenant is not None

    kind = await campaign_sender_kind(db, acme.id)
    shown = preview(settings, tenant, body, kind)
    await queued_campaign(client, acme, body)
    [job] = await jobs(client)

    assert kind == job["sender_kind"] == "alphanumeric"
    assert "/u/" in job["body"] and "STOP" not in job["body"]
    assert len(job["body"]) == len(shown.message) == shown.analysis.units
    assert job["parts"] == shown.analysis.segments
    assert job["body"].split("/u/")[0] == shown.message.split("/u/")[0]
    sample = rendered_for(settings, tenant, body, Recipient("Ann", None, {}), kind)
    assert sample == shown.message

    await add_sending_number(db, clock, tenant_id=acme.id, value="+61400000009")
    phone = preview(settings, tenant, body, await campaign_sender_kind(db, acme.id))
    assert phone.sender_kind == "phone" and phone.footer == "Acme: reply STOP to opt out"


async def test_the_template_preview_endpoint_uses_the_tenants_sender_kind(
    client: Client, clock: ManualClock, acme: TenantFixture, sign_in: SignIn
) -> None:
    viewer = await sign_in("vic@example.com", tenant_id=acme.id, role="viewer")
    await add_sending_number(client.app[DB], clock, tenant_id=acme.id, value="Acme")

    response = await client.post(
        "/admin/templates/preview", json={"body": "Sale on"}, headers=viewer.headers(unsafe=True)
    )

    assert response.status == 200
    answer = await response.json()
    assert answer["sender_kind"] == "alphanumeric"
    assert answer["footer"] == f"Acme: opt out at {U_LINK}"
    assert answer["units"] == len(f"Sale on\nAcme: opt out at {U_LINK}")


@pytest.fixture
async def acme(make_tenant: TenantFactory) -> TenantFixture:
    return await make_tenant("acme")
