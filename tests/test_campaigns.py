"""Templates, campaigns and the queue builder through the API, on both backends."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from smsapp.clock import ManualClock
from smsapp.db import Sql
from smsapp.keys import DB, SETTINGS
from smsapp.queue_builder import fire_due_schedules
from smsapp.rotation import template_for
from tests.conftest import TenantFactory, TenantFixture

Client = TestClient[Any, Any]


@pytest.fixture
async def acme(make_tenant: TenantFactory) -> TenantFixture:
    return await make_tenant("acme")


async def add_contact(
    client: Client,
    tenant: TenantFixture,
    clock: ManualClock,
    phone: str,
    *,
    first_name: str = "Ann",
    tags: list[str] | None = None,
    consent: bool = True,
    attributes: dict[str, str] | None = None,
    erased: bool = False,
) -> int:
    now = clock.now()
    contact_id: int = await client.app[DB].val(Sql(
        "INSERT INTO contacts (tenant_id, phone_e164, first_name, country, tags, attributes, "
        "consent_source, consent_at, erased_at, created_at, updated_at) VALUES (:t, :p, :f, 'AU', "
        ":tags, :attrs, 'test', :consent, :erased, :now, :now) RETURNING id"),
        t=tenant.id, p=phone, f=first_name, tags=tags or [], attrs=attributes or {},
        consent=now if consent else None, erased=now if erased else None, now=now)  # fmt: skip
    return contact_id


async def template(client: Client, tenant: TenantFixture, body: str, name: str = "T1") -> int:
    response = await client.post(
        "/api/templates", json={"name": name, "body": body}, headers=tenant.auth("staff")
    )
    assert response.status == 201, await response.text()
    return int((await response.json())["id"])


async def campaign(
    client: Client, tenant: TenantFixture, template_ids: list[int], **extra: Any
) -> tuple[int, dict[str, Any]]:
    response = await client.post(
        "/api/campaigns",
        json={"name": "Spring", "template_ids": template_ids, **extra},
        headers=tenant.auth("staff"),
    )
    return response.status, await response.json()


async def queue(
    client: Client, tenant: TenantFixture, campaign_id: int, **body: Any
) -> dict[str, Any]:
    response = await client.post(
        f"/api/campaigns/{campaign_id}/queue", json=body, headers=tenant.auth("staff")
    )
    assert response.status == 200, await response.text()
    return dict(await response.json())


# --- templates and creation ------------------------------------------------------------------


async def test_it_creates_lists_and_edits_templates(client: Client, acme: TenantFixture) -> None:
    template_id = await template(client, acme, "Hi {first_name}, see {link}")
    listed = await (await client.get("/api/templates", headers=acme.auth("viewer"))).json()
    assert [t["id"] for t in listed["templates"]] == [template_id]
    patched = await client.patch(
        f"/api/templates/{template_id}", json={"active": False}, headers=acme.auth("staff")
    )
    assert (await patched.json())["active"] is False
    duplicate = await client.post(
        "/api/templates", json={"name": "T1", "body": "x"}, headers=acme.auth("staff")
    )
    assert duplicate.status == 409


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("Hi {first name}", "bad_template"),
        ("Hi {", "bad_template"),
        ("", "bad_request"),
        ("x" * 1601, "too_long"),
    ],
)
async def test_it_refuses_malformed_templates(
    client: Client, acme: TenantFixture, body: str, code: str
) -> None:
    response = await client.post(
        "/api/templates", json={"name": "Bad", "body": body}, headers=acme.auth("staff")
    )
    assert response.status == 400
    assert (await response.json())["error"]["code"] == code


async def test_it_refuses_unknown_placeholders_at_creation(
    client: Client, acme: TenantFixture, clock: ManualClock
) -> None:
    template_id = await template(client, acme, "Hi {first_name}, your tier is {tier}")
    status, body = await campaign(client, acme, [template_id])
    assert status == 400 and body["error"]["code"] == "unknown_placeholder"
    assert body["error"]["placeholders"] == ["tier"]
    await add_contact(client, acme, clock, "+61412000001", attributes={"tier": "gold"})
    status, _ = await campaign(client, acme, [template_id])
    assert status == 201


@pytest.mark.parametrize(
    ("extra", "code"),
    [
        ({}, "link_url_required"),
        ({"link_url": "javascript:alert(1)"}, "bad_link_url"),
        ({"link_url": "ftp://x.example"}, "bad_link_url"),
        (
            {"link_url": "https://shop.example", "scheduled_at": "2020-01-01T00:00:00Z"},
            "bad_request",
        ),
        ({"link_url": "https://shop.example", "segment": {"tags": "x"}}, "bad_request"),
        ({"link_url": "https://shop.example", "colour": "red"}, "bad_request"),
    ],
)
async def test_it_refuses_bad_campaigns(
    client: Client, acme: TenantFixture, extra: dict[str, Any], code: str
) -> None:
    template_id = await template(client, acme, "Hi {first_name} {link}")
    status, body = await campaign(client, acme, [template_id], **extra)
    assert status == 400, body
    assert body["error"]["code"] == code


async def test_it_refuses_another_tenants_template(
    client: Client, acme: TenantFixture, make_tenant: TenantFactory
) -> None:
    other = await make_tenant("other")
    foreign = await template(client, other, "Hi")
    status, body = await campaign(client, acme, [foreign])
    assert status == 400 and body["error"]["code"] == "unknown_template"
    assert (await client.get(f"/api/templates/{foreign}", headers=acme.auth("admin"))).status == 404


async def test_it_refuses_campaign_writes_to_viewers(client: Client, acme: TenantFixture) -> None:
    template_id = await template(client, acme, "Hi")
    response = await client.post(
        "/api/campaigns",
        json={"name": "x", "template_ids": [template_id]},
        headers=acme.auth("viewer"),
    )
    assert response.status == 403


# --- queueing ----------------------------------------------------------------------------------


async def test_it_queues_consented_contacts_and_accounts_for_the_rest(
    client: Client, acme: TenantFixture, clock: ManualClock
) -> None:
    db = client.app[DB]
    ok = await add_contact(client, acme, clock, "+61412000001", first_name="Ann")
    await add_contact(client, acme, clock, "+61412000002", consent=False)
    dnc = await add_contact(client, acme, clock, "+61412000003")
    suppressed = await add_contact(client, acme, clock, "+61412000004")
    await add_contact(client, acme, clock, "+61412000005", erased=True)
    await db.run(
        Sql(
            "INSERT INTO do_not_contact (tenant_id, phone_e164, source, created_at) "
            "VALUES (:t, '+61412000003', 'manual', :now)"
        ),
        t=acme.id,
        now=clock.now(),
    )
    await db.run(
        Sql(
            "INSERT INTO suppression_rules (tenant_id, contact_id, kind, created_at) "
            "VALUES (:t, :c, 'complaint', :now)"
        ),
        t=acme.id,
        c=suppressed,
        now=clock.now(),
    )
    template_id = await template(client, acme, "Hi {first_name}, 20% off: {link}")
    _, created = await campaign(client, acme, [template_id], link_url="https://shop.example/sale")

    answer = await queue(client, acme, created["id"])
    assert answer["jobs"] == 1 and answer["skipped"] == 2
    assert answer["skipped_reasons"] == {"dnc": 1, "suppression": 1}
    assert answer["status"] == "sending"
    assert answer["fits_budget_today"] is None and answer["waiting"] == []
    jobs = {j["contact_id"]: j for j in await db.all(Sql("SELECT * FROM send_jobs"))}
    assert set(jobs) == {ok, dnc, suppressed}
    assert jobs[dnc]["status"] == "skipped" and jobs[dnc]["reason"] == "dnc"
    assert jobs[suppressed]["reason"] == "suppression"
    job = jobs[ok]
    assert job["status"] == "queued" and job["template_id"] == template_id
    link = await db.one(Sql("SELECT * FROM short_links WHERE contact_id = :c"), c=ok)
    assert link is not None and link["send_job_id"] == job["id"]
    assert link["target_url"] == "https://shop.example/sale"
    base = client.app[SETTINGS].public_base_url
    assert job["body"] == f"Hi Ann, 20% off: {base}/s/{link['token']}\nAcme: reply STOP to opt out"
    assert job["encoding"] == "GSM-7" and job["parts"] == 1
    assert job["unit_price"] == 55_000 and job["cost_estimate"] == 55_000
    assert answer["projected_cost"] == 5.5
    events = Counter(e["type"] for e in await db.all(Sql("SELECT type FROM events")))
    assert events == {"QUEUED": 1, "SKIPPED": 2}


async def test_it_keeps_a_template_that_already_names_the_sender_and_opt_out(
    client: Client, acme: TenantFixture, clock: ManualClock
) -> None:
    await add_contact(client, acme, clock, "+61412000001")
    template_id = await template(client, acme, "Acme: sale on now. Reply STOP to opt out")
    _, created = await campaign(client, acme, [template_id])
    await queue(client, acme, created["id"])
    body = await client.app[DB].val(Sql("SELECT body FROM send_jobs"))
    assert body == "Acme: sale on now. Reply STOP to opt out"


async def test_it_queues_a_tag_segment_and_overrides_it_per_call(
    client: Client, acme: TenantFixture, clock: ManualClock
) -> None:
    await add_contact(client, acme, clock, "+61412000001", tags=["vip"])
    await add_contact(client, acme, clock, "+61412000002", tags=["winter"])
    template_id = await template(client, acme, "Hi")
    _, created = await campaign(client, acme, [template_id], segment={"tag": "vip"})
    assert (await queue(client, acme, created["id"]))["jobs"] == 1
    assert (await queue(client, acme, created["id"], segment={"tag": "winter"}))["jobs"] == 2


async def test_it_adds_nothing_when_queued_twice_or_concurrently(
    client: Client, acme: TenantFixture, clock: ManualClock
) -> None:
    for n in range(30):
        await add_contact(client, acme, clock, f"+614120000{n:02d}")
    template_id = await template(client, acme, "Hi {first_name}")
    _, created = await campaign(client, acme, [template_id])
    answers = await asyncio.gather(*[queue(client, acme, created["id"]) for _ in range(3)])
    assert sum(a["added"] for a in answers) == 30
    assert (await queue(client, acme, created["id"]))["added"] == 0
    db = client.app[DB]
    assert await db.val(Sql("SELECT count(*) FROM send_jobs")) == 30
    assert await db.val(Sql("SELECT count(*) FROM events WHERE type = 'QUEUED'")) == 30


async def test_it_rotates_templates_evenly_and_stably(
    client: Client, acme: TenantFixture, clock: ManualClock
) -> None:
    contacts = [await add_contact(client, acme, clock, f"+61412{n:06d}") for n in range(600)]
    ids = [await template(client, acme, f"Version {n}", name=f"V{n}") for n in range(3)]
    _, first = await campaign(client, acme, ids)
    _, second = await campaign(client, acme, ids)
    await queue(client, acme, first["id"])
    await queue(client, acme, second["id"])
    db = client.app[DB]
    rows = await db.all(Sql("SELECT campaign_id, contact_id, template_id FROM send_jobs"))
    by_campaign: dict[int, dict[int, int]] = {}
    for r in rows:
        by_campaign.setdefault(r["campaign_id"], {})[r["contact_id"]] = r["template_id"]
    assert by_campaign[first["id"]] == by_campaign[second["id"]]  # stable per contact
    split = Counter(by_campaign[first["id"]].values())
    assert set(split) == set(ids)
    assert all(170 <= n <= 230 for n in split.values()), split  # even: 200 each, within 15 %
    assert all(by_campaign[first["id"]][c] == template_for(c, ids) for c in contacts)


async def test_it_answers_how_much_fits_the_budget_and_why_jobs_wait(
    client: Client, acme: TenantFixture, clock: ManualClock
) -> None:
    for n in range(4):
        await add_contact(client, acme, clock, f"+614120000{n:02d}")
    db = client.app[DB]
    await db.run(
        Sql(
            "INSERT INTO budgets (tenant_id, daily_limit, monthly_limit, created_at, updated_at) "
            "VALUES (:t, 100000, NULL, :now, :now)"
        ),
        t=acme.id,
        now=clock.now(),
    )
    await db.run(Sql("UPDATE tenants SET paused = TRUE WHERE id = :t"), t=acme.id)
    template_id = await template(client, acme, "Hi")
    _, created = await campaign(client, acme, [template_id])
    answer = await queue(client, acme, created["id"])
    assert answer["projected_cost"] == 22  # 4 jobs × 5.5 cents
    assert answer["fits_budget_today"] == 10  # a 10-cent daily cap
    assert answer["fits_budget_month"] is None
    assert answer["waiting"] == ["tenant_paused", "over_daily_budget"]
    assert answer["jobs"] == 4  # nothing dropped for pause or budget


async def test_it_holds_no_price_as_unknown_and_says_so(
    client: Client, acme: TenantFixture, clock: ManualClock
) -> None:
    await client.app[DB].run(Sql("UPDATE contacts SET country = 'NZ'"))
    await add_contact(client, acme, clock, "+61412000001")
    await client.app[DB].run(Sql("UPDATE contacts SET country = 'NZ'"))
    await client.app[DB].run(
        Sql(
            "INSERT INTO budgets (tenant_id, daily_limit, created_at, updated_at) "
            "VALUES (:t, 1000000, :now, :now)"
        ),
        t=acme.id,
        now=clock.now(),
    )
    template_id = await template(client, acme, "Hi")
    _, created = await campaign(client, acme, [template_id])
    answer = await queue(client, acme, created["id"])
    assert answer["unpriced_jobs"] == 1 and "price_unknown" in answer["waiting"]
    job = await client.app[DB].one(Sql("SELECT unit_price, cost_estimate FROM send_jobs"))
    assert job == {"unit_price": None, "cost_estimate": None}


async def test_it_counts_parts_and_encoding_with_the_footer(
    client: Client, acme: TenantFixture, clock: ManualClock
) -> None:
    await add_contact(client, acme, clock, "+61412000001", first_name="Zoë")
    template_id = await template(client, acme, "Hi {first_name} " + "x" * 140)
    _, created = await campaign(client, acme, [template_id])
    await queue(client, acme, created["id"])
    job = await client.app[DB].one(Sql("SELECT parts, encoding, cost_estimate FROM send_jobs"))
    assert job == {"parts": 3, "encoding": "UCS-2", "cost_estimate": 3 * 55_000}


# --- lifecycle ------------------------------------------------------------------------------------


async def test_it_fires_a_schedule_once(
    client: Client, acme: TenantFixture, clock: ManualClock
) -> None:
    await add_contact(client, acme, clock, "+61412000001")
    template_id = await template(client, acme, "Hi")
    when = (clock.now() + timedelta(hours=2)).isoformat()
    _, created = await campaign(client, acme, [template_id], scheduled_at=when)
    assert created["status"] == "scheduled"
    db, settings = client.app[DB], client.app[SETTINGS]
    assert await fire_due_schedules(db, clock, settings) == []
    clock.advance(hours=2)
    fired = await asyncio.gather(*[fire_due_schedules(db, clock, settings) for _ in range(3)])
    assert [campaign_id for run in fired for campaign_id in run] == [created["id"]]
    assert await fire_due_schedules(db, clock, settings) == []
    assert await db.val(Sql("SELECT count(*) FROM send_jobs")) == 1
    shown = await (
        await client.get(f"/api/campaigns/{created['id']}", headers=acme.auth("viewer"))
    ).json()
    assert shown["status"] == "sending" and shown["jobs"] == {"queued": 1}


async def test_it_edits_only_drafts_and_schedules(
    client: Client, acme: TenantFixture, clock: ManualClock
) -> None:
    await add_contact(client, acme, clock, "+61412000001")
    template_id = await template(client, acme, "Hi")
    _, created = await campaign(client, acme, [template_id])
    url = f"/api/campaigns/{created['id']}"
    renamed = await client.patch(url, json={"name": "Renamed"}, headers=acme.auth("staff"))
    assert renamed.status == 200 and (await renamed.json())["name"] == "Renamed"
    await queue(client, acme, created["id"])
    late = await client.patch(url, json={"name": "Too late"}, headers=acme.auth("staff"))
    assert late.status == 409


async def test_it_pauses_resumes_and_cancels_with_queued_jobs(
    client: Client, acme: TenantFixture, clock: ManualClock
) -> None:
    for n in range(3):
        await add_contact(client, acme, clock, f"+614120000{n:02d}")
    template_id = await template(client, acme, "Hi")
    _, created = await campaign(client, acme, [template_id])
    url, h = f"/api/campaigns/{created['id']}", acme.auth("staff")
    assert (await client.post(f"{url}/pause", headers=h)).status == 409  # a draft is not sending
    await queue(client, acme, created["id"])
    assert (await (await client.post(f"{url}/pause", headers=h)).json())["status"] == "paused"
    assert (await (await client.post(f"{url}/resume", headers=h)).json())["status"] == "sending"
    assert (await (await client.post(f"{url}/cancel", headers=h)).json())["status"] == "cancelled"
    shown = await (await client.get(url, headers=acme.auth("viewer"))).json()
    assert shown["jobs"] == {"cancelled": 3}
    assert (await client.post(f"{url}/queue", json={}, headers=h)).status == 409


async def test_it_shows_what_holds_waiting_jobs(
    client: Client, acme: TenantFixture, clock: ManualClock
) -> None:
    for n in range(3):
        await add_contact(client, acme, clock, f"+614120000{n:02d}")
    template_id = await template(client, acme, "Hi")
    _, created = await campaign(client, acme, [template_id])
    await queue(client, acme, created["id"])
    until = clock.now() + timedelta(hours=9)
    await client.app[DB].run(
        Sql("UPDATE send_jobs SET held_by = 'quiet_hours', next_attempt_at = :u"), u=until
    )
    shown = await (
        await client.get(f"/api/campaigns/{created['id']}", headers=acme.auth("viewer"))
    ).json()
    assert shown["held"] == {
        "quiet_hours": {"count": 3, "until": until.isoformat().replace("+00:00", "Z")}
    }


async def test_it_answers_404_for_another_tenants_campaign(
    client: Client, acme: TenantFixture, make_tenant: TenantFactory
) -> None:
    other = await make_tenant("other")
    template_id = await template(client, other, "Hi")
    _, created = await campaign(client, other, [template_id])
    url = f"/api/campaigns/{created['id']}"
    assert (await client.get(url, headers=acme.auth("admin"))).status == 404
    assert (await client.patch(url, json={"name": "x"}, headers=acme.auth("admin"))).status == 404
    for action in ("queue", "pause", "resume", "cancel"):
        assert (
            await client.post(f"{url}/{action}", json={}, headers=acme.auth("admin"))
        ).status == 404
