"""`POST /api/messages/preview` (pack §8, §17), on both backends."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from smsapp.encoding import MAX_BODY_CHARACTERS
from tests.conftest import SignIn, TenantFactory

URL = "/api/messages/preview"
CONTRACT_KEYS = {
    "encoding",
    "units",
    "segments",
    "per_segment",
    "unicode_characters",
    "suggestions",
}
EXTRA_KEYS = {"suggested_text", "parts"}


async def test_it_previews_a_gsm_body_with_exactly_the_contract_keys(
    client: TestClient[Any, Any], make_tenant: TenantFactory
) -> None:
    tenant = await make_tenant("acme")
    text = "Hi [name] €5 off"
    response = await client.post(URL, json={"body": text}, headers=tenant.auth("viewer"))
    assert response.status == 200
    body = await response.json()
    assert set(body) == CONTRACT_KEYS | EXTRA_KEYS
    assert {k: body[k] for k in CONTRACT_KEYS} == {
        "encoding": "GSM-7",
        "units": 19,  # 16 characters; [ ] € are two septets each
        "segments": 1,
        "per_segment": 160,
        "unicode_characters": [],
        "suggestions": [],
    }
    assert body["suggested_text"] is None
    assert body["parts"] == [{"text": text, "units": 19}]


async def test_it_previews_a_ucs2_body_with_suggestions(
    client: TestClient[Any, Any], make_tenant: TenantFactory
) -> None:
    tenant = await make_tenant("acme")
    text = "It’s “on” – 50% off…\u00a0today " + "a" * 60
    response = await client.post(URL, json={"body": text}, headers=tenant.auth("viewer"))
    assert response.status == 200
    body = await response.json()
    assert body["encoding"] == "UCS-2"
    assert body["units"] == len(text) == 87
    assert (body["segments"], body["per_segment"]) == (2, 67)
    assert body["unicode_characters"] == ["’", "“", "”", "–", "…", "\u00a0"]
    assert body["suggestions"] == [
        {"character": "’", "replacement": "'"},
        {"character": "“", "replacement": '"'},
        {"character": "”", "replacement": '"'},
        {"character": "–", "replacement": "-"},
        {"character": "…", "replacement": "..."},
        {"character": "\u00a0", "replacement": " "},
    ]
    assert body["suggested_text"] == 'It\'s "on" - 50% off... today ' + "a" * 60
    assert [p["units"] for p in body["parts"]] == [67, 20]
    assert "".join(p["text"] for p in body["parts"]) == text


async def test_an_emoji_costs_two_units_and_stays_whole(
    client: TestClient[Any, Any], make_tenant: TenantFactory
) -> None:
    tenant = await make_tenant("acme")
    text = "a" * 66 + "😀" + "a" * 66
    body = await (await client.post(URL, json={"body": text}, headers=tenant.auth("staff"))).json()
    assert (body["encoding"], body["units"], body["segments"]) == ("UCS-2", 134, 3)
    assert body["unicode_characters"] == ["😀"]
    assert body["suggestions"] == [] and body["suggested_text"] is None
    assert [p["units"] for p in body["parts"]] == [66, 67, 1]


@pytest.mark.parametrize(("text", "segments"), [("", 0), ("a" * 160, 1), ("a" * 161, 2)])
async def test_it_counts_segments_at_the_boundaries(
    client: TestClient[Any, Any], make_tenant: TenantFactory, text: str, segments: int
) -> None:
    tenant = await make_tenant("acme")
    body = await (await client.post(URL, json={"body": text}, headers=tenant.auth("admin"))).json()
    assert (body["units"], body["segments"]) == (len(text), segments)


async def test_it_accepts_the_largest_body_and_refuses_one_character_more(
    client: TestClient[Any, Any], make_tenant: TenantFactory
) -> None:
    tenant = await make_tenant("acme")
    largest = "a" * MAX_BODY_CHARACTERS
    response = await client.post(URL, json={"body": largest}, headers=tenant.auth("viewer"))
    assert response.status == 200
    assert (await response.json())["segments"] == 11  # 1600 / 153, rounded up
    response = await client.post(URL, json={"body": largest + "a"}, headers=tenant.auth("viewer"))
    assert response.status == 400
    assert (await response.json())["error"]["code"] == "too_long"


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"{", "bad_json"),
        (b"", "bad_json"),
        (b'["body"]', "bad_json"),
        (b"{}", "bad_request"),
        (b'{"body": null}', "bad_request"),
        (b'{"body": 5}', "bad_request"),
        (b'{"body": ["a"]}', "bad_request"),
        (b'{"body": "hi", "link": true}', "bad_request"),  # the contract is {"body"} alone
        (b'{"body": "\\ud83d"}', "bad_request"),  # a lone surrogate is not text
    ],
)
async def test_it_refuses_bad_input_with_the_json_error_shape(
    client: TestClient[Any, Any], make_tenant: TenantFactory, data: bytes, code: str
) -> None:
    tenant = await make_tenant("acme")
    headers = {**tenant.auth("viewer"), "Content-Type": "application/json"}
    response = await client.post(URL, data=data, headers=headers)
    assert response.status == 400
    error = (await response.json())["error"]
    assert error["code"] == code
    assert error["message"]


async def test_a_signed_in_viewer_may_preview(
    client: TestClient[Any, Any], make_tenant: TenantFactory, sign_in: SignIn
) -> None:
    tenant = await make_tenant("acme")
    viewer = await sign_in("v@example.com", tenant_id=tenant.id, role="viewer")
    response = await client.post(URL, json={"body": "ça"}, headers=viewer.headers(unsafe=True))
    assert response.status == 200
    assert (await response.json())["encoding"] == "UCS-2"


async def test_it_refuses_anonymous_callers(client: TestClient[Any, Any]) -> None:
    response = await client.post(URL, json={"body": "hi"})
    assert response.status == 401
    assert (await response.json())["error"]["code"] == "unauthenticated"
