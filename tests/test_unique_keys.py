"""Pack §4: every unique key holds on both backends.

Table-driven: each key of the pack is inserted once, a duplicate is refused with a unique-key
violation, and the same row in another tenant is accepted where the key includes tenant_id
(or refused too where the key is global, like a short-link token).
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import pytest

from smsapp.clock import ManualClock
from smsapp.db import Database, Sql, is_unique_violation
from smsapp.db.schema import UniqueKey, describe_schema

PHONE = "+61400000001"
IntegrityErrors = (sqlite3.IntegrityError, asyncpg.IntegrityConstraintViolationError)


class Rows:
    """Small inserts of valid rows for schema tests, every time from the test's clock.

    `values(table, tenant_id)` gives the columns of a valid row of `table`; the parents it
    needs (campaign, contact, ...) are made once per tenant, so two rows built alike share
    them and differ only in the columns given a fresh serial (tokens, hashes).
    """

    def __init__(self, db: Database, clock: ManualClock) -> None:
        self.db = db
        self.clock = clock
        self._serial = itertools.count(1)
        self._parents: dict[tuple[str, object], int] = {}

    def serial(self) -> int:
        return next(self._serial)

    def created(self) -> dict[str, datetime]:
        return {"created_at": self.clock.now()}

    def stamps(self) -> dict[str, datetime]:
        return {"created_at": self.clock.now(), "updated_at": self.clock.now()}

    async def insert(self, table: str, values: dict[str, Any]) -> int:
        """INSERT one row; its id."""
        columns = ", ".join(values)
        params = ", ".join(f":{name}" for name in values)
        sql = Sql(f"INSERT INTO {table} ({columns}) VALUES ({params}) RETURNING id")
        async with self.db.transaction() as tx:
            return int(await tx.val(sql, **values))

    async def add(self, table: str, tenant_id: int, **overrides: Any) -> int:
        return await self.insert(table, await self.values(table, tenant_id, **overrides))

    async def values(self, table: str, tenant_id: int, **overrides: Any) -> dict[str, Any]:
        makers: dict[str, Callable[[int], Awaitable[dict[str, Any]]]] = {
            "api_keys": self._api_key,
            "campaigns": self._campaign,
            "contacts": self._contact,
            "costs": self._cost,
            "do_not_contact": self._do_not_contact,
            "events": self._event,
            "import_batches": self._import_batch,
            "import_rows": self._import_row,
            "memberships": self._membership,
            "outbox": self._outbox,
            "send_jobs": self._send_job,
            "sending_numbers": self._sending_number,
            "short_links": self._short_link,
            "suppression_rules": self._suppression_rule,
            "users": self._user,
            "webhook_events": self._webhook_event,
        }
        return {**await makers[table](tenant_id), **overrides}

    # Parents: made on first use, then shared.

    async def tenant(self) -> int:
        n = self.serial()
        return await self.insert(
            "tenants", {"name": f"Tenant {n}", "slug": f"tenant-{n}", **self.stamps()}
        )

    async def parent(self, table: str, tenant_id: int) -> int:
        """The tenant's one row of `table` that other rows point at."""
        if (table, tenant_id) not in self._parents:
            self._parents[(table, tenant_id)] = await self.add(table, tenant_id)
        return self._parents[(table, tenant_id)]

    async def user(self, email: str) -> int:
        if ("users", email) not in self._parents:
            self._parents[("users", email)] = await self.insert(
                "users", {"email": email, **self.stamps()}
            )
        return self._parents[("users", email)]

    # One valid row per table.

    async def _user(self, tenant_id: int) -> dict[str, Any]:
        return {"email": "person@example.com", **self.stamps()}

    async def _membership(self, tenant_id: int) -> dict[str, Any]:
        user_id = await self.user("member@example.com")
        return {"user_id": user_id, "tenant_id": tenant_id, "role": "staff", **self.stamps()}

    async def _api_key(self, tenant_id: int) -> dict[str, Any]:
        n = self.serial()
        return {
            "tenant_id": tenant_id,
            "name": f"key {n}",
            "role": "staff",
            "key_hash": f"hash-{n}",
            "key_prefix": f"sk_{n}",
            **self.created(),
        }

    async def _contact(self, tenant_id: int) -> dict[str, Any]:
        return {"tenant_id": tenant_id, "phone_e164": PHONE, **self.stamps()}

    async def _campaign(self, tenant_id: int) -> dict[str, Any]:
        return {"tenant_id": tenant_id, "name": f"Campaign {self.serial()}", **self.stamps()}

    async def _send_job(self, tenant_id: int) -> dict[str, Any]:
        return {
            "tenant_id": tenant_id,
            "campaign_id": await self.parent("campaigns", tenant_id),
            "contact_id": await self.parent("contacts", tenant_id),
            "body": "Hello",
            "parts": 1,
            "encoding": "GSM-7",
            "next_attempt_at": self.clock.now(),
            **self.stamps(),
        }

    async def _short_link(self, tenant_id: int) -> dict[str, Any]:
        return {
            "token": f"token-{self.serial():04d}",
            "tenant_id": tenant_id,
            "campaign_id": await self.parent("campaigns", tenant_id),
            "contact_id": await self.parent("contacts", tenant_id),
            "target_url": "https://example.com/offer",
            "expires_at": self.clock.now(),
            **self.stamps(),
        }

    async def _do_not_contact(self, tenant_id: int) -> dict[str, Any]:
        return {"tenant_id": tenant_id, "phone_e164": PHONE, "source": "manual", **self.created()}

    async def _suppression_rule(self, tenant_id: int) -> dict[str, Any]:
        return {"tenant_id": tenant_id, "phone_e164": PHONE, "kind": "manual", **self.created()}

    async def _webhook_event(self, tenant_id: int) -> dict[str, Any]:
        return {
            "provider": "sandbox",
            "provider_event_id": "evt_0001",
            "kind": "status",
            "payload": {"status": "delivered"},
            "received_at": self.clock.now(),
            **self.created(),
        }

    async def _import_batch(self, tenant_id: int) -> dict[str, Any]:
        return {
            "tenant_id": tenant_id,
            "filename": "contacts.csv",
            "sha256": f"sha-{self.serial()}",
            "mapping": {"phone": "Mobile"},
            "status": "dry_run",
            **self.stamps(),
        }

    async def _import_row(self, tenant_id: int) -> dict[str, Any]:
        return {
            "import_batch_id": await self.parent("import_batches", tenant_id),
            "row_number": 1 + self.serial(),
            "data": {"phone_e164": PHONE},
            "raw": {"Mobile": "0400 000 001"},
            "decision": "create",
            **self.created(),
        }

    async def _sending_number(self, tenant_id: int) -> dict[str, Any]:
        return {"tenant_id": tenant_id, "phone_e164": "+61400000000", **self.stamps()}

    async def _event(self, tenant_id: int) -> dict[str, Any]:
        return {
            "tenant_id": tenant_id,
            "type": "IMPORTED",
            "occurred_at": self.clock.now(),
            **self.created(),
        }

    async def _outbox(self, tenant_id: int) -> dict[str, Any]:
        return {
            "tenant_id": tenant_id,
            "kind": "email",
            "payload": {"to": "person@example.com"},
            "available_at": self.clock.now(),
            **self.stamps(),
        }

    async def _cost(self, tenant_id: int) -> dict[str, Any]:
        return {"tenant_id": tenant_id, "parts": 1, "source": "estimate", **self.created()}


