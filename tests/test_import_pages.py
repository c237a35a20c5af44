"""The contacts import admin pages, on both backends: upload with a guessed mapping, preview,
remap, commit with consent, the list of past imports, and who may do what (pack §2, §6)."""

from __future__ import annotations

import csv
import html
import io
import re
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from smsapp.db import Sql
from smsapp.keys import DB
from tests.conftest import SignedIn, SignIn, TenantFactory, TenantFixture

CSV = (
    "Mobile,Email,First Name,Tags,Tier\n"
    "0412 000 001,ann@example.com,Ann,vip,gold\n"  # 2 create
    '0412000002,bob@example.com,Bob,"vip,news",\n'  # 3 create
    "not a number,carl@example.com,Carl,,\n"  # 4 invalid_phone
    "+61 412 000 001,ann2@example.com,Ann again,,\n"  # 5 duplicate of row 2
)
GUESSED = {"phone": "Mobile", "email": "Email", "first_name": "First Name", "tags": "Tags"}


def csv_form(text: str | bytes, *, filename: str = "people.csv", **fields: str) -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field(
        "file",
        text.encode() if isinstance(text, str) else text,
        filename=filename,
        content_type="text/csv",
    )
    for name, value in fields.items():
        form.add_field(name, value)
    return form


async def upload(
    client: TestClient[Any, Any],
    user: SignedIn,
    text: str | bytes,
    *,
    csrf: str | None = None,
    **fields: str,
) -> aiohttp.ClientResponse:
    return await client.post(
        f"/admin/imports/upload?csrf_token={user.csrf if csrf is None else csrf}",
        data=csv_form(text, **fields),
        headers=user.headers(),
        allow_redirects=False,
    )


def import_id_of(response: aiohttp.ClientResponse) -> int:
    assert response.status == 303, response.status
    match = re.fullmatch(r"/admin/imports/(\d+)", response.headers["Location"])
    assert match, response.headers["Location"]
    return int(match.group(1))


async def post_form(
    client: TestClient[Any, Any], user: SignedIn, path: str, data: dict[str, str]
) -> aiohttp.ClientResponse:
    return await client.post(
        path,
        data={"csrf_token": user.csrf, **data},
        headers=user.headers(),
        allow_redirects=False,
    )


async def page(client: TestClient[Any, Any], user: SignedIn, path: str) -> tuple[int, str]:
    response = await client.get(path, headers=user.headers(), allow_redirects=False)
    return response.status, await response.text()


def counts_on(text: str) -> dict[str, int]:
    found = re.findall(
        r'data-testid="count-([a-z_]+)">\s*<h2>[^<]*</h2><p class="big">([\d,]+)</p>', text
    )
    return {name: int(n.replace(",", "")) for name, n in found}


def flash_of(response: aiohttp.ClientResponse) -> str:
    """The flash message a redirect sets for the next page (a signed cookie)."""
    import base64
    import json

    cookie = response.cookies["smsapp_flash"].value
    payload = cookie.rsplit(".", 1)[0]
    return str(json.loads(base64.urlsafe_b64decode(payload))[1])


async def batch(client: TestClient[Any, Any], import_id: int) -> dict[str, Any]:
    row: dict[str, Any] | None = await client.app[DB].one(
        Sql("SELECT * FROM import_batches WHERE id = :id"), id=import_id
    )
    assert row is not None
    return row


