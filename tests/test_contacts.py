"""Contacts: the API of pack §17 (create, search, change, erase, timeline) and the admin pages."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aiohttp.test_utils import TestClient

from smsapp.clock import ManualClock
from smsapp.db import Sql
from smsapp.keys import DB
from tests.conftest import SignIn, TenantFactory, TenantFixture
from tests.support_audit import audit_entries

CONTACT_KEYS = {
    "id",
    "phone_e164",
    "first_name",
    "last_name",
    "email",
    "country",
    "state",
    "postcode",
    "timezone",
    "tags",
    "attributes",
    "consent_source",
    "consent_at",
    "do_not_contact",
    "erased",
    "created_at",
    "updated_at",
}
ANN = {
    "phone": "0412 345 678",
    "first_name": "Ann",
    "last_name": "Lee",
    "email": "Ann.Lee@Example.COM",
    "state": "nsw",
    "postcode": "2000",
    "tags": ["vip", " newsletter ", "vip"],
    "attributes": {"plan": "gold", "visits": 3},
    "consent_source": "web form",
    "consent_at": "2026-01-02T10:00:00Z",
}


async def create(
    client: TestClient[Any, Any], tenant: TenantFixture, body: dict[str, Any], role: str = "staff"
) -> Any:
    return await client.post("/api/contacts", json=body, headers=tenant.auth(role))


async def created(client: TestClient[Any, Any], tenant: TenantFixture, **body: Any) -> Any:
    response = await create(client, tenant, body)
    assert response.status == 201, await response.text()
    return await response.json()


# --- API -----------------------------------------------------------------------------------


async def test_it_creates_a_contact_and_answers_the_object_with_the_exact_keys(
    client: TestClient[Any, Any], make_tenant: TenantFactory
) -> None:
    tenant = await make_tenant("acme")
    response = await create(client, tenant, ANN)
    assert response.status == 201
    contact = await response.json()
    assert set(contact) == CONTACT_KEYS
    assert isinstance(contact["id"], int)
    assert contact == {
        "id": contact["id"],
        "phone_e164": "+61412345678",
        "first_name": "Ann",
        "last_name": "Lee",
        "email": "ann.lee@example.com",
        "country": "AU",
        "state": "NSW",
        "postcode": "2000",
        "timezone": "Australia/Sydney",
        "tags": ["vip", "newsletter"],
        "attributes": {"plan": "gold", "visits": 3},
        "consent_source": "web form",
        "consent_at": "2026-01-02T10:00:00Z",
        "do_not_contact": False,
        "erased": False,
        "created_at": "2026-01-05T00:00:00Z",
        "updated_at": "2026-01-05T00:00:00Z",
    }
    shown = await client.get(f"/api/contacts/{contact['id']}", headers=tenant.auth("viewer"))
    assert shown.status == 200
    assert await shown.json() == contact
    [entry] = await audit_entries(client, tenant.id)
    assert entry["action"] == "contact.create"
    assert entry["target_id"] == str(contact["id"])
    assert "ann" not in str(entry["details"]).lower()  # field names only, never values


async def test_it_keeps_a_contact_without_consent_time_as_not_consented(
    client: TestClient[Any, Any], make_tenant: TenantFactory
) -> None:
    tenant = await make_tenant("acme")
    contact = await created(client, tenant, phone="0412345678", consent_source="asked in store")
    assert contact["consent_at"] is None
    assert contact["consent_source"] == "asked in store"
    assert contact["tags"] == [] and contact["attributes"] == {}
    assert contact["timezone"] is None  # an Australian mobile says nothing of where they are


async def test_it_derives_the_timezone_and_refuses_an_unknown_one(
    client: TestClient[Any, Any], make_tenant: TenantFactory
) -> None:
    tenant = await make_tenant("acme")
    perth = await created(client, tenant, phone="0412345671", state="Western Australia")
    assert (perth["state"], perth["timezone"]) == ("WA", "Australia/Perth")
    brisbane = await created(client, tenant, phone="0412345672", postcode="4000")
    assert brisbane["timezone"] == "Australia/Brisbane"
    explicit = await created(client, tenant, phone="0412345673", state="WA", timezone="UTC")
    assert explicit["timezone"] == "UTC"
    kiwi = await created(client, tenant, phone="021 123 4567", country="nz")
    assert (kiwi["phone_e164"], kiwi["country"], kiwi["timezone"]) == ("+64211234567", "NZ", None)
    bad = await create(client, tenant, {"phone": "0412345674", "timezone": "Mars/Base"})
    assert bad.status == 400
    error = (await bad.json())["error"]
    assert error["code"] == "bad_request" and error["field"] == "timezone"


async def test_it_refuses_an_invalid_phone_with_the_reason(
    client: TestClient[Any, Any], make_tenant: TenantFactory
) -> None:
    tenant = await make_tenant("acme")
    for phone, reason in [
        ("12345", "invalid_number"),
        ("not a number", "unparseable"),
        ("02 9876 5432", "not_mobile"),
        ("", "missing_phone"),
        (None, "missing_phone"),
    ]:
        response = await create(client, tenant, {"phone": phone})
        assert response.status == 400, phone
        error = (await response.json())["error"]
        assert error["code"] == "invalid_phone" and error["reason"] == reason, phone
    no_phone = await create(client, tenant, {"first_name": "Ann"})
    assert (await no_phone.json())["error"]["reason"] == "missing_phone"
    assert await audit_entries(client, tenant.id) == []


async def test_it_refuses_a_duplicate_phone_in_the_tenant_only(
    client: TestClient[Any, Any], make_tenant: TenantFactory
) -> None:
    acme, other = await make_tenant("acme"), await make_tenant("other")
    first = await created(client, acme, phone="0412 345 678")
    again = await create(client, acme, {"phone": "+61 412 345 678"})
    assert again.status == 409
    error = (await again.json())["error"]
    assert error["code"] == "duplicate" and error["contact_id"] == first["id"]
    assert (await create(client, other, {"phone": "0412 345 678"})).status == 201


async def test_it_refuses_bad_json_and_bad_fields(
    client: TestClient[Any, Any], make_tenant: TenantFactory
) -> None:
    tenant = await make_tenant("acme")
    headers = {**tenant.auth("staff"), "Content-Type": "application/json"}
    for raw in (b"{not json", b"[1, 2]", b""):
        response = await client.post("/api/contacts", data=raw, headers=headers)
        assert response.status == 400
        assert (await response.json())["error"]["code"] == "bad_json"
    cases: list[tuple[dict[str, Any], str]] = [
        ({"phone": "0412345678", "phone_e164": "+61412345678"}, "phone_e164"),
        ({"phone": "0412345678", "tags": "vip"}, "tags"),
        ({"phone": "0412345678", "tags": [1]}, "tags"),
        ({"phone": "0412345678", "attributes": ["a"]}, "attributes"),
        ({"phone": "0412345678", "attributes": {"a": {"b": 1}}}, "attributes"),
        ({"phone": "0412345678", "email": "not-an-email"}, "email"),
        ({"phone": "0412345678", "country": "Australia"}, "country"),
        ({"phone": "0412345678", "consent_at": "yesterday"}, "consent_at"),
        ({"phone": "0412345678", "consent_at": "2026-02-01T00:00:00Z"}, "consent_at"),
        ({"phone": "0412345678", "first_name": 7}, "first_name"),
    ]
    for body, field in cases:
        response = await create(client, tenant, body)
        assert response.status == 400, body
        assert (await response.json())["error"]["field"] == field, body
    total = await client.app[DB].val(Sql("SELECT count(*) FROM contacts"))
    assert total == 0


async def test_it_reads_a_consent_time_without_zone_in_the_tenant_timezone(
    client: TestClient[Any, Any], make_tenant: TenantFactory
) -> None:
    tenant = await make_tenant("acme")  # Australia/Sydney: UTC+11 in January
    contact = await created(client, tenant, phone="0412345678", consent_at="2026-01-04T09:30")
    assert contact["consent_at"] == "2026-01-03T22:30:00Z"


async def test_it_lists_and_searches_contacts(
    client: TestClient[Any, Any], make_tenant: TenantFactory, clock: ManualClock
) -> None:
    tenant, other = await make_tenant("acme"), await make_tenant("other")
    ann = await created(client, tenant, **ANN)
    clock.advance(minutes=1)
    bob = await created(
        client, tenant, phone="0413 000 111", first_name="Bob", email="bob@shop.org", tags=["vi"]
    )
    clock.advance(minutes=1)
    cat = await created(client, tenant, phone="+64 21 123 4567", last_name="O'Hara_%")
    await created(client, other, phone="0412 345 678", first_name="Ann")
    viewer = tenant.auth("viewer")

    async def ids(query: str) -> list[int]:
        response = await client.get(f"/api/contacts{query}", headers=viewer)
        assert response.status == 200, await response.text()
        body = await response.json()
        assert set(body) == {"contacts", "total"}
        assert all(set(c) == CONTACT_KEYS for c in body["contacts"])
        return [c["id"] for c in body["contacts"]]

    assert await ids("") == [cat["id"], bob["id"], ann["id"]]  # newest first
    assert await ids("?phone=%2B61412345678") == [ann["id"]]
    assert await ids("?phone=+61412345678") == [ann["id"]]  # an unencoded + reads as a space
    assert await ids("?phone=0412345678") == [ann["id"]]
    assert await ids("?phone=%2B61499999999") == []
    assert await ids("?phone=rubbish") == []
    assert await ids("?q=ANN") == [ann["id"]]
    assert await ids("?q=ann%20lee") == [ann["id"]]
    assert await ids("?q=shop.ORG") == [bob["id"]]
    assert await ids("?q=345%20678") == [ann["id"]]
    assert await ids("?q=0413%20000%20111") == [bob["id"]]
    assert await ids("?q=_%25") == [cat["id"]]  # LIKE wildcards are matched literally
    assert await ids("?q=a%25") == []  # not "a" followed by anything
    assert await ids("?tag=vip") == [ann["id"]]
    assert await ids("?tag=v") == []
    assert await ids("?tag=vip&q=bob") == []
    assert await ids("?limit=2") == [cat["id"], bob["id"]]
    assert await ids("?limit=2&offset=2") == [ann["id"]]
    assert await ids("?limit=5000") == [cat["id"], bob["id"], ann["id"]]
    paged = await (await client.get("/api/contacts?limit=1", headers=viewer)).json()
    assert paged["total"] == 3 and len(paged["contacts"]) == 1
    for bad in ("?limit=abc", "?limit=0", "?offset=-1"):
        response = await client.get(f"/api/contacts{bad}", headers=viewer)
        assert response.status == 400, bad


async def test_it_shows_do_not_contact_from_the_list_by_phone(
    client: TestClient[Any, Any], make_tenant: TenantFactory
) -> None:
    tenant = await make_tenant("acme")
    contact = await created(client, tenant, phone="0412345678")
    added = await client.post(
        "/api/do-not-contact", json={"phone": "+61412345678"}, headers=tenant.auth("staff")
    )
    assert added.status == 201
    shown = await (
        await client.get(f"/api/contacts/{contact['id']}", headers=tenant.auth("viewer"))
    ).json()
    assert shown["do_not_contact"] is True
    listed = await (await client.get("/api/contacts", headers=tenant.auth("viewer"))).json()
    assert listed["contacts"][0]["do_not_contact"] is True


async def test_it_patches_only_the_fields_given(
    client: TestClient[Any, Any], make_tenant: TenantFactory, clock: ManualClock
) -> None:
    tenant = await make_tenant("acme")
    ann = await created(client, tenant, **ANN)
    bob = await created(client, tenant, phone="0413 000 111")
    clock.advance(hours=1)

    async def patch(contact_id: int, body: dict[str, Any]) -> Any:
        return await client.patch(
            f"/api/contacts/{contact_id}", json=body, headers=tenant.auth("staff")
        )

    response = await patch(ann["id"], {"first_name": "Annie"})
    assert response.status == 200
    changed = await response.json()
    assert changed == {**ann, "first_name": "Annie", "updated_at": "2026-01-05T01:00:00Z"}

    moved = await (await patch(ann["id"], {"phone": "0499 999 999", "state": "WA"})).json()
    assert (moved["phone_e164"], moved["state"]) == ("+61499999999", "WA")
    assert moved["timezone"] == "Australia/Perth"  # re-derived from the new state
    pinned = await (await patch(ann["id"], {"state": "QLD", "timezone": "Asia/Tokyo"})).json()
    assert pinned["timezone"] == "Asia/Tokyo"
    cleared = await (await patch(ann["id"], {"email": None, "tags": [], "consent_at": None})).json()
    assert (cleared["email"], cleared["tags"], cleared["consent_at"]) == (None, [], None)

    clash = await patch(ann["id"], {"phone": "0413000111"})
    assert clash.status == 409
    assert (await clash.json())["error"] == {
        "code": "duplicate",
        "message": "a contact with this phone number already exists",
        "contact_id": bob["id"],
    }
    bad = await patch(ann["id"], {"phone": "123"})
    assert bad.status == 400 and (await bad.json())["error"]["code"] == "invalid_phone"
    assert (await patch(ann["id"], {"nickname": "x"})).status == 400
    viewer = await client.patch(
        f"/api/contacts/{ann['id']}", json={"first_name": "X"}, headers=tenant.auth("viewer")
    )
    assert viewer.status == 403
    updates = [e for e in await audit_entries(client, tenant.id) if e["action"] == "contact.update"]
    assert [e["details"]["fields"] for e in updates] == [
        ["first_name"],
        ["phone", "state"],
        ["state", "timezone"],
        ["consent_at", "email", "tags"],
    ]


async def test_it_answers_404_for_unknown_ids_and_other_tenants_contacts(
    client: TestClient[Any, Any], make_tenant: TenantFactory
) -> None:
    acme, other = await make_tenant("acme"), await make_tenant("other")
    theirs = await created(client, other, **ANN)
    for contact_id in (theirs["id"], 999999, "abc"):
        path = f"/api/contacts/{contact_id}"
        checks = [
            await client.get(path, headers=acme.auth("viewer")),
            await client.patch(path, json={"first_name": "X"}, headers=acme.auth("staff")),
            await client.delete(path, headers=acme.auth("admin")),
            await client.get(f"{path}/timeline", headers=acme.auth("viewer")),
        ]
        for response in checks:
            assert response.status == 404, (contact_id, response.method)
            assert (await response.json())["error"]["code"] == "not_found"
    unchanged = await client.get(f"/api/contacts/{theirs['id']}", headers=other.auth("viewer"))
    assert await unchanged.json() == theirs
    assert await audit_entries(client, acme.id) == []


async def _campaign_with_job(
    client: TestClient[Any, Any],
    clock: ManualClock,
    tenant_id: int,
    contact_id: int,
    *,
    name: str,
    status: str,
) -> tuple[int, int]:
    db, now = client.app[DB], clock.now()
    async with db.transaction() as tx:
        campaign_id = await tx.val(
            Sql(
                "INSERT INTO campaigns (tenant_id, name, created_at, updated_at) "
                "VALUES (:t, :name, :now, :now) RETURNING id"
            ),
            t=tenant_id,
            name=name,
            now=now,
        )
        job_id = await tx.val(
            Sql(
                "INSERT INTO send_jobs (tenant_id, campaign_id, contact_id, body, parts, encoding,"
                " status, next_attempt_at, created_at, updated_at)"
                " VALUES (:t, :c, :contact, :body, 1, 'GSM-7', :status, :now, :now, :now)"
                " RETURNING id"
            ),
            t=tenant_id,
            c=campaign_id,
            contact=contact_id,
            body="Hi Ann, 20% off today. Acme: reply STOP to opt out",
            status=status,
            now=now,
        )
    return int(campaign_id), int(job_id)


async def _event(
    client: TestClient[Any, Any],
    tenant_id: int,
    contact_id: int,
    type_: str,
    when: Any,
    data: dict[str, Any],
    campaign_id: int | None = None,
) -> None:
    await client.app[DB].run(
        Sql(
            "INSERT INTO events (tenant_id, campaign_id, contact_id, type, occurred_at, data,"
            " created_at) VALUES (:t, :c, :contact, :type, :when, :data, :when)"
        ),
        t=tenant_id,
        c=campaign_id,
        contact=contact_id,
        type=type_,
        when=when,
        data=data,
    )


async def test_it_erases_a_contact_and_keeps_its_dnc_entry(
    client: TestClient[Any, Any], make_tenant: TenantFactory, clock: ManualClock
) -> None:
    tenant = await make_tenant("acme")
    ann = await created(client, tenant, **ANN)
    bob = await created(client, tenant, phone="0413 000 111", first_name="Bob")
    await client.post(
        "/api/do-not-contact", json={"phone": "0412345678"}, headers=tenant.auth("staff")
    )
    sent_campaign, sent_job = await _campaign_with_job(
        client, clock, tenant.id, ann["id"], name="spring", status="sent"
    )
    queued_campaign, queued_job = await _campaign_with_job(
        client, clock, tenant.id, ann["id"], name="summer", status="queued"
    )
    _, bobs_job = await _campaign_with_job(
        client, clock, tenant.id, bob["id"], name="bob only", status="sent"
    )
    now = clock.now()
    await _event(client, tenant.id, ann["id"], "SENT", now, {"parts": 1}, sent_campaign)
    await _event(client, tenant.id, ann["id"], "REPLIED", now, {"body": "I'm Ann from Bondi"})
    await _event(client, tenant.id, ann["id"], "OPT_OUT", now, {"body": "STOP"})
    await _event(client, tenant.id, bob["id"], "REPLIED", now, {"body": "hello"})
    clock.advance(minutes=5)

    response = await client.delete(f"/api/contacts/{ann['id']}", headers=tenant.auth("admin"))
    assert response.status == 200
    assert await response.json() == {"id": ann["id"], "erased": True}

    shown = await (
        await client.get(f"/api/contacts/{ann['id']}", headers=tenant.auth("viewer"))
    ).json()
    assert shown["erased"] is True
    for field in ("phone_e164", "email", "first_name", "last_name", "state", "postcode"):
        assert shown[field] is None, field
    assert (shown["tags"], shown["attributes"]) == ([], {})
    assert shown["updated_at"] == "2026-01-05T00:05:00Z"
    # The number stays on the do-not-contact list.
    entry = await client.get("/api/do-not-contact/+61412345678", headers=tenant.auth("viewer"))
    assert entry.status == 200
    # Message texts go; a queued job is cancelled (it has no number to go to), with its event.
    db = client.app[DB]
    jobs = {
        r["id"]: r
        for r in await db.all(Sql("SELECT id, body, status, reason FROM send_jobs ORDER BY id"))
    }
    assert jobs[sent_job]["body"] == jobs[queued_job]["body"] == "[erased]"
    assert (jobs[sent_job]["status"], jobs[queued_job]["status"]) == ("sent", "cancelled")
    assert jobs[queued_job]["reason"] == "erased"
    assert jobs[bobs_job]["body"].startswith("Hi Ann")  # another contact's job is untouched
    timeline = await (
        await client.get(f"/api/contacts/{ann['id']}/timeline", headers=tenant.auth("viewer"))
    ).json()
    assert [(e["type"], e["data"]) for e in timeline["events"]] == [
        ("SENT", {"parts": 1}),
        ("REPLIED", {"erased": True}),
        ("OPT_OUT", {"erased": True}),
        ("CANCELLED", {"reason": "erased"}),
    ]
    assert timeline["events"][-1]["campaign_id"] == queued_campaign
    bobs = await (
        await client.get(f"/api/contacts/{bob['id']}/timeline", headers=tenant.auth("viewer"))
    ).json()
    assert bobs["events"][0]["data"] == {"body": "hello"}
    # Out of searches unless asked for; cannot be changed; erasing again is harmless.
    listed = await (await client.get("/api/contacts", headers=tenant.auth("viewer"))).json()
    assert [c["id"] for c in listed["contacts"]] == [bob["id"]] and listed["total"] == 1
    everyone = await (
        await client.get("/api/contacts?include_erased=1", headers=tenant.auth("viewer"))
    ).json()
    assert [c["id"] for c in everyone["contacts"]] == [bob["id"], ann["id"]]
    patch = await client.patch(
        f"/api/contacts/{ann['id']}", json={"first_name": "Ann"}, headers=tenant.auth("staff")
    )
    assert patch.status == 409 and (await patch.json())["error"]["code"] == "erased"
    again = await client.delete(f"/api/contacts/{ann['id']}", headers=tenant.auth("admin"))
    assert again.status == 200
    # The number is free for a new contact (a fresh consent, e.g. a later import).
    assert (await create(client, tenant, {"phone": "0412345678"})).status == 201
    erasures = [e for e in await audit_entries(client, tenant.id) if e["action"] == "contact.erase"]
    assert erasures[0]["target_id"] == str(ann["id"]) and erasures[0]["api_key_id"] is not None


async def test_it_does_not_put_an_erased_number_on_the_dnc_list(
    client: TestClient[Any, Any], make_tenant: TenantFactory
) -> None:
    tenant = await make_tenant("acme")
    ann = await created(client, tenant, phone="0412345678")
    assert (
        await client.delete(f"/api/contacts/{ann['id']}", headers=tenant.auth("admin"))
    ).status == 200
    lookup = await client.get("/api/do-not-contact/+61412345678", headers=tenant.auth("viewer"))
    assert lookup.status == 404


async def test_it_refuses_erasure_to_staff_and_viewers(
    client: TestClient[Any, Any], make_tenant: TenantFactory, sign_in: SignIn
) -> None:
    tenant = await make_tenant("acme")
    ann = await created(client, tenant, **ANN)
    staff = await sign_in("staff@example.com", tenant_id=tenant.id, role="staff")
    for headers in (
        tenant.auth("staff"),
        tenant.auth("viewer"),
        staff.headers(unsafe=True),
    ):
        response = await client.delete(f"/api/contacts/{ann['id']}", headers=headers)
        assert response.status == 403
        assert (await response.json())["error"]["code"] == "forbidden"
    shown = await client.get(f"/api/contacts/{ann['id']}", headers=tenant.auth("viewer"))
    assert await shown.json() == ann
    actions = [e["action"] for e in await audit_entries(client, tenant.id)]
    assert "contact.erase" not in actions


async def test_it_answers_the_timeline_oldest_first(
    client: TestClient[Any, Any], make_tenant: TenantFactory, clock: ManualClock
) -> None:
    tenant = await make_tenant("acme")
    ann = await created(client, tenant, phone="0412345678")
    now = clock.now()
    await _event(client, tenant.id, ann["id"], "DELIVERED", now + timedelta(minutes=2), {})
    await _event(client, tenant.id, ann["id"], "IMPORTED", now - timedelta(days=1), {"batch": 1})
    await _event(client, tenant.id, ann["id"], "SENT", now + timedelta(minutes=1), {})
    response = await client.get(
        f"/api/contacts/{ann['id']}/timeline", headers=tenant.auth("viewer")
    )
    assert response.status == 200
    events = (await response.json())["events"]
    assert [set(e) for e in events] == [{"type", "occurred_at", "campaign_id", "data"}] * 3
    assert [(e["type"], e["occurred_at"]) for e in events] == [
        ("IMPORTED", "2026-01-04T00:00:00Z"),
        ("SENT", "2026-01-05T00:01:00Z"),
        ("DELIVERED", "2026-01-05T00:02:00Z"),
    ]
    assert events[0]["data"] == {"batch": 1} and events[0]["campaign_id"] is None


# --- admin pages ---------------------------------------------------------------------------


async def test_it_renders_the_contact_pages_for_a_viewer(
    client: TestClient[Any, Any], make_tenant: TenantFactory, sign_in: SignIn
) -> None:
    tenant = await make_tenant("acme")
    ann = await created(client, tenant, **ANN)
    await created(client, tenant, phone="0413000111", first_name="<b>Bob</b>")
    await client.post(
        "/api/do-not-contact", json={"phone": "0413000111"}, headers=tenant.auth("staff")
    )
    viewer = await sign_in("v@example.com", tenant_id=tenant.id, role="viewer")

    page = await client.get("/admin/contacts", headers=viewer.headers())
    text = await page.text()
    assert page.status == 200
    assert 'href="/admin/contacts" aria-current="page"' in text
    assert "+61412345678" in text and "+61413000111" in text
    assert "&lt;b&gt;Bob&lt;/b&gt;" in text and "<b>Bob</b>" not in text
    assert text.count("no consent") == 1  # Bob has none; Ann has
    assert ">DNC<" in text
    assert "/admin/contacts/new" not in text  # viewers cannot create
    searched = await (await client.get("/admin/contacts?q=ann", headers=viewer.headers())).text()
    assert "+61412345678" in searched and "+61413000111" not in searched
    tagged = await (await client.get("/admin/contacts?tag=vip", headers=viewer.headers())).text()
    assert "+61412345678" in tagged and "+61413000111" not in tagged

    detail = await client.get(f"/admin/contacts/{ann['id']}", headers=viewer.headers())
    text = await detail.text()
    assert detail.status == 200
    assert "ann.lee@example.com" in text and "Australia/Sydney" in text
    assert "not on the list" in text
    assert f'action="/admin/contacts/{ann["id"]}"' not in text  # no edit form for viewers
    assert "/erase" not in text
    assert (await client.get("/admin/contacts/new", headers=viewer.headers())).status == 403
    assert (await client.get("/admin/contacts/999999", headers=viewer.headers())).status == 404


async def test_it_pages_through_contacts(
    client: TestClient[Any, Any], make_tenant: TenantFactory, sign_in: SignIn
) -> None:
    tenant = await make_tenant("acme")
    db = client.app[DB]
    await db.run_many(
        Sql(
            "INSERT INTO contacts (tenant_id, phone_e164, created_at, updated_at)"
            " VALUES (:t, :phone, :now, :now)"
        ),
        [
            {"t": tenant.id, "phone": f"+614120000{i:02d}", "now": ManualClock().now()}
            for i in range(55)
        ],
    )
    viewer = await sign_in("v@example.com", tenant_id=tenant.id, role="viewer")
    first = await (await client.get("/admin/contacts", headers=viewer.headers())).text()
    assert "55 contacts" in first and "+61412000054" in first and "+61412000004" not in first
    assert "page=2" in first
    second = await (await client.get("/admin/contacts?page=2", headers=viewer.headers())).text()
    assert "+61412000004" in second and "+61412000054" not in second


async def test_it_creates_and_edits_a_contact_through_the_forms(
    client: TestClient[Any, Any], make_tenant: TenantFactory, sign_in: SignIn
) -> None:
    tenant = await make_tenant("acme")
    staff = await sign_in("s@example.com", tenant_id=tenant.id, role="staff")
    form_page = await client.get("/admin/contacts/new", headers=staff.headers())
    assert form_page.status == 200
    assert f'name="csrf_token" value="{staff.csrf}"' in await form_page.text()

    form = {
        "csrf_token": staff.csrf,
        "phone": "0412 345 678",
        "first_name": "Ann",
        "last_name": "",
        "email": "ANN@example.com",
        "country": "AU",
        "state": "NSW",
        "postcode": "",
        "timezone": "",
        "tags": "vip, newsletter",
        "attributes": "plan=gold\n\ncity = Sydney",
        "consent_source": "paper form",
        "consent_at": "2026-01-04T09:30",
    }
    made = await client.post(
        "/admin/contacts", data=form, headers=staff.headers(), allow_redirects=False
    )
    assert made.status == 303
    location = made.headers["Location"]
    contact_id = int(location.rsplit("/", 1)[1])
    contact = await (
        await client.get(f"/api/contacts/{contact_id}", headers=tenant.auth("viewer"))
    ).json()
    assert contact["phone_e164"] == "+61412345678" and contact["email"] == "ann@example.com"
    assert contact["tags"] == ["vip", "newsletter"]
    assert contact["attributes"] == {"plan": "gold", "city": "Sydney"}
    assert contact["consent_at"] == "2026-01-03T22:30:00Z"  # read in the tenant's timezone
    assert contact["timezone"] == "Australia/Sydney"

    # A form error re-renders the form with the message and what was typed.
    bad = await client.post(
        "/admin/contacts",
        data={**form, "phone": "12345", "first_name": "Typed"},
        headers=staff.headers(),
    )
    assert bad.status == 400
    text = await bad.text()
    assert "is not a valid phone number" in text and 'value="Typed"' in text
    duplicate = await client.post("/admin/contacts", data=form, headers=staff.headers())
    assert duplicate.status == 409
    assert "already exists" in await duplicate.text()

    # The edit form: a changed state re-derives the timezone it shows.
    detail = await (await client.get(location, headers=staff.headers())).text()
    assert f'action="/admin/contacts/{contact_id}"' in detail
    shown = {**form, "phone": "+61412345678", "email": "ann@example.com"}
    shown["attributes"] = "plan=gold\ncity=Sydney"
    shown["timezone"] = "Australia/Sydney"
    edited = await client.post(
        location,
        data={**shown, "state": "WA", "last_name": "Lee"},
        headers=staff.headers(),
        allow_redirects=False,
    )
    assert edited.status == 303
    contact = await (
        await client.get(f"/api/contacts/{contact_id}", headers=tenant.auth("viewer"))
    ).json()
    assert (contact["state"], contact["timezone"]) == ("WA", "Australia/Perth")
    assert contact["last_name"] == "Lee" and contact["consent_at"] == "2026-01-03T22:30:00Z"
    bad_edit = await client.post(location, data={**shown, "email": "nope"}, headers=staff.headers())
    assert bad_edit.status == 400
    assert "is not an email address" in await bad_edit.text()

    no_csrf = await client.post(
        "/admin/contacts", data={**form, "csrf_token": ""}, headers=staff.headers()
    )
    assert no_csrf.status == 403


async def test_it_erases_through_a_confirmation_page_for_admins_only(
    client: TestClient[Any, Any], make_tenant: TenantFactory, sign_in: SignIn
) -> None:
    tenant = await make_tenant("acme")
    ann = await created(client, tenant, **ANN)
    staff = await sign_in("s@example.com", tenant_id=tenant.id, role="staff")
    admin = await sign_in("a@example.com", tenant_id=tenant.id, role="admin")
    path = f"/admin/contacts/{ann['id']}"

    assert f"{path}/erase" not in await (await client.get(path, headers=staff.headers())).text()
    assert (await client.get(f"{path}/erase", headers=staff.headers())).status == 403
    refused = await client.post(
        f"{path}/erase", data={"csrf_token": staff.csrf}, headers=staff.headers()
    )
    assert refused.status == 403

    assert f"{path}/erase" in await (await client.get(path, headers=admin.headers())).text()
    confirm = await client.get(f"{path}/erase", headers=admin.headers())
    assert confirm.status == 200
    assert "Erase for good" in await confirm.text()
    erased = await client.post(
        f"{path}/erase",
        data={"csrf_token": admin.csrf},
        headers=admin.headers(),
        allow_redirects=False,
    )
    assert erased.status == 303 and erased.headers["Location"] == path
    shown = await (
        await client.get(f"/api/contacts/{ann['id']}", headers=tenant.auth("viewer"))
    ).json()
    assert shown["erased"] is True and shown["phone_e164"] is None
    page = await (await client.get(path, headers=admin.headers())).text()
    assert "Erased contact" in page and "ann.lee@example.com" not in page
