"""Tenant settings, budget and pause (pack §7, §13, §17): the API, its validation, the money
conversions, spend in the tenant's local day and month, and the settings page."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from smsapp.clock import ManualClock
from smsapp.db import Sql
from smsapp.fields import InvalidInput
from smsapp.keys import DB
from smsapp.tenant_settings import (
    footer_problem,
    price_book_from_text,
    validate_send_window,
    window_day_from_text,
)
from tests.conftest import SignIn, TenantFactory, TenantFixture
from tests.support_audit import audit_entries

DEFAULT_WINDOW = {
    "mon": [["09:00", "20:00"]],
    "tue": [["09:00", "20:00"]],
    "wed": [["09:00", "20:00"]],
    "thu": [["09:00", "20:00"]],
    "fri": [["09:00", "20:00"]],
    "sat": [["09:00", "17:00"]],
    "sun": [],
}
SETTINGS_KEYS = {
    "id",
    "slug",
    "name",
    "timezone",
    "default_country",
    "send_window",
    "respect_public_holidays",
    "rate_limit_per_minute",
    "cooldown_hours",
    "optout_footer",
    "optout_keywords",
    "short_link_base_url",
    "fallback_url",
    "price_per_segment",
    "paused",
    "paused_at",
    "paused_by",
    "paused_by_email",
    "pause_reason",
    "created_at",
    "updated_at",
}


def week(**days: list[list[str]]) -> dict[str, list[list[str]]]:
    return {**DEFAULT_WINDOW, **days}


async def settings(client: TestClient[Any, Any], tenant: TenantFixture) -> dict[str, Any]:
    response = await client.get(f"/api/tenants/{tenant.id}", headers=tenant.auth("viewer"))
    assert response.status == 200
    body: dict[str, Any] = await response.json()
    return body


async def patch(
    client: TestClient[Any, Any], tenant: TenantFixture, body: dict[str, Any], role: str = "admin"
) -> Any:
    return await client.patch(f"/api/tenants/{tenant.id}", json=body, headers=tenant.auth(role))


async def refused(
    client: TestClient[Any, Any], tenant: TenantFixture, body: dict[str, Any], field: str
) -> str:
    response = await patch(client, tenant, body)
    assert response.status == 400, (body, await response.text())
    error = (await response.json())["error"]
    assert error["code"] == "bad_request", body
    assert error["field"] == field, body
    return str(error["message"])


async def tenant_row(client: TestClient[Any, Any], tenant_id: int) -> dict[str, Any]:
    row: dict[str, Any] | None = await client.app[DB].one(
        Sql("SELECT * FROM tenants WHERE id = :id"), id=tenant_id
    )
    assert row is not None
    return row


# --- GET and PATCH /api/tenants/{id} -------------------------------------------------------


async def test_it_shows_the_default_settings_with_prices_in_cents(
    client: TestClient[Any, Any], make_tenant: TenantFactory
) -> None:
    tenant = await make_tenant("acme")
    body = await settings(client, tenant)
    assert set(body) == SETTINGS_KEYS
    assert body["id"] == tenant.id and body["slug"] == "acme" and body["name"] == "Acme"
    assert body["timezone"] == "Australia/Sydney"
    assert body["default_country"] == "AU"
    assert body["send_window"] == DEFAULT_WINDOW
    assert list(body["send_window"]) == ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    assert body["respect_public_holidays"] is True
    assert body["rate_limit_per_minute"] == 600
    assert body["cooldown_hours"] == 24
    assert body["optout_footer"] == "{tenant_name}: reply STOP to opt out"
    assert body["optout_keywords"] == []
    assert body["short_link_base_url"] is None and body["fallback_url"] is None
    assert body["price_per_segment"] == {"AU": 5.5}
    assert (await tenant_row(client, tenant.id))["price_book"] == {"AU": 55000}
    assert body["paused"] is False and body["paused_at"] is None and body["pause_reason"] is None
    assert body["created_at"] == "2026-01-05T00:00:00Z"
    for role in ("staff", "admin"):
        again = await client.get(f"/api/tenants/{tenant.id}", headers=tenant.auth(role))
        assert await again.json() == body


async def test_it_answers_404_for_any_tenant_but_the_callers_own(
    client: TestClient[Any, Any], make_tenant: TenantFactory
) -> None:
    acme, other = await make_tenant("acme"), await make_tenant("other")
    before = await settings(client, other)
    h = acme.auth("admin")
    for method, path, body in [
        ("GET", f"/api/tenants/{other.id}", None),
        ("PATCH", f"/api/tenants/{other.id}", {"cooldown_hours": 1}),
        ("GET", f"/api/tenants/{other.id}/budget", None),
        ("POST", f"/api/tenants/{other.id}/budget", {"daily_limit": 1}),
        ("POST", f"/api/tenants/{other.id}/pause", {"reason": "nope"}),
        ("POST", f"/api/tenants/{other.id}/resume", {}),
        ("GET", "/api/tenants/999999", None),
        ("GET", "/api/tenants/abc", None),
        ("GET", "/api/tenants/-1", None),
    ]:
        response = await client.request(method, path, json=body, headers=h)
        assert response.status == 404, (method, path)
        assert (await response.json())["error"]["code"] == "not_found"
    assert await settings(client, other) == before
    assert await client.app[DB].val(Sql("SELECT count(*) FROM budgets")) == 0
    assert await audit_entries(client, other.id) == []


async def test_it_updates_only_the_given_fields_and_audits_old_and_new_values(
    client: TestClient[Any, Any], make_tenant: TenantFactory, clock: ManualClock
) -> None:
    tenant = await make_tenant("acme")
    before = await settings(client, tenant)
    clock.advance(hours=1)
    response = await patch(
        client,
        tenant,
        {
            "rate_limit_per_minute": 300,
            "cooldown_hours": 48,
            "price_per_segment": {"AU": 6, "nz": 7.25},
            "respect_public_holidays": False,
        },
    )
    assert response.status == 200
    body = await response.json()
    assert body["rate_limit_per_minute"] == 300 and body["cooldown_hours"] == 48
    assert body["price_per_segment"] == {"AU": 6, "NZ": 7.25}
    assert body["respect_public_holidays"] is False
    assert body["updated_at"] == "2026-01-05T01:00:00Z"
    untouched = {
        k: v
        for k, v in body.items()
        if k
        not in (
            "rate_limit_per_minute",
            "cooldown_hours",
            "price_per_segment",
            "respect_public_holidays",
            "updated_at",
        )
    }
    assert untouched == {k: before[k] for k in untouched}
    assert await settings(client, tenant) == body
    assert (await tenant_row(client, tenant.id))["price_book"] == {"AU": 60000, "NZ": 72500}

    [entry] = await audit_entries(client, tenant.id)
    assert entry["action"] == "tenant.update"
    assert (entry["target_type"], entry["target_id"]) == ("tenant", str(tenant.id))
    assert entry["api_key_id"] is not None
    assert entry["details"]["fields"] == [
        "cooldown_hours",
        "price_per_segment",
        "rate_limit_per_minute",
        "respect_public_holidays",
    ]
    assert entry["details"]["changes"] == {
        "cooldown_hours": {"from": 24, "to": 48},
        "price_per_segment": {"from": {"AU": 5.5}, "to": {"AU": 6, "NZ": 7.25}},
        "rate_limit_per_minute": {"from": 600, "to": 300},
        "respect_public_holidays": {"from": True, "to": False},
    }

    # The same values again, or nothing at all, change nothing and write no audit entry.
    clock.advance(hours=1)
    for same in ({"rate_limit_per_minute": 300, "price_per_segment": {"NZ": 7.25, "AU": 6.0}}, {}):
        again = await patch(client, tenant, same)
        assert again.status == 200
        assert (await again.json())["updated_at"] == "2026-01-05T01:00:00Z"
    assert len(await audit_entries(client, tenant.id)) == 1


async def test_it_sorts_and_normalises_the_send_window(
    client: TestClient[Any, Any], make_tenant: TenantFactory
) -> None:
    tenant = await make_tenant("acme")
    window = week(
        mon=[["13:00", "20:00"], ["9:00", "12:00"]],
        tue=[["00:00", "24:00"]],
        wed=[["09:00", "12:00"], ["12:00", "13:00"]],  # touching is not overlapping
        sat=[],
        sun=[["10:00", "16:00"]],
    )
    response = await patch(client, tenant, {"send_window": window})
    assert response.status == 200
    shown = (await response.json())["send_window"]
    assert shown == {
        **window,
        "mon": [["09:00", "12:00"], ["13:00", "20:00"]],
        "wed": [["09:00", "12:00"], ["12:00", "13:00"]],
    }
    assert (await tenant_row(client, tenant.id))["send_window"]["mon"][0] == ["09:00", "12:00"]
    [entry] = await audit_entries(client, tenant.id)
    assert entry["details"]["changes"]["send_window"]["from"] == DEFAULT_WINDOW


@pytest.mark.parametrize(
    ("window", "says"),
    [
        ({**DEFAULT_WINDOW, "monday": [], "xyz": []}, "unknown day(s) monday, xyz"),
        ({k: v for k, v in DEFAULT_WINDOW.items() if k not in ("sat", "sun")}, "missing sat, sun"),
        ([["09:00", "20:00"]], "must be an object"),
        (week(mon="09:00-20:00"), "mon must be a list"),  # type: ignore[arg-type]
        (week(mon=[["09:00", "12:00", "13:00"]]), "not a [start, end] pair"),
        (week(mon=["09:00"]), "not a [start, end] pair"),  # type: ignore[list-item]
        (week(mon=[["25:00", "26:00"]]), "not a time of day"),
        (week(mon=[["24:00", "24:00"]]), "not a time of day"),
        (week(mon=[["09:00", "24:30"]]), "not a time of day"),
        (week(mon=[["12:60", "13:00"]]), "not a time of day"),
        (week(mon=[["9am", "5pm"]]), "not a time as HH:MM"),
        (week(mon=[[900, 1700]]), "not a time as HH:MM"),  # type: ignore[list-item]
        (week(mon=[["20:00", "09:00"]]), "ends before it starts"),
        (week(mon=[["09:00", "09:00"]]), "ends before it starts"),
        (week(fri=[["09:00", "13:00"], ["12:00", "20:00"]]), "09:00-13:00 and 12:00-20:00 overlap"),
        (week(fri=[["10:00", "11:00"], ["09:00", "20:00"]]), "overlap"),
        (week(sun=[[f"{h:02d}:00", f"{h:02d}:30"] for h in range(13)]), "more than 12 ranges"),
        (week(sun=None), "sun must be a list"),  # type: ignore[arg-type]
    ],
)
async def test_it_refuses_a_bad_send_window_and_says_why(
    client: TestClient[Any, Any], make_tenant: TenantFactory, window: Any, says: str
) -> None:
    tenant = await make_tenant("acme")
    message = await refused(client, tenant, {"send_window": window}, "send_window")
    assert says in message
    assert (await settings(client, tenant))["send_window"] == DEFAULT_WINDOW
    assert await audit_entries(client, tenant.id) == []


def test_it_validates_windows_without_the_database() -> None:
    assert validate_send_window(week(mon=[["9:05", "10:00"]]))["mon"] == [["09:05", "10:00"]]
    with pytest.raises(InvalidInput) as caught:
        validate_send_window({**DEFAULT_WINDOW, "Mon": []})
    assert "Mon" in caught.value.message
    assert window_day_from_text("mon", "09:00-12:00, 13:00 – 20:00") == [
        ["09:00", "12:00"],
        ["13:00", "20:00"],
    ]
    assert window_day_from_text("mon", " closed ") == []
    assert window_day_from_text("mon", "") == []
    assert window_day_from_text("mon", "all day") == [["00:00", "24:00"]]
    assert window_day_from_text("mon", "9:00 to 17:00") == [["9:00", "17:00"]]
    with pytest.raises(InvalidInput):
        window_day_from_text("mon", "nine to five-ish-thing")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"timezone": "Mars/Base"}, "timezone"),
        ({"timezone": ""}, "timezone"),
        ({"timezone": 10}, "timezone"),
        ({"timezone": None}, "timezone"),
        ({"rate_limit_per_minute": 0}, "rate_limit_per_minute"),
        ({"rate_limit_per_minute": 100_001}, "rate_limit_per_minute"),
        ({"rate_limit_per_minute": "600"}, "rate_limit_per_minute"),
        ({"rate_limit_per_minute": 60.5}, "rate_limit_per_minute"),
        ({"rate_limit_per_minute": True}, "rate_limit_per_minute"),
        ({"rate_limit_per_minute": None}, "rate_limit_per_minute"),
        ({"cooldown_hours": -1}, "cooldown_hours"),
        ({"cooldown_hours": 8_761}, "cooldown_hours"),
        ({"respect_public_holidays": "yes"}, "respect_public_holidays"),
        ({"respect_public_holidays": 1}, "respect_public_holidays"),
        ({"name": "  "}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"default_country": "Australia"}, "default_country"),
        ({"default_country": "XX"}, "default_country"),
        ({"colour": "blue"}, "colour"),
        ({"optout_keywords": "NO"}, "optout_keywords"),
        ({"optout_keywords": ["N!O"]}, "optout_keywords"),
        ({"optout_keywords": ["YES"]}, "optout_keywords"),
        ({"optout_keywords": ["help"]}, "optout_keywords"),
        ({"optout_keywords": [f"W{i}" for i in range(21)]}, "optout_keywords"),
    ],
)
async def test_it_refuses_bad_values(
    client: TestClient[Any, Any], make_tenant: TenantFactory, body: dict[str, Any], field: str
) -> None:
    tenant = await make_tenant("acme")
    before = await settings(client, tenant)
    await refused(client, tenant, body, field)
    assert await settings(client, tenant) == before


async def test_it_accepts_the_edges_of_each_range(
    client: TestClient[Any, Any], make_tenant: TenantFactory
) -> None:
    tenant = await make_tenant("acme")
    for body in (
        {"rate_limit_per_minute": 1, "cooldown_hours": 0},
        {"rate_limit_per_minute": 100_000, "cooldown_hours": 8_760},
        {"timezone": "Australia/Perth", "default_country": "nz", "name": "  Acme Pty Ltd "},
        {"optout_keywords": ["no", " Enough ", "NO", "opt me out"]},
    ):
        response = await patch(client, tenant, body)
        assert response.status == 200, body
    shown = await settings(client, tenant)
    assert shown["rate_limit_per_minute"] == 100_000 and shown["cooldown_hours"] == 8_760
    assert (shown["timezone"], shown["default_country"]) == ("Australia/Perth", "NZ")
    assert shown["name"] == "Acme Pty Ltd"
    assert shown["optout_keywords"] == ["NO", "ENOUGH", "OPT ME OUT"]


async def test_it_requires_the_footer_to_carry_an_opt_out(
    client: TestClient[Any, Any], make_tenant: TenantFactory
) -> None:
    tenant = await make_tenant("acme")
    for footer, says in [
        ("Thanks from {tenant_name}", "STOP"),
        ("Unstoppable deals from {tenant_name}", "STOP"),
        ("{tenant_name}: reply STOP, {first_name}", "unknown placeholder {first_name}"),
        ("Opt out at {unsubscribe}", "unknown placeholder {unsubscribe}"),
        ("   ", "non-empty"),
        ("Reply STOP " + "x" * 150, "longer than 160"),
    ]:
        message = await refused(client, tenant, {"optout_footer": footer}, "optout_footer")
        assert says in message, footer
    await refused(client, tenant, {"optout_footer": None}, "optout_footer")

    for footer in (
        "Reply stop to opt out",
        "Opt out: {optout_link}",
        "{tenant_name} - text STOP.",
        "STOP=stop",
    ):
        response = await patch(client, tenant, {"optout_footer": footer})
        assert response.status == 200, footer
        assert (await response.json())["optout_footer"] == footer

    # A tenant's own opt-out word counts, when it is one of its keywords (pack §10).
    await refused(
        client, tenant, {"optout_footer": "{tenant_name}: reply NO to opt out"}, "optout_footer"
    )
    response = await patch(
        client,
        tenant,
        {"optout_keywords": ["no"], "optout_footer": "{tenant_name}:  reply NO to opt out"},
    )
    assert response.status == 200
    assert (await response.json())["optout_footer"] == "{tenant_name}: reply NO to opt out"
    # ... and cannot be removed while the footer relies on it.
    message = await refused(client, tenant, {"optout_keywords": []}, "optout_keywords")
    assert "footer" in message
    both = await patch(
        client, tenant, {"optout_keywords": [], "optout_footer": "Reply STOP to opt out"}
    )
    assert both.status == 200


def test_it_explains_footer_problems_without_the_database() -> None:
    assert footer_problem("{tenant_name}: reply STOP to opt out", []) is None
    assert footer_problem("reply NO", ["NO"]) is None
    assert footer_problem("say NOPE", ["NO"]) is not None
    assert footer_problem("STOPS", []) is not None
    assert footer_problem("{optout_link}", []) is None


async def test_it_converts_prices_to_units_exactly_and_refuses_inexact_ones(
    client: TestClient[Any, Any], make_tenant: TenantFactory
) -> None:
    tenant = await make_tenant("acme")
    response = await patch(
        client,
        tenant,
        {"price_per_segment": {"AU": 5.5, "NZ": "7.25", "GB": 0.0001, "us": 0, "SG": 1000}},
    )
    assert response.status == 200
    assert (await response.json())["price_per_segment"] == {
        "AU": 5.5,
        "GB": 0.0001,
        "NZ": 7.25,
        "SG": 1000,
        "US": 0,
    }
    assert (await tenant_row(client, tenant.id))["price_book"] == {
        "AU": 55_000,
        "GB": 1,
        "NZ": 72_500,
        "SG": 10_000_000,
        "US": 0,
    }
    for book, says in [
        ({"AU": 5.55555}, "more than 4 decimals"),
        ({"AU": "0.00001"}, "more than 4 decimals"),
        ({"AU": -1}, "between 0 and 1000"),
        ({"AU": 1000.0001}, "between 0 and 1000"),
        ({"AU": "abc"}, "not a number"),
        ({"AU": True}, "not a number"),
        ({"AU": None}, "not a number"),
        ({"AU": [5]}, "not a number"),
        ({"XX": 5}, "two-letter country"),
        ({"AUS": 5}, "two-letter country"),
        ({"AU": 5, "au": 6}, "AU twice"),
    ]:
        message = await refused(client, tenant, {"price_per_segment": book}, "price_per_segment")
        assert says in message, book
    await refused(client, tenant, {"price_per_segment": [["AU", 5]]}, "price_per_segment")
    # An empty book is allowed: every destination's price is then unknown.
    empty = await patch(client, tenant, {"price_per_segment": {}})
    assert (await empty.json())["price_per_segment"] == {}


def test_it_reads_the_price_book_text_of_the_page() -> None:
    assert price_book_from_text("AU=5.5, nz = 7\nGB: 0.0001;") == {
        "AU": "5.5",
        "NZ": "7",
        "GB": "0.0001",
    }
    assert price_book_from_text("  ") == {}
    for bad in ("AU 5.5", "AU=", "=5", "AU=5, AU=6"):
        with pytest.raises(InvalidInput):
            price_book_from_text(bad)


async def test_it_refuses_a_short_host_another_tenant_already_uses(
    client: TestClient[Any, Any], make_tenant: TenantFactory
) -> None:
    acme, other = await make_tenant("acme"), await make_tenant("other")
    assert (
        await patch(client, acme, {"short_link_base_url": "https://go.acme.example"})
    ).status == 200
    for same_host in ("https://GO.acme.example", "http://go.acme.example:8443/x"):
        response = await patch(client, other, {"short_link_base_url": same_host})
        assert response.status == 409, await response.text()
        error = (await response.json())["error"]
        assert error["code"] == "short_host_taken" and "go.acme.example" in error["message"]
    assert (
        await patch(client, other, {"short_link_base_url": "https://go.other.example"})
    ).status == 200
    # Its own host again (another field changing) is no conflict.
    assert (await patch(client, acme, {"cooldown_hours": 12})).status == 200


async def test_it_accepts_http_urls_only(
    client: TestClient[Any, Any], make_tenant: TenantFactory
) -> None:
    tenant = await make_tenant("acme")
    response = await patch(
        client,
        tenant,
        {
            "short_link_base_url": " https://go.example.com/ ",
            "fallback_url": "http://example.com/sorry?from=sms",
        },
    )
    assert response.status == 200
    body = await response.json()
    assert body["short_link_base_url"] == "https://go.example.com"
    assert body["fallback_url"] == "http://example.com/sorry?from=sms"
    for field in ("short_link_base_url", "fallback_url"):
        for bad in (
            "javascript:alert(1)",
            "data:text/html,hi",
            "ftp://example.com",
            "https://",
            "example.com",
            "https://user:pw@example.com",
            "https://exa mple.com",
            "https://example.com:99999",
            42,
        ):
            await refused(client, tenant, {field: bad}, field)
    await refused(
        client,
        tenant,
        {"short_link_base_url": "https://go.example.com/?a=1"},
        "short_link_base_url",
    )
    cleared = await patch(client, tenant, {"short_link_base_url": "", "fallback_url": None})
    body = await cleared.json()
    assert body["short_link_base_url"] is None and body["fallback_url"] is None


async def test_it_refuses_bad_json(
    client: TestClient[Any, Any], make_tenant: TenantFactory
) -> None:
    tenant = await make_tenant("acme")
    headers = {**tenant.auth("admin"), "Content-Type": "application/json"}
    for path in (
        f"/api/tenants/{tenant.id}",
        f"/api/tenants/{tenant.id}/budget",
        f"/api/tenants/{tenant.id}/pause",
    ):
        method = "PATCH" if path.endswith(str(tenant.id)) else "POST"
        for raw in (b"{nope", b"[1]", b"5"):
            response = await client.request(method, path, data=raw, headers=headers)
            assert response.status == 400, (path, raw)
            assert (await response.json())["error"]["code"] == "bad_json"


# --- budget --------------------------------------------------------------------------------


async def add_cost(
    client: TestClient[Any, Any], tenant_id: int, at: datetime, amount: int | None
) -> None:
    await client.app[DB].run(
        Sql(
            "INSERT INTO costs (tenant_id, parts, unit_price, amount, source, created_at) "
            "VALUES (:t, 1, :price, :amount, 'estimate', :at)"
        ),
        t=tenant_id,
        price=amount,
        amount=amount,
        at=at,
    )


async def budget(client: TestClient[Any, Any], tenant: TenantFixture) -> dict[str, Any]:
    response = await client.get(f"/api/tenants/{tenant.id}/budget", headers=tenant.auth("viewer"))
    assert response.status == 200
    body: dict[str, Any] = await response.json()
    return body


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


async def test_it_sums_spend_in_the_tenants_local_day_and_month(
    client: TestClient[Any, Any], make_tenant: TenantFactory, clock: ManualClock
) -> None:
    tenant, other = await make_tenant("acme"), await make_tenant("other")
    # Sydney is UTC+11 in March 2026: local midnight of 11 March is 13:00 UTC on 10 March,
    # and 1 March starts at 13:00 UTC on 28 February.
    await add_cost(client, tenant.id, utc(2026, 2, 28, 12, 59, 59), 999)  # 28 Feb, local
    await add_cost(client, tenant.id, utc(2026, 2, 28, 13, 0, 0), 20_000)  # 1 Mar 00:00 local
    await add_cost(client, tenant.id, utc(2026, 3, 10, 12, 59, 59), 10_000)  # 10 Mar 23:59:59
    await add_cost(client, tenant.id, utc(2026, 3, 10, 13, 0, 0), 55_000)  # 11 Mar 00:00
    await add_cost(client, tenant.id, utc(2026, 3, 10, 14, 30, 0), 110_000)  # 11 Mar 01:30
    await add_cost(client, tenant.id, utc(2026, 3, 10, 14, 31, 0), None)  # price unknown
    await add_cost(client, other.id, utc(2026, 3, 10, 14, 0, 0), 5_000_000)  # not ours

    clock.set(utc(2026, 3, 10, 15, 0))  # 02:00 on 11 March in Sydney
    body = await budget(client, tenant)
    assert body == {
        "daily_limit": None,
        "monthly_limit": None,
        "alert_threshold_pct": 80,
        "spend_today": 16.5,  # 5.5 + 11 cents: the two costs after local midnight
        "spend_month": 19.5,  # + 1 (10 March) + 2 (1 March 00:00 local)
        "currency": "AUD",
        "timezone": "Australia/Sydney",
        "today": "2026-03-11",
        "month": "2026-03",
        "configured": False,
        "updated_at": None,
    }

    clock.set(utc(2026, 3, 10, 12, 59, 59))  # one second before local midnight
    body = await budget(client, tenant)
    # 10 March holds one cost; the month all of them (the clock went back in time).
    assert (body["today"], body["spend_today"], body["spend_month"]) == ("2026-03-10", 1, 19.5)

    clock.set(utc(2026, 3, 11, 0, 0))  # UTC midnight changes nothing: 11:00 in Sydney
    body = await budget(client, tenant)
    assert (body["today"], body["spend_today"], body["spend_month"]) == ("2026-03-11", 16.5, 19.5)

    clock.set(utc(2026, 3, 11, 13, 0))  # 12 March in Sydney: a new day, the same month
    body = await budget(client, tenant)
    assert (body["spend_today"], body["spend_month"]) == (0, 19.5)

    clock.set(utc(2026, 3, 31, 13, 0))  # 1 April 00:00 in Sydney: a new month
    body = await budget(client, tenant)
    assert (body["month"], body["spend_today"], body["spend_month"]) == ("2026-04", 0, 0)

    # The same instants in Perth (UTC+8) fall on other days.
    await patch(client, tenant, {"timezone": "Australia/Perth"})
    clock.set(utc(2026, 3, 10, 15, 0))  # 23:00 on 10 March in Perth
    body = await budget(client, tenant)
    # Today: 1 + 5.5 + 11 cents; the cost at 1 March 00:00 in Sydney is 28 February here.
    assert (body["today"], body["spend_today"], body["spend_month"]) == ("2026-03-10", 17.5, 17.5)


async def test_it_sets_the_budget_in_cents_and_keeps_what_is_left_out(
    client: TestClient[Any, Any], make_tenant: TenantFactory, clock: ManualClock
) -> None:
    tenant = await make_tenant("acme")
    url = f"/api/tenants/{tenant.id}/budget"
    response = await client.post(
        url,
        json={"daily_limit": 50_000, "monthly_limit": 1_000_000.5, "alert_threshold_pct": 90},
        headers=tenant.auth("admin"),
    )
    assert response.status == 200
    body = await response.json()
    assert (body["daily_limit"], body["monthly_limit"], body["alert_threshold_pct"]) == (
        50_000,
        1_000_000.5,
        90,
    )
    assert body["configured"] is True and body["updated_at"] == "2026-01-05T00:00:00Z"
    assert body["spend_today"] == 0 and body["spend_month"] == 0
    assert await budget(client, tenant) == body
    row = await client.app[DB].one(Sql("SELECT * FROM budgets WHERE tenant_id = :t"), t=tenant.id)
    assert row is not None
    assert (row["daily_limit"], row["monthly_limit"]) == (500_000_000, 10_000_005_000)

    clock.advance(minutes=5)
    partial = await client.post(url, json={"daily_limit": None}, headers=tenant.auth("admin"))
    body = await partial.json()
    assert body["daily_limit"] is None
    assert (body["monthly_limit"], body["alert_threshold_pct"]) == (1_000_000.5, 90)
    zero = await client.post(url, json={"monthly_limit": 0}, headers=tenant.auth("admin"))
    assert (await zero.json())["monthly_limit"] == 0  # a cap of nothing: nothing is sent

    entries = await audit_entries(client, tenant.id, "budget.update")
    assert [e["details"]["changes"] for e in entries] == [
        {
            "daily_limit": {"from": None, "to": 50_000},
            "monthly_limit": {"from": None, "to": 1_000_000.5},
            "alert_threshold_pct": {"from": 80, "to": 90},
        },
        {"daily_limit": {"from": 50_000, "to": None}},
        {"monthly_limit": {"from": 1_000_000.5, "to": 0}},
    ]
    same = await client.post(url, json={"monthly_limit": 0}, headers=tenant.auth("admin"))
    assert same.status == 200
    assert len(await audit_entries(client, tenant.id, "budget.update")) == 3


async def test_it_creates_a_budget_row_even_without_changes(
    client: TestClient[Any, Any], make_tenant: TenantFactory
) -> None:
    tenant = await make_tenant("acme")
    response = await client.post(
        f"/api/tenants/{tenant.id}/budget", json={}, headers=tenant.auth("admin")
    )
    body = await response.json()
    assert body["configured"] is True
    assert (body["daily_limit"], body["monthly_limit"], body["alert_threshold_pct"]) == (
        None,
        None,
        80,
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"daily_limit": -1}, "daily_limit"),
        ({"daily_limit": 5.55555}, "daily_limit"),
        ({"daily_limit": "abc"}, "daily_limit"),
        ({"daily_limit": True}, "daily_limit"),
        ({"daily_limit": [1]}, "daily_limit"),
        ({"monthly_limit": 100_000_000_001}, "monthly_limit"),
        ({"monthly_limit": float("1e30")}, "monthly_limit"),
        ({"alert_threshold_pct": 0}, "alert_threshold_pct"),
        ({"alert_threshold_pct": 101}, "alert_threshold_pct"),
        ({"alert_threshold_pct": 50.5}, "alert_threshold_pct"),
        ({"alert_threshold_pct": None}, "alert_threshold_pct"),
        ({"weekly_limit": 5}, "weekly_limit"),
    ],
)
async def test_it_refuses_bad_budgets(
    client: TestClient[Any, Any], make_tenant: TenantFactory, body: dict[str, Any], field: str
) -> None:
    tenant = await make_tenant("acme")
    response = await client.post(
        f"/api/tenants/{tenant.id}/budget", json=body, headers=tenant.auth("admin")
    )
    assert response.status == 400
    assert (await response.json())["error"]["field"] == field
    assert (await budget(client, tenant))["configured"] is False


# --- pause and resume ----------------------------------------------------------------------


async def test_it_pauses_and_resumes_idempotently_with_who_when_and_why(
    client: TestClient[Any, Any], make_tenant: TenantFactory, clock: ManualClock
) -> None:
    tenant = await make_tenant("acme")
    pause_url, resume_url = f"/api/tenants/{tenant.id}/pause", f"/api/tenants/{tenant.id}/resume"
    h = tenant.auth("admin")
    for bad in ({}, {"reason": ""}, {"reason": "   "}, {"reason": 5}, {"reason": "x" * 501}):
        response = await client.post(pause_url, json=bad, headers=h)
        assert response.status == 400, bad
        assert (await response.json())["error"]["field"] == "reason"
    unknown = await client.post(pause_url, json={"reason": "x", "until": "later"}, headers=h)
    assert (await unknown.json())["error"]["field"] == "until"
    assert (await settings(client, tenant))["paused"] is False

    clock.advance(minutes=30)
    response = await client.post(pause_url, json={"reason": " complaint check "}, headers=h)
    assert response.status == 200
    body = await response.json()
    assert body["paused"] is True
    assert body["paused_at"] == "2026-01-05T00:30:00Z"
    assert body["pause_reason"] == "complaint check"
    assert body["paused_by"] is None  # an API key, not a user
    assert await settings(client, tenant) == body

    clock.advance(minutes=5)
    again = await client.post(pause_url, json={"reason": "another"}, headers=h)
    assert again.status == 200
    assert await again.json() == body  # the first pause's who, when and why stay

    [paused] = await audit_entries(client, tenant.id)
    assert paused["action"] == "tenant.pause" and paused["details"] == {"reason": "complaint check"}

    resumed = await client.post(resume_url, headers=h)
    assert resumed.status == 200
    body = await resumed.json()
    assert body["paused"] is False
    assert (body["paused_at"], body["paused_by"], body["pause_reason"]) == (None, None, None)
    again = await client.post(resume_url, json={}, headers=h)
    assert again.status == 200 and (await again.json())["paused"] is False
    actions = [e["action"] for e in await audit_entries(client, tenant.id)]
    assert actions == ["tenant.pause", "tenant.resume"]
    resume_entry = (await audit_entries(client, tenant.id, "tenant.resume"))[0]
    assert resume_entry["details"]["reason"] == "complaint check"


async def test_it_records_the_user_who_paused(
    client: TestClient[Any, Any], make_tenant: TenantFactory, sign_in: SignIn
) -> None:
    tenant = await make_tenant("acme")
    admin = await sign_in("boss@example.com", tenant_id=tenant.id, role="admin")
    response = await client.post(
        f"/api/tenants/{tenant.id}/pause",
        json={"reason": "holiday"},
        headers=admin.headers(unsafe=True),
    )
    assert response.status == 200
    body = await response.json()
    assert body["paused_by"] == admin.user_id
    assert body["paused_by_email"] == "boss@example.com"
    me = await (await client.get("/api/me", headers=tenant.auth("viewer"))).json()
    assert me["tenant"]["paused"] is True


# --- access --------------------------------------------------------------------------------


async def test_it_refuses_every_settings_write_to_staff_and_viewers(
    client: TestClient[Any, Any], make_tenant: TenantFactory, sign_in: SignIn
) -> None:
    tenant = await make_tenant("acme")
    staff = await sign_in("staff@example.com", tenant_id=tenant.id, role="staff")
    base = f"/api/tenants/{tenant.id}"
    writes: list[tuple[str, str, dict[str, Any]]] = [
        ("PATCH", base, {"cooldown_hours": 1}),
        ("POST", f"{base}/budget", {"daily_limit": 1}),
        ("POST", f"{base}/pause", {"reason": "x"}),
        ("POST", f"{base}/resume", {}),
    ]
    for method, path, body in writes:
        for headers in (tenant.auth("staff"), tenant.auth("viewer"), staff.headers(unsafe=True)):
            response = await client.request(method, path, json=body, headers=headers)
            assert response.status == 403, (method, path)
            assert (await response.json())["error"]["code"] == "forbidden"
    for path, form in [
        ("/admin/settings", {"cooldown_hours": "1"}),
        ("/admin/settings/budget", {"daily_limit": "1", "alert_threshold_pct": "80"}),
        ("/admin/settings/pause", {"reason": "x"}),
        ("/admin/settings/resume", {}),
    ]:
        response = await client.post(
            path,
            data={"csrf_token": staff.csrf, **form},
            headers=staff.headers(),
            allow_redirects=False,
        )
        assert response.status == 403, path
    shown = await settings(client, tenant)
    assert shown["cooldown_hours"] == 24 and shown["paused"] is False
    assert (await budget(client, tenant))["configured"] is False
    assert await audit_entries(client, tenant.id) == []


# --- the settings page ---------------------------------------------------------------------


async def test_it_shows_the_settings_page_read_only_to_viewers(
    client: TestClient[Any, Any], make_tenant: TenantFactory, sign_in: SignIn
) -> None:
    tenant = await make_tenant("acme")
    viewer = await sign_in("v@example.com", tenant_id=tenant.id, role="viewer")
    page = await client.get("/admin/settings", headers=viewer.headers())
    assert page.status == 200
    text = await page.text()
    assert 'href="/admin/settings" aria-current="page"' in text
    assert 'href="/admin/numbers"' in text
    assert 'value="09:00-20:00"' in text and 'value="09:00-17:00"' in text
    assert "AU=5.5" in text and "$0.055" in text
    assert "Only an admin can change these." in text
    assert "Save settings" not in text and "Pause all sending" not in text
    assert 'action="/admin/settings/budget"' not in text
    assert "disabled" in text
    assert '<span class="badge good">sending</span>' in text


async def test_it_saves_the_settings_form_and_rerenders_errors(
    client: TestClient[Any, Any], make_tenant: TenantFactory, sign_in: SignIn
) -> None:
    tenant = await make_tenant("acme")
    admin = await sign_in("a@example.com", tenant_id=tenant.id, role="admin")
    page = await client.get("/admin/settings", headers=admin.headers())
    text = await page.text()
    assert "Save settings" in text and "Pause all sending" in text
    assert 'name="csrf_token" value="' + admin.csrf + '"' in text
    assert "Australia/Perth" in text and "Europe/London" in text

    form = {
        "csrf_token": admin.csrf,
        "name": "Acme",
        "timezone": "Australia/Brisbane",
        "default_country": "AU",
        "window_mon": "09:00-12:00, 13:00-20:00",
        "window_tue": "09:00-20:00",
        "window_wed": "09:00-20:00",
        "window_thu": "09:00-20:00",
        "window_fri": "09:00 – 20:00",
        "window_sat": "closed",
        "window_sun": "",
        "respect_public_holidays": "",  # "send as on any other day"
        "rate_limit_per_minute": "1,200",
        "cooldown_hours": "12",
        "optout_footer": "{tenant_name}: reply STOP to opt out",
        "optout_keywords": "",
        "short_link_base_url": "",
        "fallback_url": "https://acme.example/",
        "price_per_segment": "AU=5.5, NZ=7.25",
    }
    saved = await client.post(
        "/admin/settings", data=form, headers=admin.headers(), allow_redirects=False
    )
    assert saved.status == 303 and saved.headers["Location"] == "/admin/settings"
    shown = await settings(client, tenant)
    assert shown["timezone"] == "Australia/Brisbane"
    assert shown["send_window"] == {
        **DEFAULT_WINDOW,
        "mon": [["09:00", "12:00"], ["13:00", "20:00"]],
        "sat": [],
    }
    assert shown["respect_public_holidays"] is False
    assert shown["rate_limit_per_minute"] == 1200 and shown["cooldown_hours"] == 12
    assert shown["fallback_url"] == "https://acme.example/"
    assert shown["price_per_segment"] == {"AU": 5.5, "NZ": 7.25}
    [entry] = await audit_entries(client, tenant.id)
    assert entry["user_id"] == admin.user_id
    assert set(entry["details"]["fields"]) == {
        "timezone",
        "send_window",
        "respect_public_holidays",
        "rate_limit_per_minute",
        "cooldown_hours",
        "fallback_url",
        "price_per_segment",
    }

    again = await client.get("/admin/settings", headers=admin.headers())
    text = await again.text()
    assert 'value="09:00-12:00, 13:00-20:00"' in text and "AU=5.5, NZ=7.25" in text

    for field, value, says in [
        ("window_tue", "20:00-09:00", "ends before it starts"),
        ("window_wed", "whenever", "not a range"),
        ("price_per_segment", "AU=5.55555", "more than 4 decimals"),
        ("optout_footer", "Thanks!", "STOP"),
        ("rate_limit_per_minute", "lots", "must be a whole number"),
        ("timezone", "Nowhere/Land", "not an IANA timezone"),
    ]:
        bad = await client.post(
            "/admin/settings",
            data={**form, field: value},
            headers=admin.headers(),
            allow_redirects=False,
        )
        assert bad.status == 400, field
        text = await bad.text()
        assert 'class="flash flash-error"' in text and says in text, field
        if field != "timezone":  # a select shows its options, not the posted text
            assert f'value="{value}"' in text.replace("&#34;", '"'), field
    assert len(await audit_entries(client, tenant.id)) == 1

    no_csrf = await client.post(
        "/admin/settings", data={**form, "csrf_token": "wrong"}, headers=admin.headers()
    )
    assert no_csrf.status == 403


async def test_it_edits_the_budget_on_the_page_and_shows_spend(
    client: TestClient[Any, Any], make_tenant: TenantFactory, sign_in: SignIn, clock: ManualClock
) -> None:
    tenant = await make_tenant("acme")
    admin = await sign_in("a@example.com", tenant_id=tenant.id, role="admin")
    await add_cost(client, tenant.id, clock.now(), 165_000)
    saved = await client.post(
        "/admin/settings/budget",
        data={
            "csrf_token": admin.csrf,
            "daily_limit": "20",
            "monthly_limit": "",
            "alert_threshold_pct": "75",
        },
        headers=admin.headers(),
        allow_redirects=False,
    )
    assert saved.status == 303
    body = await budget(client, tenant)
    assert (body["daily_limit"], body["monthly_limit"], body["alert_threshold_pct"]) == (
        20,
        None,
        75,
    )
    text = await (await client.get("/admin/settings", headers=admin.headers())).text()
    assert "16.5¢" in text and "$0.165" in text
    assert '<span class="badge bad">82%</span>' in text  # 16.5 of 20 cents, over 75 %
    bad = await client.post(
        "/admin/settings/budget",
        data={
            "csrf_token": admin.csrf,
            "daily_limit": "1.23456",
            "monthly_limit": "",
            "alert_threshold_pct": "75",
        },
        headers=admin.headers(),
    )
    assert bad.status == 400
    text = await bad.text()
    assert "more than 4 decimals" in text and 'value="1.23456"' in text
    assert (await budget(client, tenant))["daily_limit"] == 20


async def test_it_pauses_and_resumes_from_the_page(
    client: TestClient[Any, Any], make_tenant: TenantFactory, sign_in: SignIn
) -> None:
    tenant = await make_tenant("acme")
    admin = await sign_in("boss@example.com", tenant_id=tenant.id, role="admin")
    viewer = await sign_in("v@example.com", tenant_id=tenant.id, role="viewer")
    empty = await client.post(
        "/admin/settings/pause",
        data={"csrf_token": admin.csrf, "reason": " "},
        headers=admin.headers(),
    )
    assert empty.status == 400 and "needs a reason" in await empty.text()
    paused = await client.post(
        "/admin/settings/pause",
        data={"csrf_token": admin.csrf, "reason": "<b>complaint</b>"},
        headers=admin.headers(),
        allow_redirects=False,
    )
    assert paused.status == 303
    assert (await settings(client, tenant))["paused"] is True
    text = await (await client.get("/admin/settings", headers=viewer.headers())).text()
    assert '<span class="badge bad">paused</span>' in text
    assert "boss@example.com" in text
    assert "&lt;b&gt;complaint&lt;/b&gt;" in text and "<b>complaint" not in text
    assert "2026-01-05 11:00 Australia/Sydney" in text  # local time of the pause
    assert "Resume sending" not in text  # viewers see the state, not the button
    admin_text = await (await client.get("/admin/settings", headers=admin.headers())).text()
    assert "Resume sending" in admin_text and "Pause all sending" not in admin_text

    resumed = await client.post(
        "/admin/settings/resume",
        data={"csrf_token": admin.csrf},
        headers=admin.headers(),
        allow_redirects=False,
    )
    assert resumed.status == 303
    assert (await settings(client, tenant))["paused"] is False
    actions = [e["action"] for e in await audit_entries(client, tenant.id)]
    assert actions == ["tenant.pause", "tenant.resume"]


async def test_it_names_the_api_key_that_paused_on_the_page(
    client: TestClient[Any, Any], make_tenant: TenantFactory, sign_in: SignIn
) -> None:
    tenant = await make_tenant("acme")
    viewer = await sign_in("v@example.com", tenant_id=tenant.id, role="viewer")
    await client.post(
        f"/api/tenants/{tenant.id}/pause", json={"reason": "deploy"}, headers=tenant.auth("admin")
    )
    text = await (await client.get("/admin/settings", headers=viewer.headers())).text()
    assert "API key &#39;admin key&#39;" in text
