"""Short links (pack §9, §17): the redirect, its bot rules and exact counters, and the API."""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import DummyCookieJar
from aiohttp.test_utils import TestClient

from smsapp.app import create_app
from smsapp.clock import ManualClock
from smsapp.db import Database, Sql
from smsapp.hit_writer import HIT_WRITER, parse_line
from smsapp.keys import DB, LINK_CACHE
from smsapp.tenancy import create_tenant
from tests.conftest import FreshDatabases, TenantFactory, TenantFixture, make_settings
from tests.support_audit import audit_entries

PHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1_2 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.1.2 Mobile/15E148 Safari/604.1"
)
TARGET = "https://shop.example.com/sale?utm_source=sms"
Client = TestClient[Any, Any]


def db_of(client: Client) -> Database:
    db: Database = client.app[DB]
    return db


async def make_campaign_contact(
    client: Client, clock: ManualClock, tenant_id: int, phone: str = "+61400000001"
) -> tuple[int, int]:
    db, now = db_of(client), clock.now()
    campaign_id = await db.val(
        Sql(
            "INSERT INTO campaigns (tenant_id, name, created_at, updated_at) "
            "VALUES (:t, 'Sale', :now, :now) RETURNING id"
        ),
        t=tenant_id,
        now=now,
    )
    contact_id = await db.val(
        Sql(
            "INSERT INTO contacts (tenant_id, phone_e164, created_at, updated_at) "
            "VALUES (:t, :phone, :now, :now) RETURNING id"
        ),
        t=tenant_id,
        phone=phone,
        now=now,
    )
    return int(campaign_id), int(contact_id)


async def make_job(
    client: Client, clock: ManualClock, tenant_id: int, campaign_id: int, contact_id: int
) -> int:
    """A message that was sent just now (the link made afterwards is bound to it)."""
    now = clock.now()
    return int(
        await db_of(client).val(
            Sql(
                "INSERT INTO send_jobs (tenant_id, campaign_id, contact_id, body, parts, encoding,"
                " status, next_attempt_at, sent_at, created_at, updated_at) VALUES (:t, :c, :p,"
                " 'hi', 1, 'GSM-7', 'sent', :now, :now, :now, :now) RETURNING id"
            ),
            t=tenant_id,
            c=campaign_id,
            p=contact_id,
            now=now,
        )
    )


async def new_link(client: Client, tenant: TenantFixture, **body: Any) -> dict[str, Any]:
    response = await client.post(
        "/api/short-links", json={"target_url": TARGET, **body}, headers=tenant.auth("staff")
    )
    assert response.status == 201, await response.text()
    result: dict[str, Any] = await response.json()
    return result


async def hit(
    client: Client, token: str, agent: str = PHONE, method: str = "GET", **headers: str
) -> Any:
    return await client.request(
        method, f"/s/{token}", headers={"User-Agent": agent, **headers}, allow_redirects=False
    )


async def folded(client: Client) -> Database:
    """The database, once every hit answered so far is folded into it (as the short-link API
    and the links page do before they answer)."""
    await client.app[HIT_WRITER].fold()
    return db_of(client)


async def counters(client: Client, token: str) -> tuple[int, int]:
    row = await (await folded(client)).one(
        Sql("SELECT clicks_total, clicks_human FROM short_links WHERE token = :t"), t=token
    )
    assert row is not None
    return row["clicks_total"], row["clicks_human"]


async def hits(client: Client, token: str) -> list[dict[str, Any]]:
    return await (await folded(client)).all(
        Sql(
            "SELECT h.* FROM short_link_hits h JOIN short_links l ON l.id = h.short_link_id "
            "WHERE l.token = :t ORDER BY h.id"
        ),
        t=token,
    )


async def clicked_events(client: Client, tenant_id: int) -> list[dict[str, Any]]:
    return await (await folded(client)).all(
        Sql("SELECT * FROM events WHERE tenant_id = :t AND type = 'CLICKED' ORDER BY id"),
        t=tenant_id,
    )