async def audit_actions(client: TestClient[Any, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    rows = await client.app[DB].all(
        Sql("SELECT action, target_id, details FROM audit_log ORDER BY id")
    )
    return [(r["action"], r["target_id"], r["details"]) for r in rows]


async def table_count(client: TestClient[Any, Any], table: str) -> int:
    return int(await client.app[DB].val(Sql(f"SELECT count(*) FROM {table}")))


@pytest.fixture
async def acme(make_tenant: TenantFactory) -> TenantFixture:
    return await make_tenant("acme")


@pytest.fixture
async def staff(acme: TenantFixture, sign_in: SignIn) -> SignedIn:
    return await sign_in("staff@example.com", tenant_id=acme.id, role="staff")


@pytest.fixture
async def viewer(acme: TenantFixture, sign_in: SignIn) -> SignedIn:
    return await sign_in("viewer@example.com", tenant_id=acme.id, role="viewer")


async def test_it_uploads_guesses_the_mapping_and_shows_the_preview(
    client: TestClient[Any, Any], staff: SignedIn
) -> None:
    response = await upload(client, staff, CSV)
    import_id = import_id_of(response)
    assert "Read 4 rows of people.csv" in flash_of(response)
    stored = await batch(client, import_id)
    assert stored["status"] == "dry_run" and stored["mapping"] == GUESSED
    assert await table_count(client, "contacts") == 0

    status, text = await page(client, staff, f"/admin/imports/{import_id}")
    assert status == 200
    assert counts_on(text) == {"create": 2, "update": 0, "invalid_phone": 1, "duplicate": 1,
                               "dnc": 0, "suppressed_by_cooldown": 0}  # fmt: skip
    assert "nothing has been imported yet" in text
    rows = re.findall(r'<td class="num">(\d+)</td>', text)
    assert rows == ["2", "3", "4", "5"]
    assert "same number as row 2" in text and "not a phone number" in text
    assert "+61412000001" in text and "people.csv" in text
    # The mapping used, and the form to change it with every field pre-selected.
    assert (
        "<dt>Phone</dt><dd>Mobile</dd>" in text and "<dt>First name</dt><dd>First Name</dd>" in text
    )
    assert re.search(r'name="map\.phone"[^>]*>.*?<option value="Mobile" selected>', text, re.S)
    assert re.search(r'name="map\.last_name"[^>]*>\s*<option value="">— not mapped —</option>\s*'
                     r'(<option value="[^"]+" >[^<]+</option>)+\s*</select>', text)  # fmt: skip
    assert 'name="attr.4" value="" placeholder="tier"' in text
    assert 'name="consent" value="yes" required' in text
    assert f'href="/api/imports/{import_id}/rejected.csv"' in text
    assert ("import.dry_run", str(import_id), {"filename": "people.csv", "rows": 4}) in (
        await audit_actions(client)
    )


async def test_it_finds_the_phone_column_by_its_contents_when_no_header_names_it(
    client: TestClient[Any, Any], staff: SignedIn
) -> None:
    text = "Contact,Name,Ref\n0412000001,Ann,17\n+61412000002,Bob,18\n,Carl,19\n"
    response = await upload(client, staff, text)
    import_id = import_id_of(response)
    assert (await batch(client, import_id))["mapping"] == {"phone": "Contact", "first_name": "Name"}
    assert "found in the column 'Contact'" in flash_of(response)


async def test_it_asks_for_the_phone_column_when_it_cannot_tell_and_then_uses_the_choice(
    client: TestClient[Any, Any], staff: SignedIn
) -> None:
    text = "Ref,Notes,Where\nA1,hello,0412000001\nA2,there,\nA3,x,bad\nA4,y,bad\n"
    response = await upload(client, staff, text)
    assert response.status == 400
    body = await response.text()
    assert "Which column of people.csv holds the phone numbers?" in body
    for header in ("Ref", "Notes", "Where"):
        assert f'<option value="{header}" >{header}</option>' in body
    assert await table_count(client, "import_batches") == 0

    # The person chooses the column (and the file again); their choice is used as it is.
    missing = await upload(client, staff, text, **{"map.phone": "Mobile"})
    assert missing.status == 400
    assert "no column named &#39;Mobile&#39;" in await missing.text()
    chosen = await upload(client, staff, text, **{"map.phone": "Where", "map.first_name": ""})
    import_id = import_id_of(chosen)
    stored = await batch(client, import_id)
    assert stored["mapping"] == {"phone": "Where"}
    assert stored["counts"]["create"] == 1 and stored["counts"]["invalid_phone"] == 3


async def test_it_remaps_into_a_new_import_and_keeps_the_first(
    client: TestClient[Any, Any], staff: SignedIn
) -> None:
    first = import_id_of(await upload(client, staff, CSV))
    form = {f"map.{k}": v for k, v in GUESSED.items()}
    form.update({"map.first_name": "", "map.last_name": "First Name", "attr.4": "Loyalty Tier"})
    response = await post_form(client, staff, f"/admin/imports/{first}/remap", form)
    second = import_id_of(response)
    assert second != first
    assert f"Import #{first} stays uncommitted" in flash_of(response)
    old, new = await batch(client, first), await batch(client, second)
    assert old["status"] == new["status"] == "dry_run"
    assert old["mapping"] == GUESSED
    assert new["mapping"] == {"phone": "Mobile", "email": "Email", "last_name": "First Name",
                              "tags": "Tags", "loyalty_tier": "Tier"}  # fmt: skip
    assert (new["filename"], new["sha256"], new["headers"], new["row_count"], new["counts"]) == (
        old["filename"], old["sha256"], old["headers"], old["row_count"], old["counts"]
    )  # fmt: skip
    rows = await client.app[DB].all(
        Sql("SELECT row_number, raw, data FROM import_rows WHERE import_batch_id = :b "
            "ORDER BY row_number"),
        b=second,
    )  # fmt: skip
    assert [r["row_number"] for r in rows] == [2, 3, 4, 5]
    assert rows[0]["raw"] == ["0412 000 001", "ann@example.com", "Ann", "vip", "gold"]
    assert rows[0]["data"]["last_name"] == "Ann" and "first_name" not in rows[0]["data"]
    assert rows[0]["data"]["attributes"] == {"loyalty_tier": "gold"}
    assert (
        "import.dry_run",
        str(second),
        {"filename": "people.csv", "rows": 4, "remapped_from": first},
    ) in await audit_actions(client)

    status, text = await page(client, staff, f"/admin/imports/{second}")
    assert status == 200
    assert "<dt>Attribute <code>loyalty_tier</code></dt><dd>Tier</dd>" in text
    assert 'name="attr.4" value="loyalty_tier"' in text


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"map.phone": ""}, "map a column to phone"),
        ({"attr.1": "email"}, "&#39;email&#39; is a field"),
        ({"attr.4": "9lives"}, "cannot be an attribute name"),
        ({"attr.3": "extra", "attr.4": "extra"}, "given to two columns"),
        ({"map.email": "Nope"}, "no column named &#39;Nope&#39;"),
    ],
)
async def test_it_shows_the_form_again_when_a_mapping_cannot_be_used(
    client: TestClient[Any, Any], staff: SignedIn, change: dict[str, str], message: str
) -> None:
    first = import_id_of(await upload(client, staff, CSV))
    form = {**{f"map.{k}": v for k, v in GUESSED.items()}, **change}
    response = await post_form(client, staff, f"/admin/imports/{first}/remap", form)
    assert response.status == 400
    text = await response.text()
    assert message in text
    assert '<details class="remap" open>' in text
    assert await table_count(client, "import_batches") == 1


