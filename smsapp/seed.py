"""`smsapp seed`: the demo tenant, three templates, one sending number, an admin. Idempotent."""

from __future__ import annotations

from dataclasses import dataclass

from smsapp.clock import Clock
from smsapp.db import Database
from smsapp.numbers import add_sending_number
from smsapp.tenancy import TenancyError, create_tenant, ensure_user, set_membership, tenant_by_slug

DEMO_SLUG = "demo"
DEMO_NUMBER = "+61400000000"
TEMPLATES = {
    "Welcome offer": "Hi {first_name}, welcome to Demo Co! Take 15% off your first order: {link}",
    "Weekend reminder": "Hi {first_name}, our weekend sale ends Sunday. See what's on: {link}",
    "Last chance": "{first_name}, last chance: the offer closes tonight. {link}",
}


@dataclass(frozen=True)
class SeedResult:
    tenant_id: int
    admin_user_id: int
    sending_number_id: int


async def seed(db: Database, clock: Clock, *, admin_email: str) -> SeedResult:
    try:
        tenant_id = (await tenant_by_slug(db, DEMO_SLUG))["id"]
    except TenancyError:
        tenant_id = await create_tenant(db, clock, name="Demo Co", slug=DEMO_SLUG)
    now = clock.now()
    async with db.transaction() as tx:
        for name, body in TEMPLATES.items():
            await tx.run("seed.insert_template", tenant_id=tenant_id, name=name, body=body, now=now)
    number_id = await add_sending_number(db, clock, tenant_id=tenant_id, value=DEMO_NUMBER)
    user_id = await ensure_user(db, clock, admin_email)
    await set_membership(db, clock, user_id=user_id, tenant_id=tenant_id, role="admin")
    return SeedResult(tenant_id, user_id, number_id)
