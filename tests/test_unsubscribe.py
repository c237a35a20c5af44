"""Alphanumeric senders and the unsubscribe link (pack §10): the queue builder gives their
messages a working `/u/{token}` link instead of "reply STOP"; GET /u/{token} only confirms,
POST /u/{token} opts the person out, once, without a session or a CSRF token."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from smsapp.clock import ManualClock
from smsapp.db import Database, Row, Sql
from smsapp.encoding import count_parts
from smsapp.keys import DB, SETTINGS
from smsapp.numbers import add_sending_number
from smsapp.templating import footer_for_sender, needs_footer, with_footer
from tests.conftest import SignIn, TenantFactory, TenantFixture

Client = TestClient[Any, Any]
U_LINK = re.compile(r"(https?://[^\s]+)/u/([A-Za-z0-9]+)")


@pytest.fixture
async def acme(make_tenant: TenantFactory) -> TenantFixture:
    return await make_tenant("acme")


async def add_contact(client: Client, tenant: TenantFixture, clock: ManualClock, phone: str) -> int:
    contact_id: int = await client.app[DB].val(
        Sql(
            "INSERT INTO contacts (tenant_id, phone_e164, first_name, country, consent_source, "
            "consent_at, created_at, updated_at) VALUES (:t, :p, 'Ann', 'AU', 'test', :now, :now, "
            ":now) RETURNING id"
        ),
        t=tenant.id,
        p=phone,
        now=clock.now(),
    )
    return contact_id


async def queued_campaign(
    client: Client, tenant: TenantFixture, body: str = "Hi {first_name}, sale on"
) -> int:
    h = tenant.auth("staff")
    template = await (
        await client.post("/api/templates", json={"name": "T", "body": body}, headers=h)
    ).json()
    created = await (
        await client.post(
            "/api/campaigns", json={"name": "C", "template_ids": [template["id"]]}, headers=h
        )
    ).json()
    response = await client.post(f"/api/campaigns/{created['id']}/queue", json={}, headers=h)
    assert response.status == 200, await response.text()
    return int(created["id"])


async def jobs(client: Client) -> list[Row]:
    db: Database = client.app[DB]
    return await db.all(Sql("SELECT * FROM send_jobs ORDER BY contact_id"))


async def token_of(client: Client, contact_id: int) -> str:
    token = await client.app[DB].val(
        Sql("SELECT token FROM unsubscribe_tokens WHERE contact_id = :c"), c=contact_id
    )
    assert isinstance(token, str)
    return token


async def alphanumeric_setup(
    client: Client, tenant: TenantFixture, clock: ManualClock
) -> tuple[int, int]:
    """An alphanumeric-only tenant with one contact and a queued campaign: (campaign, contact)."""
    await add_sending_number(client.app[DB], clock, tenant_id=tenant.id, value="Acme")
    contact_id = await add_contact(client, tenant, clock, "+61412000001")
    return await queued_campaign(client, tenant), contact_id


# --- the queue builder -------------------------------------------------------------------------


async def test_it_queues_an_alphanumeric_only_tenants_jobs_with_a_working_unsubscribe_link(
    client: Client, acme: TenantFixture, clock: ManualClock
) -> None:
    await add_sending_number(client.app[DB], clock, tenant_id=acme.id, value="Acme")
    first = await add_contact(client, acme, clock, "+61412000001")
    second = await add_contact(client, acme, clock, "+61412000002")
    campaign_id = await queued_campaign(client, acme)

    base = client.app[SETTINGS].public_base_url.rstrip("/")
    tokens = {
        r["contact_id"]: r
        for r in await client.app[DB].all(Sql("SELECT * FROM unsubscribe_tokens"))
    }
    assert set(tokens) == {first, second}
    for job in await jobs(client):
        token = tokens[job["contact_id"]]
        assert token["campaign_id"] == campaign_id and token["tenant_id"] == acme.id
        assert re.fullmatch(r"[A-Za-z0-9]{16,}", token["token"])
        assert job["sender_kind"] == "alphanumeric"
        assert job["body"] == f"Hi Ann, sale on\nAcme: opt out at {base}/u/{token['token']}"
        assert "STOP" not in job["body"]
        assert (job["encoding"], job["parts"]) == count_parts(job["body"])
        match = U_LINK.search(job["body"])
        assert match is not None and match.group(1) == base
        page = await client.get(f"/u/{match.group(2)}")
        assert page.status == 200 and "Unsubscribe" in await page.text()
    assert tokens[first]["token"] != tokens[second]["token"]


async def test_it_counts_the_link_in_the_parts(
    client: Client, acme: TenantFixture, clock: ManualClock
) -> None:
    await add_sending_number(client.app[DB], clock, tenant_id=acme.id, value="Acme")
    await add_contact(client, acme, clock, "+61412000001")
    # 120 characters of template: one part alone, two with the footer and its full link.
    await queued_campaign(client, acme, body="x" * 120)
    [job] = await jobs(client)
    assert len(job["body"]) > 160 and job["parts"] == 2


async def test_it_reuses_the_tokens_when_a_campaign_is_queued_again(
    client: Client, acme: TenantFixture, clock: ManualClock
) -> None:
    campaign_id, contact_id = await alphanumeric_setup(client, acme, clock)
    token = await token_of(client, contact_id)
    again = await client.post(
        f"/api/campaigns/{campaign_id}/queue", json={}, headers=acme.auth("staff")
    )
    assert again.status == 200
    assert await client.app[DB].val(Sql("SELECT count(*) FROM unsubscribe_tokens")) == 1
    assert await token_of(client, contact_id) == token


@pytest.mark.parametrize(
    ("senders", "kind"),
    [
        (["+61400000000", "Acme"], "phone"),  # any active phone number wins
        (["+61400000000"], "phone"),
        ([], "phone"),  # no sender yet: the sender holds the jobs until one is added
        (["Acme", "-+61400000000"], "alphanumeric"),  # the phone number is inactive
    ],
)
async def test_it_sends_from_phone_numbers_whenever_the_tenant_has_an_active_one(
    client: Client, acme: TenantFixture, clock: ManualClock, senders: list[str], kind: str
) -> None:
    db = client.app[DB]
    for sender in senders:
        number_id = await add_sending_number(db, clock, tenant_id=acme.id, value=sender.lstrip("-"))
        if sender.startswith("-"):
            await db.run(
                Sql("UPDATE sending_numbers SET active = FALSE WHERE id = :id"), id=number_id
            )
    await add_contact(client, acme, clock, "+61412000001")
    await queued_campaign(client, acme)
    [job] = await jobs(client)
    assert job["sender_kind"] == kind
    if kind == "phone":
        assert job["body"].endswith("Acme: reply STOP to opt out")
        assert await db.val(Sql("SELECT count(*) FROM unsubscribe_tokens")) == 0
    else:
        assert "/u/" in job["body"]


async def test_it_renders_a_phone_tenants_footer_link_too(
    client: Client, acme: TenantFixture, clock: ManualClock
) -> None:
    db = client.app[DB]
    await add_sending_number(db, clock, tenant_id=acme.id, value="+61400000000")
    response = await client.patch(
        f"/api/tenants/{acme.id}",
        json={"optout_footer": "{tenant_name}: reply STOP or visit {optout_link}"},
        headers=acme.auth("admin"),
    )
    assert response.status == 200, await response.text()
    contact_id = await add_contact(client, acme, clock, "+61412000001")
    await queued_campaign(client, acme)
    [job] = await jobs(client)
    token = await token_of(client, contact_id)
    base = client.app[SETTINGS].public_base_url.rstrip("/")
    assert job["sender_kind"] == "phone"
    assert job["body"].endswith(f"Acme: reply STOP or visit {base}/u/{token}")


@pytest.mark.parametrize(
    ("body", "kind", "needed"),
    [
        ("Acme: sale. Reply STOP to opt out", "phone", False),
        ("Acme: sale. Reply STOP to opt out", "alphanumeric", True),  # nobody can reply
        ("Acme: sale. Opt out: {optout_link}", "alphanumeric", False),
        ("Sale. Opt out: {optout_link}", "alphanumeric", True),  # the sender is not named
        ("Acme: sale", "phone", True),
    ],
)
def test_it_decides_when_a_footer_is_needed(body: str, kind: Any, needed: bool) -> None:
    assert needs_footer(body, "Acme", kind) is needed


def test_it_gives_alphanumeric_senders_a_footer_with_the_link() -> None:
    assert footer_for_sender("{tenant_name}: reply STOP", "alphanumeric") == (
        "{tenant_name}: opt out at {optout_link}"
    )
    own = "{tenant_name}: opt out {optout_link}"
    assert footer_for_sender(own, "alphanumeric") == own
    assert footer_for_sender("{tenant_name}: reply STOP", "phone") == "{tenant_name}: reply STOP"
    assert with_footer("Hi", footer="{tenant_name}: reply STOP", tenant_name="Acme",
                       optout_link="{optout_link}", sender_kind="alphanumeric") == (
        "Hi\nAcme: opt out at {optout_link}"
    )  # fmt: skip


# --- the page ----------------------------------------------------------------------------------


async def dnc_rows(client: Client) -> list[Row]:
    db: Database = client.app[DB]
    return await db.all(Sql("SELECT tenant_id, phone_e164, source FROM do_not_contact"))


async def event_types(client: Client) -> Counter[str]:
    rows = await client.app[DB].all(Sql("SELECT type FROM events"))
    return Counter(r["type"] for r in rows)


async def test_it_confirms_on_get_without_changing_anything(
    client: Client, acme: TenantFixture, clock: ManualClock
) -> None:
    _, contact_id = await alphanumeric_setup(client, acme, clock)
    token = await token_of(client, contact_id)
    for _ in range(3):  # scanners, previews, the person
        page = await client.get(f"/u/{token}")
        text = await page.text()
        assert page.status == 200
        assert f'action="/u/{token}"' in text and "Acme" in text and "001" in text
        assert "+61412000001" not in text  # the number is masked
        assert page.headers["Cache-Control"] == "no-store"
        assert page.headers["Referrer-Policy"] == "no-referrer"
    assert await dnc_rows(client) == []
    assert await client.app[DB].val(Sql("SELECT used_at FROM unsubscribe_tokens")) is None
    assert [j["status"] for j in await jobs(client)] == ["queued"]


@pytest.mark.parametrize(
    "token", ["NoSuchToken00000000", "short", "bad-chars!!!!!!!!!!!", "x" * 65]
)
async def test_it_answers_an_unknown_token_with_a_404_page(
    client: Client, acme: TenantFixture, clock: ManualClock, token: str
) -> None:
    await alphanumeric_setup(client, acme, clock)
    for method in ("GET", "POST"):
        page = await client.request(method, f"/u/{token}")
        assert page.status == 404, method
        assert "This link does not work" in await page.text()
    assert await dnc_rows(client) == []


async def test_it_unsubscribes_on_post_without_a_session_or_csrf_token(
    client: Client, acme: TenantFixture, clock: ManualClock
) -> None:
    campaign_id, contact_id = await alphanumeric_setup(client, acme, clock)
    token = await token_of(client, contact_id)

    # As a browser submits the form: url-encoded, no cookie, no CSRF field.
    done = await client.post(f"/u/{token}", data={})

    assert done.status == 200 and "You are unsubscribed" in await done.text()
    assert await dnc_rows(client) == [
        {"tenant_id": acme.id, "phone_e164": "+61412000001", "source": "unsubscribe_link"}
    ]
    db = client.app[DB]
    opt_out = await db.one(Sql("SELECT * FROM events WHERE type = 'OPT_OUT'"))
    assert opt_out is not None
    assert (opt_out["campaign_id"], opt_out["contact_id"]) == (campaign_id, contact_id)
    assert opt_out["data"] == {"source": "unsubscribe_link"}
    [job] = await jobs(client)
    assert job["status"] == "cancelled"
    cancelled = await db.one(Sql("SELECT * FROM events WHERE type = 'CANCELLED'"))
    assert cancelled is not None and cancelled["send_job_id"] == job["id"]
    assert await db.val(Sql("SELECT used_at FROM unsubscribe_tokens")) == clock.now()
    # Afterwards the link shows the done page.
    again = await client.get(f"/u/{token}")
    assert again.status == 200 and "You are unsubscribed" in await again.text()


async def test_it_unsubscribes_a_signed_in_browser_without_a_csrf_token(
    client: Client, acme: TenantFixture, clock: ManualClock, sign_in: SignIn
) -> None:
    _, contact_id = await alphanumeric_setup(client, acme, clock)
    token = await token_of(client, contact_id)
    user = await sign_in("staff@example.com", tenant_id=acme.id, role="staff")
    done = await client.post(f"/u/{token}", data={}, headers=user.headers())
    assert done.status == 200 and len(await dnc_rows(client)) == 1


async def test_it_is_idempotent_and_counts_one_opt_out(
    client: Client, acme: TenantFixture, clock: ManualClock
) -> None:
    _, contact_id = await alphanumeric_setup(client, acme, clock)
    token = await token_of(client, contact_id)
    first_use = clock.now()
    await client.post(f"/u/{token}")
    clock.advance(minutes=5)
    answers = await asyncio.gather(*[client.post(f"/u/{token}") for _ in range(3)])
    for answer in answers:
        assert answer.status == 200 and "You are unsubscribed" in await answer.text()
    assert len(await dnc_rows(client)) == 1
    assert (await event_types(client))["OPT_OUT"] == 1
    assert await client.app[DB].val(Sql("SELECT used_at FROM unsubscribe_tokens")) == first_use


async def test_it_does_not_count_a_second_opt_out_for_a_number_already_on_the_list(
    client: Client, acme: TenantFixture, clock: ManualClock
) -> None:
    _, contact_id = await alphanumeric_setup(client, acme, clock)
    await client.post(
        "/api/do-not-contact", json={"phone": "+61412000001"}, headers=acme.auth("staff")
    )
    token = await token_of(client, contact_id)
    done = await client.post(f"/u/{token}")
    assert done.status == 200
    assert [r["source"] for r in await dnc_rows(client)] == ["api"]  # the first entry is kept
    assert (await event_types(client))["OPT_OUT"] == 0
    assert await client.app[DB].val(Sql("SELECT used_at FROM unsubscribe_tokens")) is not None


async def test_it_honours_the_link_again_after_a_resubscription(
    client: Client, acme: TenantFixture, clock: ManualClock
) -> None:
    _, contact_id = await alphanumeric_setup(client, acme, clock)
    token = await token_of(client, contact_id)
    await client.post(f"/u/{token}")
    removed = await client.delete("/api/do-not-contact/+61412000001", headers=acme.auth("admin"))
    assert removed.status in (200, 204)
    page = await client.get(f"/u/{token}")
    assert 'action="/u/' in await page.text()  # the confirm form again
    await client.post(f"/u/{token}")
    assert len(await dnc_rows(client)) == 1
    assert (await event_types(client))["OPT_OUT"] == 2


async def test_it_keeps_tenants_apart(
    client: Client, acme: TenantFixture, make_tenant: TenantFactory, clock: ManualClock
) -> None:
    other = await make_tenant("other")
    await add_contact(client, other, clock, "+61412000001")  # the same number, another tenant
    _, contact_id = await alphanumeric_setup(client, acme, clock)
    await client.post(f"/u/{await token_of(client, contact_id)}")
    assert [r["tenant_id"] for r in await dnc_rows(client)] == [acme.id]


async def test_it_stores_the_token_of_every_body_when_queued_concurrently(
    client: Client, acme: TenantFixture, clock: ManualClock
) -> None:
    await add_sending_number(client.app[DB], clock, tenant_id=acme.id, value="Acme")
    for n in range(25):
        await add_contact(client, acme, clock, f"+614120000{n:02d}")
    campaign_id = await queued_campaign(client, acme)
    await client.app[DB].run(Sql("DELETE FROM events"))
    await client.app[DB].run(Sql("DELETE FROM send_jobs"))
    await client.app[DB].run(Sql("DELETE FROM unsubscribe_tokens"))
    h = acme.auth("staff")
    answers = await asyncio.gather(
        *[client.post(f"/api/campaigns/{campaign_id}/queue", json={}, headers=h) for _ in range(3)]
    )
    assert all(a.status == 200 for a in answers)
    stored = {
        r["contact_id"]: r["token"]
        for r in await client.app[DB].all(Sql("SELECT contact_id, token FROM unsubscribe_tokens"))
    }
    bodies = await jobs(client)
    assert len(bodies) == len(stored) == 25
    for job in bodies:
        match = U_LINK.search(job["body"])
        assert match is not None and match.group(2) == stored[job["contact_id"]]