async def test_it_commits_only_once_consent_is_confirmed(
    client: TestClient[Any, Any], staff: SignedIn
) -> None:
    import_id = import_id_of(await upload(client, staff, CSV))
    refused = await post_form(client, staff, f"/admin/imports/{import_id}/commit", {})
    assert refused.status == 400
    assert "Tick the box to confirm" in await refused.text()
    assert (await batch(client, import_id))["status"] == "dry_run"
    assert await table_count(client, "contacts") == 0

    done = await post_form(client, staff, f"/admin/imports/{import_id}/commit", {"consent": "yes"})
    assert import_id_of(done) == import_id
    assert flash_of(done) == "Imported: 2 new contacts, 0 updated, 2 rows left out."
    committed = await batch(client, import_id)
    assert committed["status"] == "committed"
    assert committed["consent_confirmed_by"] == staff.user_id
    contacts = await client.app[DB].all(
        Sql("SELECT phone_e164, first_name, tags, consent_source FROM contacts ORDER BY phone_e164")
    )
    assert [(c["phone_e164"], c["first_name"], c["tags"]) for c in contacts] == [
        ("+61412000001", "Ann", ["vip"]),
        ("+61412000002", "Bob", ["vip", "news"]),
    ]
    assert "confirmed by staff@example.com" in contacts[0]["consent_source"]
    assert [a for a in await audit_actions(client) if a[0] == "import.commit"] == [
        ("import.commit", str(import_id), {"counts": committed["counts"]})
    ]

    status, text = await page(client, staff, f"/admin/imports/{import_id}")
    assert status == 200
    assert 'data-testid="import-status">committed' in text
    assert "Consent confirmed by</dt><dd>staff@example.com" in text
    assert 'name="consent"' not in text and "Change mapping" not in text
    # Committing again changes nothing, and says so; a committed import is not remapped.
    again = await post_form(client, staff, f"/admin/imports/{import_id}/commit", {})
    assert flash_of(again) == "This import was already committed; nothing changed."
    assert len([a for a in await audit_actions(client) if a[0] == "import.commit"]) == 1
    remap = await post_form(
        client, staff, f"/admin/imports/{import_id}/remap", {"map.phone": "Mobile"}
    )
    assert remap.status == 409 and "upload the file again" in await remap.text()