@pytest.fixture
def rows(db: Database, clock: ManualClock) -> Rows:
    return Rows(db, clock)


async def expect_unique_violation(rows: Rows, table: str, values: dict[str, Any]) -> None:
    with pytest.raises(IntegrityErrors) as caught:
        await rows.insert(table, values)
    assert is_unique_violation(caught.value), f"not a unique violation: {caught.value!r}"


@dataclass(frozen=True)
class KeyCase:
    key: str  # as pack §4 writes it
    table: str
    overrides: dict[str, Any]  # on top of Rows.values, to isolate this key from the others
    # True: the same row in another tenant is accepted (the key includes tenant_id);
    # False: it is refused too (a key over all tenants); None: the table has no tenant.
    other_tenant_accepted: bool | None


KEYS = [
    KeyCase("contacts(tenant_id, phone_e164)", "contacts", {}, True),
    KeyCase("send_jobs(tenant_id, campaign_id, contact_id)", "send_jobs", {}, True),
    KeyCase(
        "short_links(token)",
        "short_links",
        {"token": "token-fixed", "campaign_id": None, "contact_id": None},
        False,
    ),
    # Both set; the tokens differ, so only this key can refuse the duplicate.
    KeyCase("short_links(campaign_id, contact_id)", "short_links", {}, None),
    KeyCase("do_not_contact(tenant_id, phone_e164)", "do_not_contact", {}, True),
    KeyCase("webhook_events(provider, provider_event_id)", "webhook_events", {}, None),
    KeyCase(
        "import_batches(tenant_id, idempotency_key)",
        "import_batches",
        {"idempotency_key": "upload-1"},
        True,
    ),
    KeyCase("sending_numbers(phone_e164)", "sending_numbers", {}, False),
    KeyCase("users(email)", "users", {}, None),
    KeyCase("memberships(user_id, tenant_id)", "memberships", {}, True),
]


