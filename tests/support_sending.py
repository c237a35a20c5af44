"""Builds what the send loop works on: a tenant with sending numbers, consented contacts, a
campaign and its queued jobs — through the same domain functions the app uses."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from smsapp.campaigns import create_campaign, create_template
from smsapp.clock import Clock, ManualClock
from smsapp.config import Settings
from smsapp.db import Database, Sql
from smsapp.engine.providers import Provider, SandboxProvider
from smsapp.engine.sender import Sender, SenderConfig
from smsapp.numbers import add_sending_number
from smsapp.queue_builder import queue_campaign
from smsapp.tenancy import create_tenant

# Monday 5 January 2026, 03:00 UTC: 14:00 in Sydney, 11:00 in Perth — the window is open in
# every Australian zone (no public holiday).
OPEN = datetime(2026, 1, 5, 3, 0, tzinfo=UTC)


@dataclass
class Scenario:
    tenant_id: int
    campaign_id: int
    number_ids: list[int]
    contact_ids: list[int]


def phones(n: int, start: int = 1) -> list[str]:
    return [f"+614120{i:05d}" for i in range(start, start + n)]


async def add_contacts(
    db: Database, clock: Clock, tenant_id: int, numbers: list[str], *,
    state: str | None = "NSW", tag: str | None = None, country: str = "AU",
) -> list[int]:  # fmt: skip
    tags = [tag] if tag else []
    await db.run_many(
        Sql(
            "INSERT INTO contacts (tenant_id, phone_e164, first_name, country, state, tags, "
            "consent_source, consent_at, created_at, updated_at) "
            "VALUES (:t, :phone, 'Ann', :country, :state, :tags, 'test', :now, :now, :now)"
        ),
        [
            {
                "t": tenant_id,
                "phone": p,
                "state": state,
                "country": country,
                "tags": tags,
                "now": clock.now(),
            }
            for p in numbers
        ],
    )
    rows = await db.all(
        Sql("SELECT id, phone_e164 FROM contacts WHERE tenant_id = :t ORDER BY id"), t=tenant_id
    )
    wanted = set(numbers)
    return [r["id"] for r in rows if r["phone_e164"] in wanted]


async def make_tenant(db: Database, clock: Clock, slug: str, **settings: Any) -> int:
    tenant_id = await create_tenant(db, clock, name=slug.title(), slug=slug)
    if settings:
        assignments = ", ".join(f"{k} = :{k}" for k in settings)
        await db.run(Sql(f"UPDATE tenants SET {assignments} WHERE id = :t"), t=tenant_id,
                     **settings)  # fmt: skip
    return tenant_id


async def make_campaign(
    db: Database, clock: Clock, settings: Settings, tenant_id: int, *,
    body: str = "Hi {first_name}", tag: str | None = None, queue: bool = True,
    name: str = "C",
) -> int:  # fmt: skip
    template = await create_template(db, clock, tenant_id=tenant_id,
                                     body={"name": f"{name} template", "body": body})  # fmt: skip
    segment = {"tag": tag} if tag else {}
    campaign_id = await create_campaign(
        db, clock, tenant_id=tenant_id, created_by=None,
        body={"name": name, "template_ids": [template["id"]], "segment": segment},
    )  # fmt: skip
    if queue:
        await queue_campaign(db, clock, settings, tenant_id=tenant_id, campaign_id=campaign_id)
    return campaign_id


async def scenario(
    db: Database,
    clock: Clock,
    settings: Settings,
    *,
    contacts: int = 3,
    numbers: tuple[str, ...] = ("+61400000000",),
    slug: str = "acme",
    state: str | None = "NSW",
    tenant: dict[str, Any] | None = None,
    queue: bool = True,
    number_limits: dict[str, Any] | None = None,
) -> Scenario:
    tenant_id = await make_tenant(db, clock, slug, **(tenant or {}))
    number_ids = [await add_sending_number(db, clock, tenant_id=tenant_id, value=n)
                  for n in numbers]  # fmt: skip
    if number_limits:
        assignments = ", ".join(f"{k} = :{k}" for k in number_limits)
        await db.run(Sql(f"UPDATE sending_numbers SET {assignments} WHERE tenant_id = :t"),
                     t=tenant_id, **number_limits)  # fmt: skip
    start = 1 + 1000 * (tenant_id % 50)
    contact_ids = await add_contacts(db, clock, tenant_id, phones(contacts, start), state=state)
    campaign_id = await make_campaign(db, clock, settings, tenant_id, queue=queue)
    return Scenario(tenant_id, campaign_id, number_ids, contact_ids)


def sandbox(clock: ManualClock) -> SandboxProvider:
    return SandboxProvider(clock)


def sender(db: Database, clock: Clock, provider: Provider, **config: Any) -> Sender:
    import random

    return Sender(db, clock, provider, config=SenderConfig(**config), rng=random.Random(7))


async def job_statuses(db: Database, campaign_id: int) -> dict[str, int]:
    rows = await db.all(
        Sql("SELECT status, count(*) AS n FROM send_jobs WHERE campaign_id = :c GROUP BY status"),
        c=campaign_id,
    )
    return {r["status"]: r["n"] for r in rows}


async def event_counts(db: Database, campaign_id: int) -> dict[str, int]:
    rows = await db.all(
        Sql("SELECT type, count(*) AS n FROM events WHERE campaign_id = :c GROUP BY type"),
        c=campaign_id,
    )
    return {r["type"]: r["n"] for r in rows}