async def test_it_lists_past_imports_for_viewers_without_the_upload_form(
    client: TestClient[Any, Any], staff: SignedIn, viewer: SignedIn
) -> None:
    committed = import_id_of(await upload(client, staff, CSV))
    await post_form(client, staff, f"/admin/imports/{committed}/commit", {"consent": "yes"})
    dry = import_id_of(await upload(client, staff, "Phone\n0412000009\n"))

    status, text = await page(client, staff, "/admin/imports")
    assert status == 200
    assert f'action="/admin/imports/upload?csrf_token={staff.csrf}"' in text
    assert 'enctype="multipart/form-data"' in text
    assert '<a href="/admin/imports" >Imports</a>' in text or 'href="/admin/imports"' in text

    status, text = await page(client, viewer, "/admin/imports")
    assert status == 200
    assert 'name="file"' not in text and "/admin/imports/upload" not in text
    rows = {
        int(m.group(1)): html.unescape(re.sub(r"<[^>]+>", " ", m.group(2))).split()
        for m in re.finditer(r'<tr data-testid="import-(\d+)">(.*?)</tr>', text, re.S)
    }
    assert list(rows) == [dry, committed]  # newest first
    assert rows[committed][:7] == [f"#{committed}", "people.csv", "committed", "4", "2", "0", "2"]
    assert rows[dry][:7] == [f"#{dry}", "people.csv", "dry", "run", "1", "1", "0"]

    status, text = await page(client, viewer, f"/admin/imports/{dry}")
    assert status == 200 and counts_on(text)["create"] == 1
    assert 'name="consent"' not in text and "Change mapping" not in text
    csv_response = await client.get(
        f"/api/imports/{committed}/rejected.csv", headers=viewer.headers()
    )
    assert csv_response.status == 200
    rejected = list(csv.reader(io.StringIO(await csv_response.text())))
    assert [r[-2:] for r in rejected[1:]] == [
        ["invalid_phone", "unparseable"],
        ["duplicate", "duplicate_of_row:2"],
    ]


