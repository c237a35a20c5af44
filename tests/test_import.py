"""The contacts import through its API, on both backends (pack §6, §17)."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from smsapp.clock import ManualClock
from smsapp.db import Sql
from smsapp.imports import reading, service
from smsapp.keys import DB
from smsapp.workers import shutdown_pool
from tests.conftest import TenantFactory, TenantFixture

MAPPING = {
    "phone": "Mobile", "email": "Email", "first_name": "First Name", "last_name": "Last Name",
    "state": "State", "tags": "Tags", "tier": "Tier",
}  # fmt: skip


def upload(
    text: str | bytes,
    mapping: object = MAPPING,
    *,
    filename: str = "contacts.csv",
    key: str | None = None,
) -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field(
        "file",
        text.encode() if isinstance(text, str) else text,
        filename=filename,
        content_type="text/csv",
    )
    form.add_field("mapping", mapping if isinstance(mapping, str) else json.dumps(mapping))
    if key:
        form.add_field("idempotency_key", key)
    return form


async def dry_run(
    client: TestClient[Any, Any],
    tenant: TenantFixture,
    text: str | bytes,
    mapping: object = MAPPING,
    **kwargs: Any,
) -> tuple[int, dict[str, Any]]:
    response = await client.post(
        "/api/imports/contacts/dry-run",
        data=upload(text, mapping, **kwargs),
        headers=tenant.auth("staff"),
    )
    return response.status, await response.json()


async def commit(
    client: TestClient[Any, Any], tenant: TenantFixture, import_id: int, **extra: Any
) -> tuple[int, dict[str, Any]]:
    body = {"import_id": import_id, "consent_confirmed": True, **extra}
    response = await client.post(
        "/api/imports/contacts/commit", json=body, headers=tenant.auth("staff")
    )
    return response.status, await response.json()


async def table_counts(client: TestClient[Any, Any]) -> dict[str, int]:
    db = client.app[DB]
    return {
        t: await db.val(Sql(f"SELECT count(*) FROM {t}"))
        for t in ("contacts", "import_batches", "import_rows", "events")
    }


@pytest.fixture
async def acme(make_tenant: TenantFactory) -> TenantFixture:
    return await make_tenant("acme")


async def seed_lists(
    client: TestClient[Any, Any], tenant: TenantFixture, clock: ManualClock
) -> None:
    """An existing contact by phone, one by email, a DNC number and a suppressed number."""
    db, now = client.app[DB], clock.now()
    for phone, email, tags in [
        ("+61412000004", None, ["old"]),
        ("+61499999999", "old@example.com", []),
    ]:
        await db.run(
            Sql(
                "INSERT INTO contacts (tenant_id, phone_e164, email, first_name, tags, "
                "consent_source, consent_at, created_at, updated_at) "
                "VALUES (:t, :p, :e, 'Kept', :tags, 'web', :now, :now, :now)"
            ),
            t=tenant.id,
            p=phone,
            e=email,
            tags=tags,
            now=now,
        )
    await db.run(
        Sql(
            "INSERT INTO do_not_contact (tenant_id, phone_e164, source, created_at) "
            "VALUES (:t, '+61412000002', 'manual', :now)"
        ),
        t=tenant.id,
        now=now,
    )
    await db.run(
        Sql(
            "INSERT INTO suppression_rules (tenant_id, phone_e164, kind, expires_at, created_at) "
            "VALUES (:t, '+61412000003', 'cooldown', :later, :now)"
        ),
        t=tenant.id,
        later=clock.now().replace(year=2027),
        now=now,
    )


CRAFTED = (
    "Mobile,Email,First Name,Last Name,State,Tags,Tier\n"
    "not a number,,Bad,,,,\n"                          # 2 invalid_phone unparseable
    ",,NoPhone,,,,\n"                                   # 3 invalid_phone missing_phone
    "(02) 9876 5432,,Land,,,,\n"                        # 4 invalid_phone not_mobile
    "0412 345,,Short,,,,\n"                             # 5 invalid_phone invalid_number
    "0412000001,new@example.com,Ann,Lee,WA,vip,gold\n"  # 6 create
    "+61 412 000 001,,Dup,,,,\n"                        # 7 duplicate of 6
    "0412000002,,Dnc,,,,\n"                             # 8 dnc
    "0412000003,,Supp,,,,\n"                            # 9 suppressed_by_cooldown
    "0412000004,,,Smith,,winter,\n"                     # 10 update by phone
    "0412000005,OLD@example.com,,,,,\n"                 # 11 update by email (phone moves)
)  # fmt: skip


async def test_it_decides_every_row_with_its_reason(
    client: TestClient[Any, Any], acme: TenantFixture, clock: ManualClock
) -> None:
    await seed_lists(client, acme, clock)
    status, body = await dry_run(client, acme, CRAFTED)
    assert status == 201, body
    assert body["counts"] == {"invalid_phone": 4, "duplicate": 1, "dnc": 1,
                              "suppressed_by_cooldown": 1, "update": 2, "create": 1}  # fmt: skip
    assert [
        (d["row"], d["decision"], d["reasons"], d["phone_e164"]) for d in body["decisions"]
    ] == [
        (2, "invalid_phone", ["unparseable"], None),
        (3, "invalid_phone", ["missing_phone"], None),
        (4, "invalid_phone", ["not_mobile"], None),
        (5, "invalid_phone", ["invalid_number"], None),
        (6, "create", [], "+61412000001"),
        (7, "duplicate", ["duplicate_of_row:6"], "+61412000001"),
        (8, "dnc", ["dnc"], "+61412000002"),
        (9, "suppressed_by_cooldown", ["suppressed"], "+61412000003"),
        (10, "update", ["matched_phone"], "+61412000004"),
        (11, "update", ["matched_email", "phone_changed"], "+61412000005"),
    ]


async def test_it_touches_no_contact_at_dry_run_and_stores_the_batch(
    client: TestClient[Any, Any], acme: TenantFixture, clock: ManualClock
) -> None:
    await seed_lists(client, acme, clock)
    before = await table_counts(client)
    _, body = await dry_run(client, acme, CRAFTED)
    after = await table_counts(client)
    assert after["contacts"] == before["contacts"]
    assert after["import_batches"] == before["import_batches"] + 1
    assert after["import_rows"] == before["import_rows"] + 10
    summary = await (
        await client.get(f"/api/imports/{body['import_id']}", headers=acme.auth("viewer"))
    ).json()
    assert summary["status"] == "dry_run" and summary["rows"] == 10


async def test_it_commits_creates_and_updates_with_lineage_and_merges(
    client: TestClient[Any, Any], acme: TenantFixture, clock: ManualClock
) -> None:
    await seed_lists(client, acme, clock)
    _, dry = await dry_run(client, acme, CRAFTED)
    clock.advance(minutes=5)
    status, body = await commit(client, acme, dry["import_id"])
    assert status == 200, body
    assert body["status"] == "committed"
    assert body["counts"]["create"] == 1 and body["counts"]["update"] == 2
    db = client.app[DB]
    contacts = {
        c["phone_e164"]: c
        for c in await db.all(Sql("SELECT * FROM contacts WHERE tenant_id = :t"), t=acme.id)
    }
    ann = contacts["+61412000001"]
    assert (ann["first_name"], ann["last_name"], ann["email"], ann["country"]) == (
        "Ann",
        "Lee",
        "new@example.com",
        "AU",
    )
    assert ann["timezone"] == "Australia/Perth" and ann["state"] == "WA"
    assert ann["tags"] == ["vip"] and ann["attributes"] == {"tier": "gold"}
    assert ann["consent_at"] == clock.now() and "import #" in ann["consent_source"]
    assert ann["last_import_batch_id"] == dry["import_id"]
    # Update by phone: empty cells keep old values, tags merge, consent kept.
    smith = contacts["+61412000004"]
    assert (smith["first_name"], smith["last_name"]) == ("Kept", "Smith")
    assert smith["tags"] == ["old", "winter"]
    assert smith["consent_source"] == "web"
    assert smith["last_import_batch_id"] == dry["import_id"]
    # Update by email: the contact moved to the new number; the old one is in the lineage.
    assert "+61499999999" not in contacts
    moved = contacts["+61412000005"]
    assert moved["email"] == "old@example.com"
    lineage = {
        r["row_number"]: r
        for r in await db.all(
            Sql("SELECT * FROM import_rows WHERE import_batch_id = :b"), b=dry["import_id"]
        )
    }
    assert len(lineage) == 10
    assert lineage[11]["previous_phone_e164"] == "+61499999999"
    assert lineage[11]["contact_id"] == moved["id"]
    assert lineage[6]["contact_id"] == ann["id"]
    assert lineage[8]["contact_id"] is None and lineage[8]["decision"] == "dnc"
    # Rejected rows touched no contact.
    assert "+61412000002" not in contacts and "+61412000003" not in contacts
    events = await db.all(
        Sql("SELECT contact_id FROM events WHERE type = 'IMPORTED' AND tenant_id = :t"), t=acme.id
    )
    assert sorted(e["contact_id"] for e in events) == sorted([ann["id"], smith["id"], moved["id"]])
    batch = await db.one(Sql("SELECT * FROM import_batches WHERE id = :b"), b=dry["import_id"])
    assert batch is not None and batch["consent_confirmed_at"] == clock.now()


async def test_it_creates_contacts_with_each_rows_own_values_or_the_defaults(
    client: TestClient[Any, Any], acme: TenantFixture, clock: ManualClock
) -> None:
    text = (
        "Mobile,Country,Postcode,Source,Consent,Tier\n"
        "0412000001,,6000,shop,2025-03-01T09:30:00Z,gold\n"
        "021 234 5678,NZ,,,2025-03-01T09:30:00.250Z,\n"
        "0412000003,,,,,\n"
    )
    mapping = {"phone": "Mobile", "country": "Country", "postcode": "Postcode",
               "consent_source": "Source", "consent_at": "Consent", "tier": "Tier"}  # fmt: skip
    _, dry = await dry_run(client, acme, text, mapping)
    clock.advance(minutes=5)
    status, body = await commit(client, acme, dry["import_id"])
    assert status == 200 and body["counts"]["create"] == 3, body
    db = client.app[DB]
    got = {
        c["phone_e164"]: (c["country"], c["postcode"], c["timezone"], c["tags"],
                          c["attributes"], c["consent_source"], c["consent_at"])
        for c in await db.all(Sql("SELECT * FROM contacts WHERE tenant_id = :t"), t=acme.id)
    }  # fmt: skip
    first = clock.now().replace(2025, 3, 1, 9, 30, 0, 0)
    second = first.replace(microsecond=250_000)
    source = f"import #{dry['import_id']}"
    assert got == {
        "+61412000001": ("AU", "6000", "Australia/Perth", [], {"tier": "gold"}, "shop", first),
        "+64212345678": ("NZ", None, None, [], {}, source, second),
        "+61412000003": ("AU", None, None, [], {}, source, clock.now()),
    }
    # Stored as every other time is (on SQLite: one text format, so that times compare).
    for at in (first, second, clock.now()):
        assert (
            await db.val(
                Sql("SELECT count(*) FROM contacts WHERE tenant_id = :t AND consent_at = :at"),
                t=acme.id,
                at=at,
            )
            == 1
        )


async def _import_lineage_and_contacts(
    client: TestClient[Any, Any], tenant: TenantFixture, clock: ManualClock
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    await seed_lists(client, tenant, clock)
    _, dry = await dry_run(client, tenant, CRAFTED)
    status, _ = await commit(client, tenant, dry["import_id"])
    assert status == 200
    db = client.app[DB]
    lineage = await db.all(
        Sql("SELECT r.row_number, r.data, r.raw, r.decision, r.reasons, c.phone_e164, "
            "r.previous_phone_e164 FROM import_rows r LEFT JOIN contacts c ON c.id = r.contact_id "
            "WHERE r.import_batch_id = :b ORDER BY r.row_number"),
        b=dry["import_id"],
    )  # fmt: skip
    contacts = await db.all(
        Sql("SELECT phone_e164, email, first_name, last_name, tags, attributes, consent_source "
            "FROM contacts WHERE tenant_id = :t ORDER BY phone_e164"),
        t=tenant.id,
    )  # fmt: skip
    source = f"import #{dry['import_id']}"
    return (
        [tuple(r.values()) for r in lineage],
        [tuple(str(v).replace(source, "import #N") for v in c.values()) for c in contacts],
    )


async def test_it_imports_the_same_in_worker_processes_and_small_chunks(
    client: TestClient[Any, Any],
    make_tenant: TenantFactory,
    clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The path of large files (rows normalised in worker processes, in several chunks, written
    and read back a few rows at a time) ends exactly as the path of small ones."""
    expected = await _import_lineage_and_contacts(client, await make_tenant("small"), clock)
    monkeypatch.setattr(service, "PARALLEL_MIN_ROWS", 1)
    monkeypatch.setattr(service, "CHUNK_ROWS", 3)
    monkeypatch.setattr(service, "WRITE_CHUNK", 2)
    monkeypatch.setattr(service, "READ_CHUNK", 3)
    try:
        got = await _import_lineage_and_contacts(client, await make_tenant("large"), clock)
    finally:
        await asyncio.to_thread(shutdown_pool)
    assert got == expected
    assert len(expected[0]) == 10 and len(expected[1]) == 3