# --- The redirect ----------------------------------------------------------------------------


async def test_it_redirects_with_exactly_the_pack_headers(
    client: Client, make_tenant: TenantFactory
) -> None:
    acme = await make_tenant("acme")
    link = await new_link(client, acme)
    response = await hit(client, link["token"])
    assert response.status == 302
    assert response.headers["Location"] == TARGET
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Robots-Tag"] == "noindex"
    # PUBLIC_BASE_URL is http:// in the tests and the request is plain HTTP.
    assert "Strict-Transport-Security" not in response.headers
    assert await counters(client, link["token"]) == (1, 1)


async def test_the_redirect_skips_the_middlewares_and_logs_no_line_per_hit(
    client: Client, make_tenant: TenantFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """A fast-path route: its hits are its log (short_link_hits), so no request log line and
    no request id; other routes keep both."""
    acme = await make_tenant("acme")
    link = await new_link(client, acme)
    caplog.set_level(logging.INFO, logger="smsapp.http")
    response = await hit(client, link["token"])
    assert response.status == 302 and "X-Request-ID" not in response.headers
    assert [r for r in caplog.records if r.name == "smsapp.http"] == []
    other = await client.get("/robots.txt")
    assert "X-Request-ID" in other.headers
    assert [r.getMessage() for r in caplog.records if r.name == "smsapp.http"] == [
        "GET /robots.txt 200"
    ]


async def test_it_sends_hsts_when_the_short_host_is_https(
    aiohttp_client: Any, backend: str, fresh_databases: FreshDatabases, sqlite_template: Path,
    tmp_path: Path, clock: ManualClock,
) -> None:  # fmt: skip
    url = fresh_databases.make(backend, sqlite_template=sqlite_template)
    settings = make_settings(url, tmp_path / "d", SHORT_LINK_BASE_URL="https://go.example")
    client = await aiohttp_client(
        create_app(settings, clock=clock, run_background=False), cookie_jar=DummyCookieJar()
    )
    tenant_id = await create_tenant(db_of(client), clock, name="Acme", slug="acme")
    await db_of(client).run(
        Sql(
            "INSERT INTO short_links (token, tenant_id, target_url, expires_at, created_at,"
            " updated_at) VALUES ('Abcdefgh12', :t, :u, :e, :now, :now)"
        ),
        t=tenant_id,
        u=TARGET,
        e=clock.now() + timedelta(days=1),
        now=clock.now(),
    )
    response = await hit(client, "Abcdefgh12")
    assert response.status == 302
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    missing = await client.get("/s/Zzzzzzzz99", allow_redirects=False)
    assert missing.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"


@pytest.mark.parametrize("token", ["Abcdefghij", "short", "bad-token!", "a" * 65])
async def test_it_answers_404_for_an_unknown_token(
    client: Client, make_tenant: TenantFactory, token: str
) -> None:
    await make_tenant("acme")
    response = await client.get(f"/s/{token}", allow_redirects=False)
    assert response.status == 404
    assert response.content_type == "text/html"
    assert response.headers["X-Robots-Tag"] == "noindex"
    assert response.headers["Cache-Control"] == "no-store"
    assert "Location" not in response.headers


async def test_an_expired_link_is_gone_or_goes_to_the_fallback(
    client: Client, make_tenant: TenantFactory, clock: ManualClock
) -> None:
    acme = await make_tenant("acme")
    link = await new_link(client, acme)
    clock.advance(days=60, seconds=-1)
    assert (await hit(client, link["token"])).status == 302
    clock.advance(seconds=1)  # expires_at <= now
    gone = await hit(client, link["token"])
    assert gone.status == 410
    assert gone.content_type == "text/html"
    assert gone.headers["X-Robots-Tag"] == "noindex"
    await db_of(client).run(
        Sql("UPDATE tenants SET fallback_url = 'https://acme.example/' WHERE id = :t"), t=acme.id
    )
    moved = await hit(client, link["token"])
    assert moved.status == 302
    assert moved.headers["Location"] == "https://acme.example/"
    assert moved.headers["Referrer-Policy"] == "no-referrer"
    assert await counters(client, link["token"]) == (1, 1)  # hits after expiry do not count


async def test_head_and_prefetch_never_count_as_human(
    client: Client, make_tenant: TenantFactory, clock: ManualClock
) -> None:
    acme = await make_tenant("acme")
    token = (await new_link(client, acme))["token"]
    head = await hit(client, token, method="HEAD")
    assert head.status == 302
    assert head.headers["Location"] == TARGET
    for prefetch in ({"Purpose": "prefetch"}, {"Sec-Purpose": "prefetch;prerender"}):
        clock.advance(seconds=10)
        assert (await hit(client, token, **prefetch)).status == 302
    assert await counters(client, token) == (3, 0)
    assert [h["reason"] for h in await hits(client, token)] == ["head", "prefetch", "prefetch"]
    assert await clicked_events(client, acme.id) == []
    clock.advance(seconds=10)
    await hit(client, token)
    assert await counters(client, token) == (4, 1)


async def test_a_burst_counts_once(
    client: Client, make_tenant: TenantFactory, clock: ManualClock
) -> None:
    acme = await make_tenant("acme")
    token = (await new_link(client, acme))["token"]
    await hit(client, token)
    await hit(client, token)
    clock.advance(seconds=0.9)
    await hit(client, token)
    assert await counters(client, token) == (3, 1)
    assert [h["reason"] for h in await hits(client, token)] == [None, "burst", "burst"]
    clock.advance(seconds=1)  # a second from the previous hit: a person again
    await hit(client, token)
    assert await counters(client, token) == (4, 2)


async def test_a_hit_within_two_seconds_of_sending_is_a_bot(
    client: Client, make_tenant: TenantFactory, clock: ManualClock
) -> None:
    acme = await make_tenant("acme")
    campaign_id, contact_id = await make_campaign_contact(client, clock, acme.id)
    job_id = await make_job(client, clock, acme.id, campaign_id, contact_id)
    link = await new_link(client, acme, campaign_id=campaign_id, contact_id=contact_id)
    clock.advance(seconds=1.5)
    await hit(client, link["token"])
    assert await counters(client, link["token"]) == (1, 0)
    assert (await hits(client, link["token"]))[0]["reason"] == "too_soon"
    clock.advance(seconds=1.5)  # 3 s after sending, 1.5 s after the scanner
    await hit(client, link["token"])
    assert await counters(client, link["token"]) == (2, 1)
    [event] = await clicked_events(client, acme.id)
    assert (event["campaign_id"], event["contact_id"], event["send_job_id"]) == (
        campaign_id,
        contact_id,
        job_id,
    )


async def test_the_first_human_click_emits_exactly_one_clicked_event(
    client: Client, make_tenant: TenantFactory, clock: ManualClock
) -> None:
    acme = await make_tenant("acme")
    campaign_id, contact_id = await make_campaign_contact(client, clock, acme.id)
    link = await new_link(client, acme, campaign_id=campaign_id, contact_id=contact_id)
    await hit(client, link["token"], agent="WhatsApp/2.23.20.0 A")  # a preview: no event
    assert await clicked_events(client, acme.id) == []
    clock.advance(seconds=30)
    first_at = clock.now()
    for _ in range(4):
        await hit(client, link["token"])
        clock.advance(minutes=5)
    events = await clicked_events(client, acme.id)
    assert len(events) == 1
    assert events[0]["occurred_at"] == first_at
    assert events[0]["contact_id"] == contact_id
    assert events[0]["data"]["short_link_id"] == link["id"]
    read = await client.get(f"/api/short-links/{link['token']}", headers=acme.auth("viewer"))
    body = await read.json()
    assert (body["clicks_total"], body["clicks_human"]) == (5, 4)
    assert body["first_clicked_at"] == first_at.isoformat().replace("+00:00", "Z")


async def test_counters_are_exact_after_200_concurrent_hits(
    client: Client, make_tenant: TenantFactory, clock: ManualClock
) -> None:
    acme = await make_tenant("acme")
    campaign_id, contact_id = await make_campaign_contact(client, clock, acme.id)
    await make_job(client, clock, acme.id, campaign_id, contact_id)
    token = (await new_link(client, acme, campaign_id=campaign_id, contact_id=contact_id))["token"]
    clock.advance(minutes=10)
    agents = [PHONE.replace("Safari/604.1", f"Safari/604.{i}") for i in range(200)]
    responses = await asyncio.gather(*(hit(client, token, agent) for agent in agents))
    assert [r.status for r in responses] == [302] * 200
    assert client.app[LINK_CACHE].reads == 1  # the link read once for all 200
    # All 200 arrive at one instant, long after the message was sent, with browser agents: the
    # rules allow exactly one person — the first hit — and mark the 199 after it as a burst.
    assert await counters(client, token) == (200, 1)
    recorded = await hits(client, token)
    assert len(recorded) == 200
    assert sorted(str(h["reason"]) for h in recorded) == ["None"] + ["burst"] * 199
    assert len(await clicked_events(client, acme.id)) == 1
    # And a second wave, a minute later, half of it link previews: one more person at most.
    clock.advance(minutes=1)
    wave = [PHONE if i % 2 else "facebookexternalhit/1.1 Facebot Twitterbot/1.0" for i in range(50)]
    await asyncio.gather(*(hit(client, token, agent) for agent in wave))
    recorded = await hits(client, token)
    humans = sum(1 for h in recorded if not h["is_bot"])
    assert await counters(client, token) == (250, humans)
    second_wave = recorded[200:]
    first_browser = next(i for i, h in enumerate(second_wave) if "iPhone" in h["user_agent"])
    # The first browser hit of the wave is a person unless a preview came just before it.
    assert humans == 1 + (1 if first_browser == 0 else 0)
    assert len(await clicked_events(client, acme.id)) == 1


async def test_each_hit_is_journaled_by_the_time_its_redirect_arrives(
    client: Client, make_tenant: TenantFactory, clock: ManualClock
) -> None:
    acme = await make_tenant("acme")
    token = (await new_link(client, acme))["token"]
    journal = client.app[HIT_WRITER].journal

    async def follow(n: int) -> None:
        agent = f"{PHONE} n{n}"
        response = await hit(client, token, agent)
        assert response.status == 302
        lines = b"".join(path.read_bytes() for path in journal.segments()).splitlines()
        assert sum(parse_line(line).user_agent == agent for line in lines) == 1, n

    await asyncio.gather(*(follow(n) for n in range(50)))
    assert await counters(client, token) == (50, 1)


async def test_counters_are_exact_after_200_concurrent_hits_on_many_links(
    client: Client, make_tenant: TenantFactory, clock: ManualClock
) -> None:
    acme = await make_tenant("acme")
    tokens = [(await new_link(client, acme))["token"] for _ in range(8)]
    clock.advance(minutes=10)
    agents = [PHONE, "WhatsApp/2.23.20.0 A", PHONE, "Slackbot-LinkExpanding 1.0"]
    await asyncio.gather(
        *(hit(client, tokens[n % 8], agents[n % 4], "HEAD" if n % 25 == 0 else "GET")
          for n in range(200))
    )  # fmt: skip
    for token in tokens:
        recorded = await hits(client, token)
        assert len(recorded) == 25
        humans = [h for h in recorded if not h["is_bot"]]
        # All at one instant: the link's first hit is its only possible person.
        assert len(humans) <= 1
        assert humans == [] or humans[0]["id"] == recorded[0]["id"]
        assert await counters(client, token) == (25, len(humans))
    writer = client.app[HIT_WRITER]
    assert writer.folds < writer.hits == 200  # hits were folded many to a transaction
    clicked = await clicked_events(client, acme.id)
    clicked_links = [t for t in tokens if (await counters(client, t))[1] == 1]
    assert len(clicked) == len(clicked_links) > 0


async def test_it_records_each_hit_without_the_raw_ip(
    client: Client, make_tenant: TenantFactory
) -> None:
    acme = await make_tenant("acme")
    token = (await new_link(client, acme))["token"]
    long_agent = PHONE + " " + "x" * 400
    await hit(client, token, agent=long_agent)
    [recorded] = await hits(client, token)
    assert recorded["user_agent"] == long_agent[:300]
    assert re.fullmatch(r"[0-9a-f]{64}", recorded["ip_hash"])
    assert "127.0.0.1" not in recorded["ip_hash"]
    assert recorded["method"] == "GET"
    assert recorded["tenant_id"] == acme.id
    assert (recorded["is_bot"], recorded["reason"]) == (False, None)


async def test_no_request_parameter_can_change_where_a_link_goes(
    client: Client, make_tenant: TenantFactory
) -> None:
    acme = await make_tenant("acme")
    token = (await new_link(client, acme))["token"]
    for query in ("?url=https://evil.example", "?next=//evil.example", "?target_url=javascript:1"):
        response = await client.get(
            f"/s/{token}{query}", headers={"User-Agent": PHONE}, allow_redirects=False
        )
        assert response.headers["Location"] == TARGET
    response = await client.get(f"/s/{token}/https://evil.example", allow_redirects=False)
    assert response.status == 404


async def test_robots_txt_disallows_the_link_paths(client: Client) -> None:
    response = await client.get("/robots.txt")
    assert response.status == 200
    assert response.content_type == "text/plain"
    assert await response.text() == "User-agent: *\nDisallow: /s/\nDisallow: /u/\n"


# --- The API ---------------------------------------------------------------------------------


async def test_tokens_are_random_and_reveal_nothing_about_the_contact(
    client: Client, make_tenant: TenantFactory, clock: ManualClock
) -> None:
    acme = await make_tenant("acme")
    campaign_id, _ = await make_campaign_contact(client, clock, acme.id)
    tokens = []
    for i in range(30):
        phone = f"+6141000{i:04d}"
        contact_id = await db_of(client).val(
            Sql(
                "INSERT INTO contacts (tenant_id, phone_e164, created_at, updated_at) "
                "VALUES (:t, :p, :now, :now) RETURNING id"
            ),
            t=acme.id,
            p=phone,
            now=clock.now(),
        )
        link = await new_link(client, acme, campaign_id=campaign_id, contact_id=contact_id)
        assert re.fullmatch(r"[A-Za-z0-9]{10}", link["token"])
        assert link["url"] == f"http://127.0.0.1:8080/s/{link['token']}"
        assert phone[1:] not in link["url"]
        tokens.append(link["token"])
    assert len(set(tokens)) == 30
    # Consecutive contacts do not get related tokens (no shared prefix beyond chance).
    assert len({t[:3] for t in tokens}) > 25


async def test_it_makes_one_link_per_campaign_and_contact(
    client: Client, make_tenant: TenantFactory, clock: ManualClock
) -> None:
    acme = await make_tenant("acme")
    campaign_id, contact_id = await make_campaign_contact(client, clock, acme.id)
    first = await new_link(client, acme, campaign_id=campaign_id, contact_id=contact_id)
    again = await client.post(
        "/api/short-links",
        json={"target_url": TARGET, "campaign_id": campaign_id, "contact_id": contact_id},
        headers=acme.auth("staff"),
    )
    assert again.status == 200
    assert (await again.json())["token"] == first["token"]
    loose = [await new_link(client, acme) for _ in range(2)]
    assert loose[0]["token"] != loose[1]["token"]
    assert first["expires_at"] == (clock.now() + timedelta(days=60)).isoformat().replace(
        "+00:00", "Z"
    )
    assert set(first) >= {
        "token", "url", "id", "target_url", "expires_at", "clicks_total", "clicks_human",
        "first_clicked_at", "campaign_id", "contact_id",
    }  # fmt: skip
    entries = await audit_entries(client, acme.id, "short_link.create")
    assert len(entries) == 3
    assert entries[0]["target_id"] == str(first["id"])


@pytest.mark.parametrize(
    "target",
    [
        "javascript:alert(1)",
        "JavaScript://example.com/%0aalert(1)",
        "data:text/html,<script>alert(1)</script>",
        "ftp://example.com/file",
        "https://",
        "//evil.example/",
        "/relative/path",
        "https://exa mple.com/",
        "https://example.com/\nLocation: x",
        "https://example.com/" + "a" * 1981,
        "",
        None,
        42,
    ],
)
async def test_it_refuses_a_target_that_is_not_an_http_url(
    client: Client, make_tenant: TenantFactory, target: Any
) -> None:
    acme = await make_tenant("acme")
    response = await client.post(
        "/api/short-links", json={"target_url": target}, headers=acme.auth("staff")
    )
    assert response.status == 400
    assert (await response.json())["error"]["code"] == "invalid_target_url"


async def test_it_accepts_a_target_of_2000_characters_and_an_upper_case_scheme(
    client: Client, make_tenant: TenantFactory
) -> None:
    acme = await make_tenant("acme")
    long_target = "https://example.com/" + "a" * 1980
    response = await client.post(
        "/api/short-links", json={"target_url": long_target}, headers=acme.auth("staff")
    )
    assert response.status == 201
    response = await client.post(
        "/api/short-links", json={"target_url": "HTTPS://Example.com/X"}, headers=acme.auth("staff")
    )
    assert (await response.json())["target_url"] == "https://Example.com/X"


async def test_another_tenants_links_campaigns_and_contacts_are_not_found(
    client: Client, make_tenant: TenantFactory, clock: ManualClock
) -> None:
    acme, other = await make_tenant("acme"), await make_tenant("other")
    campaign_id, contact_id = await make_campaign_contact(client, clock, other.id)
    theirs = await new_link(client, other, campaign_id=campaign_id, contact_id=contact_id)
    response = await client.get(f"/api/short-links/{theirs['token']}", headers=acme.auth("admin"))
    assert response.status == 404
    assert (await response.json())["error"]["code"] == "not_found"
    for body in ({"campaign_id": campaign_id}, {"contact_id": contact_id}):
        response = await client.post(
            "/api/short-links", json={"target_url": TARGET, **body}, headers=acme.auth("staff")
        )
        assert response.status == 404, body
    mine = await client.get(f"/api/short-links/{theirs['token']}", headers=other.auth("viewer"))
    assert mine.status == 200
    body = await mine.json()
    assert body["campaign_id"] == campaign_id and body["contact_id"] == contact_id


async def test_it_refuses_unknown_fields_and_bad_ids(
    client: Client, make_tenant: TenantFactory
) -> None:
    acme = await make_tenant("acme")
    for body in (
        {"target_url": TARGET, "targetUrl": TARGET},
        {"target_url": TARGET, "campaign_id": "1"},
        {"target_url": TARGET, "contact_id": -1},
        {"target_url": TARGET, "contact_id": True},
    ):
        response = await client.post("/api/short-links", json=body, headers=acme.auth("staff"))
        assert response.status == 400, body


async def test_a_viewer_cannot_make_links(client: Client, make_tenant: TenantFactory) -> None:
    acme = await make_tenant("acme")
    response = await client.post(
        "/api/short-links", json={"target_url": TARGET}, headers=acme.auth("viewer")
    )
    assert response.status == 403