@pytest.mark.parametrize("case", KEYS, ids=[c.key for c in KEYS])
async def test_it_refuses_a_duplicate_of_each_unique_key(rows: Rows, case: KeyCase) -> None:
    tenant_id = await rows.tenant()
    await rows.insert(case.table, await rows.values(case.table, tenant_id, **case.overrides))

    duplicate = await rows.values(case.table, tenant_id, **case.overrides)
    await expect_unique_violation(rows, case.table, duplicate)

    if case.other_tenant_accepted is None:
        return
    other_tenant_id = await rows.tenant()
    same_row_elsewhere = await rows.values(case.table, other_tenant_id, **case.overrides)
    if case.other_tenant_accepted:
        await rows.insert(case.table, same_row_elsewhere)
    else:
        await expect_unique_violation(rows, case.table, same_row_elsewhere)


async def test_it_lets_short_links_without_a_campaign_share_a_contact(rows: Rows) -> None:
    tenant_id = await rows.tenant()
    for _ in range(2):
        await rows.add("short_links", tenant_id, campaign_id=None)
    for _ in range(2):
        await rows.add("short_links", tenant_id, campaign_id=None, contact_id=None)


async def test_it_lets_import_batches_without_an_idempotency_key_repeat(rows: Rows) -> None:
    tenant_id = await rows.tenant()
    for _ in range(2):
        await rows.add("import_batches", tenant_id, idempotency_key=None)
    # The key is per tenant: the same key in two tenants are two uploads.
    await rows.add("import_batches", tenant_id, idempotency_key="upload-1")
    await rows.add("import_batches", await rows.tenant(), idempotency_key="upload-1")


async def test_it_accepts_the_same_provider_event_id_from_another_provider(rows: Rows) -> None:
    await rows.add("webhook_events", 0, provider="sandbox")
    await rows.add("webhook_events", 0, provider="twilio")


PACK_KEYS = [
    ("contacts", UniqueKey(("tenant_id", "phone_e164"))),
    ("send_jobs", UniqueKey(("tenant_id", "campaign_id", "contact_id"))),
    ("short_links", UniqueKey(("token",))),
    (
        "short_links",
        UniqueKey(
            ("campaign_id", "contact_id"), "campaign_id IS NOT NULL AND contact_id IS NOT NULL"
        ),
    ),
    ("do_not_contact", UniqueKey(("tenant_id", "phone_e164"))),
    ("webhook_events", UniqueKey(("provider", "provider_event_id"))),
    (
        "import_batches",
        UniqueKey(("tenant_id", "idempotency_key"), "idempotency_key IS NOT NULL"),
    ),
    ("sending_numbers", UniqueKey(("phone_e164",))),
    ("users", UniqueKey(("email",))),
    ("memberships", UniqueKey(("user_id", "tenant_id"))),
]


async def test_it_declares_every_key_of_the_pack_in_the_schema(db: Database) -> None:
    schema = await describe_schema(db)
    missing = [
        (table, key) for table, key in PACK_KEYS if key not in schema.table(table).unique_keys
    ]
    assert missing == []