async def test_it_writes_nothing_when_a_large_file_fails_part_way(
    client: TestClient[Any, Any],
    acme: TenantFixture,
    clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A large file's rows are handed to the workers as they are read; a row past the limit,
    found after the first chunks were handed over, still refuses the file whole."""
    monkeypatch.setattr(service, "PARALLEL_MIN_ROWS", 1)
    monkeypatch.setattr(service, "CHUNK_ROWS", 2)
    monkeypatch.setattr(reading, "MAX_ROWS", 8)
    before = await table_counts(client)
    try:
        status, body = await dry_run(client, acme, CRAFTED)  # 10 rows
    finally:
        await asyncio.to_thread(shutdown_pool)
    assert (status, body["error"]["code"]) == (413, "too_many_rows"), body
    assert await table_counts(client) == before


async def test_it_recomputes_decisions_at_commit(
    client: TestClient[Any, Any], acme: TenantFixture, clock: ManualClock
) -> None:
    _, dry = await dry_run(client, acme, "Mobile\n0412000001\n0412000009\n", {"phone": "Mobile"})
    assert dry["counts"]["create"] == 2
    await client.app[DB].run(
        Sql(
            "INSERT INTO do_not_contact (tenant_id, phone_e164, source, created_at) "
            "VALUES (:t, '+61412000009', 'stop_keyword', :now)"
        ),
        t=acme.id,
        now=clock.now(),
    )
    _, body = await commit(client, acme, dry["import_id"])
    assert body["counts"]["create"] == 1 and body["counts"]["dnc"] == 1
    assert (
        await client.app[DB].val(
            Sql("SELECT count(*) FROM contacts WHERE phone_e164 = '+61412000009'")
        )
        == 0
    )


async def test_it_applies_a_batch_once_when_committed_twice(
    client: TestClient[Any, Any], acme: TenantFixture
) -> None:
    _, dry = await dry_run(client, acme, CRAFTED)
    first = await commit(client, acme, dry["import_id"])
    before = await table_counts(client)
    second = await commit(client, acme, dry["import_id"])
    assert second == first
    assert await table_counts(client) == before


async def test_it_applies_a_batch_once_when_committed_concurrently(
    client: TestClient[Any, Any], acme: TenantFixture
) -> None:
    _, dry = await dry_run(client, acme, CRAFTED)
    results = await asyncio.gather(*[commit(client, acme, dry["import_id"]) for _ in range(3)])
    assert all(r == results[0] for r in results)
    counts = results[0][1]["counts"]
    assert counts["create"] == 5
    imported = await client.app[DB].val(Sql("SELECT count(*) FROM events WHERE type = 'IMPORTED'"))
    assert imported == counts["create"] + counts["update"]
    assert await client.app[DB].val(Sql("SELECT count(*) FROM contacts")) == 5


async def test_it_creates_no_duplicate_contact_from_overlapping_files(
    client: TestClient[Any, Any], acme: TenantFixture
) -> None:
    first = "Mobile,First Name\n0412000001,A\n0412000002,B\n"
    second = "Mobile,First Name\n+61412000002,B2\n0412000003,C\n"
    mapping = {"phone": "Mobile", "first_name": "First Name"}
    for text in (first, second):
        _, dry = await dry_run(client, acme, text, mapping)
        await commit(client, acme, dry["import_id"])
    rows = await client.app[DB].all(
        Sql("SELECT phone_e164, first_name FROM contacts ORDER BY phone_e164")
    )
    assert rows == [
        {"phone_e164": "+61412000001", "first_name": "A"},
        {"phone_e164": "+61412000002", "first_name": "B2"},
        {"phone_e164": "+61412000003", "first_name": "C"},
    ]


async def test_it_returns_the_earlier_batch_for_a_retried_upload_with_the_same_key(
    client: TestClient[Any, Any], acme: TenantFixture
) -> None:
    s1, first = await dry_run(client, acme, CRAFTED, key="upload-1")
    s2, again = await dry_run(client, acme, CRAFTED, key="upload-1")
    assert (s1, s2) == (201, 200)
    assert again["import_id"] == first["import_id"] and again["counts"] == first["counts"]
    s3, other = await dry_run(client, acme, CRAFTED + "0412000008,,,,,,\n", key="upload-1")
    assert s3 == 409 and other["error"]["code"] == "idempotency_key_reused"
    _, no_key = await dry_run(client, acme, CRAFTED)
    assert no_key["import_id"] != first["import_id"]  # without a key a new upload is a new import


async def test_it_returns_the_first_commit_for_a_retried_commit_with_the_same_key(
    client: TestClient[Any, Any], acme: TenantFixture
) -> None:
    _, a = await dry_run(client, acme, CRAFTED)
    _, b = await dry_run(client, acme, CRAFTED)
    first = await commit(client, acme, a["import_id"], idempotency_key="commit-1")
    retried = await commit(client, acme, b["import_id"], idempotency_key="commit-1")
    assert retried == first
    status = await (
        await client.get(f"/api/imports/{b['import_id']}", headers=acme.auth("viewer"))
    ).json()
    assert status["status"] == "dry_run"


async def test_it_exports_rejected_rows_with_original_columns_and_neutralised_cells(
    client: TestClient[Any, Any], acme: TenantFixture, clock: ManualClock
) -> None:
    await seed_lists(client, acme, clock)
    text = CRAFTED + '=HYPERLINK("http://evil"),@SUM(1),+cmd,-2,\tx,,\n'
    _, dry = await dry_run(client, acme, text)
    response = await client.get(
        f"/api/imports/{dry['import_id']}/rejected.csv", headers=acme.auth("viewer")
    )
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(await response.text())))
    assert rows[0] == [
        "Mobile",
        "Email",
        "First Name",
        "Last Name",
        "State",
        "Tags",
        "Tier",
        "decision",
        "reason",
    ]
    by_decision = [(r[0], r[-2], r[-1]) for r in rows[1:]]
    assert by_decision[:3] == [
        ("not a number", "invalid_phone", "unparseable"),
        ("", "invalid_phone", "missing_phone"),
        ("(02) 9876 5432", "invalid_phone", "not_mobile"),
    ]
    assert ("+61 412 000 001", "duplicate", "duplicate_of_row:6") not in by_decision  # neutralised
    assert ("'+61 412 000 001", "duplicate", "duplicate_of_row:6") in by_decision
    assert ("0412000002", "dnc", "dnc") in by_decision
    evil = rows[-1]
    assert evil[:5] == ['\'=HYPERLINK("http://evil")', "'@SUM(1)", "'+cmd", "'-2", "'\tx"]
    assert len(rows) == 1 + 8  # 4 invalid + duplicate + dnc + suppressed + the evil row


@pytest.mark.parametrize(
    ("case", "status", "code"),
    [
        ("missing header", 400, "missing_header"),
        ("no phone mapping", 400, "bad_mapping"),
        ("mapping not json", 400, "bad_mapping"),
        ("empty file", 400, "empty_file"),
        ("binary file", 400, "not_csv"),
        ("no file", 400, "missing_file"),
        ("not multipart", 400, "bad_request"),
    ],
)
async def test_it_answers_bad_input_clearly_and_writes_nothing(
    client: TestClient[Any, Any], acme: TenantFixture, case: str, status: int, code: str
) -> None:
    before = await table_counts(client)
    url, h = "/api/imports/contacts/dry-run", acme.auth("staff")
    if case == "missing header":
        response = await client.post(url, data=upload("Phone,Name\n0412000001,A\n"), headers=h)
    elif case == "no phone mapping":
        response = await client.post(
            url, data=upload("Mobile\n0412000001\n", {"email": "Mobile"}), headers=h
        )
    elif case == "mapping not json":
        response = await client.post(
            url, data=upload("Mobile\n0412000001\n", "{phone: Mobile"), headers=h
        )
    elif case == "empty file":
        response = await client.post(url, data=upload(""), headers=h)
    elif case == "binary file":
        response = await client.post(url, data=upload(b"PK\x03\x04\x00\x00\x00"), headers=h)
    elif case == "no file":
        form = aiohttp.FormData(default_to_multipart=True)
        form.add_field("mapping", json.dumps(MAPPING))
        response = await client.post(url, data=form, headers=h)
    else:
        response = await client.post(url, json={"mapping": MAPPING}, headers=h)
    body = await response.json()
    assert (response.status, body["error"]["code"]) == (status, code), body
    assert body["error"]["message"]
    assert await table_counts(client) == before


async def test_it_names_the_missing_header(
    client: TestClient[Any, Any], acme: TenantFixture
) -> None:
    _, body = await dry_run(client, acme, "Phone,Name\n0412000001,A\n")
    assert "'Mobile'" in body["error"]["message"]


async def test_it_refuses_an_upload_over_50_mb_with_413(
    client: TestClient[Any, Any], acme: TenantFixture
) -> None:
    big = b"Mobile\n" + b"0412000001\n" * (50 * 1024 * 1024 // 11 + 10)
    before = await table_counts(client)
    status, body = await dry_run(client, acme, big, {"phone": "Mobile"})
    assert status == 413 and body["error"]["code"] == "file_too_large"
    assert await table_counts(client) == before


async def test_it_refuses_commit_without_consent_and_unknown_or_foreign_ids(
    client: TestClient[Any, Any], acme: TenantFixture, make_tenant: TenantFactory
) -> None:
    other = await make_tenant("other")
    _, dry = await dry_run(client, acme, CRAFTED)
    no_consent = await client.post(
        "/api/imports/contacts/commit",
        json={"import_id": dry["import_id"]},
        headers=acme.auth("staff"),
    )
    assert (
        no_consent.status == 400
        and (await no_consent.json())["error"]["code"] == "consent_required"
    )
    assert (await commit(client, acme, 999999))[0] == 404
    assert (await commit(client, other, dry["import_id"]))[0] == 404
    for path in (
        f"/api/imports/{dry['import_id']}",
        f"/api/imports/{dry['import_id']}/rejected.csv",
    ):
        assert (await client.get(path, headers=other.auth("admin"))).status == 404
    bad = await client.post(
        "/api/imports/contacts/commit", data=b"{nope", headers=acme.auth("staff")
    )
    assert bad.status == 400 and (await bad.json())["error"]["code"] == "bad_json"
    assert await client.app[DB].val(Sql("SELECT count(*) FROM contacts")) == 0


async def test_it_refuses_imports_to_viewers(
    client: TestClient[Any, Any], acme: TenantFixture
) -> None:
    response = await client.post(
        "/api/imports/contacts/dry-run", data=upload(CRAFTED), headers=acme.auth("viewer")
    )
    assert response.status == 403


async def test_it_caps_the_preview_at_200_decisions(
    client: TestClient[Any, Any], acme: TenantFixture
) -> None:
    text = "Mobile\n" + "".join(f"04120{n:05d}\n" for n in range(300))
    form = upload(text, {"phone": "Mobile"})
    response = await client.post(
        "/api/imports/contacts/dry-run?limit=500", data=form, headers=acme.auth("staff")
    )
    body = await response.json()
    assert len(body["decisions"]) == 200 and body["counts"]["create"] == 300
    _, default = await dry_run(client, acme, text, {"phone": "Mobile"})
    assert len(default["decisions"]) == 50


async def test_it_reads_a_latin1_file_with_a_bom_less_semicolon_layout(
    client: TestClient[Any, Any], acme: TenantFixture
) -> None:
    data = "Mobile;First Name\n0412000001;Zoë\n".encode("latin-1")
    status, dry = await dry_run(client, acme, data, {"phone": "Mobile", "first_name": "First Name"})
    assert status == 201 and dry["encoding"] == "latin-1" and dry["delimiter"] == ";"
    await commit(client, acme, dry["import_id"])
    assert await client.app[DB].val(Sql("SELECT first_name FROM contacts")) == "Zoë"