async def test_it_refuses_every_import_post_to_a_viewer(
    client: TestClient[Any, Any], staff: SignedIn, viewer: SignedIn
) -> None:
    import_id = import_id_of(await upload(client, staff, CSV))
    assert (await upload(client, viewer, CSV)).status == 403
    for action, data in [("remap", {"map.phone": "Mobile"}), ("commit", {"consent": "yes"})]:
        response = await post_form(client, viewer, f"/admin/imports/{import_id}/{action}", data)
        assert response.status == 403, action
    assert await table_count(client, "import_batches") == 1
    assert (await batch(client, import_id))["status"] == "dry_run"


async def test_it_answers_404_for_another_tenants_import(
    client: TestClient[Any, Any],
    staff: SignedIn,
    make_tenant: TenantFactory,
    sign_in: SignIn,
) -> None:
    import_id = import_id_of(await upload(client, staff, CSV))
    other = await make_tenant("other")
    outsider = await sign_in("admin@other.example", tenant_id=other.id, role="admin")
    for path in (f"/admin/imports/{import_id}", "/admin/imports/999999"):
        status, text = await page(client, outsider, path)
        assert status == 404 and "no such import" in text
    for action, data in [("remap", {"map.phone": "Mobile"}), ("commit", {"consent": "yes"})]:
        response = await post_form(client, outsider, f"/admin/imports/{import_id}/{action}", data)
        assert response.status == 404, action
    status, text = await page(client, outsider, "/admin/imports")
    assert status == 200 and f"import-{import_id}" not in text
    assert (await batch(client, import_id))["status"] == "dry_run"
    assert await table_count(client, "import_batches") == 1


@pytest.mark.parametrize(
    ("case", "status", "message"),
    [
        ("empty", 400, "the file is empty"),
        ("binary", 400, "the file is not text"),
        ("duplicate header", 400, "the column &#39;mobile&#39; appears twice"),
        ("header only", 400, "the file has a header but no rows"),
        ("no file", 400, "attach the CSV"),
        ("not multipart", 400, "send multipart/form-data"),
    ],
)
async def test_it_shows_the_upload_page_again_for_a_file_it_cannot_read(
    client: TestClient[Any, Any], staff: SignedIn, case: str, status: int, message: str
) -> None:
    url = f"/admin/imports/upload?csrf_token={staff.csrf}"
    if case == "no file":
        form = aiohttp.FormData(default_to_multipart=True)
        form.add_field("map.phone", "Mobile")
        response = await client.post(url, data=form, headers=staff.headers())
    elif case == "not multipart":
        response = await client.post(url, data={"x": "1"}, headers=staff.headers())
    else:
        data = {
            "empty": b"",
            "binary": b"PK\x03\x04\x00\x00\x00",
            "duplicate header": b"Mobile,mobile\n0412000001,0412000002\n",
            "header only": b"Mobile,Email\n",
        }[case]
        response = await upload(client, staff, data)
    assert response.status == status
    text = await response.text()
    assert message in text
    assert 'data-testid="upload-error"' in text and "<h1>Imports</h1>" in text
    assert await table_count(client, "import_batches") == 0
    # Opening the upload's address again (a reload) leads back to the page with the form.
    again = await client.get(url, headers=staff.headers(), allow_redirects=False)
    assert (again.status, again.headers["Location"]) == (303, "/admin/imports")


async def test_it_refuses_a_file_over_50_mb_with_413_on_the_page(
    client: TestClient[Any, Any], staff: SignedIn
) -> None:
    big = b"Mobile\n" + b"0412000001\n" * (50 * 1024 * 1024 // 11 + 10)
    response = await upload(client, staff, big)
    assert response.status == 413
    assert "the file is over 50 MB" in await response.text()
    assert await table_count(client, "import_batches") == 0


async def test_it_refuses_an_upload_without_its_csrf_token(
    client: TestClient[Any, Any], staff: SignedIn
) -> None:
    for token in ("", "forged"):
        response = await upload(client, staff, CSV, csrf=token)
        assert response.status == 403
    assert await table_count(client, "import_batches") == 0
