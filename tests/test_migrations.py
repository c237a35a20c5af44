"""Pack §5: migrations apply on an empty database and once only, both backends build the same
schema, CHECK constraints hold every enumerated list of §3, foreign keys are enforced, and the
active-suppression lookup is served by its index."""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from smsapp.clock import ManualClock
from smsapp.config import DatabaseUrl
from smsapp.db import Database, Sql, is_integrity_error, open_database
from smsapp.db.migrate import YOYO_TABLES, migration_ids
from smsapp.db.schema import (
    Column,
    ForeignKey,
    Schema,
    UniqueKey,
    describe_schema,
    normalise_predicate,
    normalise_type,
)
from tests.conftest import FreshDatabases
from tests.test_unique_keys import PHONE, Rows

IntegrityErrors = (sqlite3.IntegrityError, asyncpg.IntegrityConstraintViolationError)
REPO_ROOT = Path(__file__).resolve().parent.parent

# Pack §3, table by table.
PACK_TABLES = {
    "tenants", "users", "memberships", "login_tokens", "sessions", "api_keys", "audit_log",
    "contacts", "do_not_contact", "suppression_rules", "message_templates", "campaigns",
    "send_jobs", "short_links", "events", "sending_numbers", "webhook_events", "budgets",
    "costs", "import_batches", "import_rows", "outbox",
}  # fmt: skip
# Tables the migrations add beyond the pack's list.
EXTRA_TABLES = {"campaign_templates"}  # the campaign's templates for rotation, in order


def describe(url: DatabaseUrl) -> Schema:
    """The schema at `url`, from a synchronous test (FreshDatabases.make is synchronous: it
    runs its own event loop for PostgreSQL, so the tests that call it are not async)."""

    async def read() -> Schema:
        db = await open_database(url)
        try:
            return await describe_schema(db)
        finally:
            await db.close()

    return asyncio.run(read())


@pytest.fixture
def rows(db: Database, clock: ManualClock) -> Rows:
    return Rows(db, clock)


def in_child_process(url: DatabaseUrl, *functions: str) -> list[list[str]]:
    """Call each `smsapp.db.migrate.<function>(url)` in turn in a fresh interpreter, as
    `smsapp migrate` runs; their results.

    Not in this process: the app's process-wide sqlite3 adapters (smsapp.db.sqlite) and yoyo's
    SQLite backend trip over each other. The app's datetime adapter refuses the naive time
    yoyo writes into its lock row, and a migration leaves yoyo's own datetime adapter
    registered, which would change how every later test stores times on SQLite.
    """
    code = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from smsapp.config import parse_database_url\n"
        "from smsapp.db import migrate\n"
        "url = parse_database_url(sys.argv[1], Path('.'))\n"
        "print(json.dumps([getattr(migrate, name)(url) for name in sys.argv[2:]]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, url.url, *functions],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    results: list[list[str]] = json.loads(done.stdout.strip().splitlines()[-1])
    return results


# Migrations

# These two tests open SQLite before any migrated-database fixture has run. Asking for the
# session's `sqlite_template` first keeps conftest's in-process migration of it ahead of that
# (it would otherwise meet the app's sqlite3 adapters, see in_child_process).
needs_template_first = pytest.mark.usefixtures("sqlite_template")


@needs_template_first
def test_it_applies_every_migration_on_an_empty_database_and_then_none(
    backend: str, fresh_databases: FreshDatabases
) -> None:
    url = fresh_databases.make(backend, migrated=False)
    every = list(migration_ids())
    assert describe(url).tables == ()

    pending, applied, pending_after = in_child_process(
        url, "pending_migrations", "apply_migrations", "pending_migrations"
    )
    assert (pending, applied, pending_after) == (every, every, [])
    first = describe(url)

    applied_again, pending_after_again = in_child_process(
        url, "apply_migrations", "pending_migrations"
    )
    assert (applied_again, pending_after_again) == ([], [])
    assert describe(url) == first


@needs_template_first
def test_it_builds_the_same_schema_on_sqlite_and_postgresql(
    fresh_databases: FreshDatabases,
) -> None:
    # PostgreSQL first: `make` skips the test (or fails it, under SMSAPP_TEST_REQUIRE_PG=1)
    # when the server cannot be reached, as every PostgreSQL case does.
    postgresql_url = fresh_databases.make("postgresql", migrated=False)
    sqlite_url = fresh_databases.make("sqlite", migrated=False)
    in_child_process(postgresql_url, "apply_migrations")
    in_child_process(sqlite_url, "apply_migrations")

    on_sqlite = describe(sqlite_url)
    on_postgresql = describe(postgresql_url)

    assert PACK_TABLES <= set(on_sqlite.table_names)
    assert on_sqlite.table_names == on_postgresql.table_names
    for sqlite_table, postgresql_table in zip(on_sqlite.tables, on_postgresql.tables, strict=True):
        assert sqlite_table == postgresql_table, (
            f"table {sqlite_table.name} differs between SQLite and PostgreSQL"
        )


# What the schema is


async def test_it_has_every_table_of_the_pack_with_an_id_and_utc_times(db: Database) -> None:
    schema = await describe_schema(db)
    assert PACK_TABLES | EXTRA_TABLES <= set(schema.table_names)
    assert not set(YOYO_TABLES) & set(schema.table_names)

    for table in schema.tables:
        primary_key = [c for c in table.columns if c.primary_key]
        assert primary_key == [Column("id", "BIGINT", True, True)], table.name
        assert table.column("created_at") == Column("created_at", "TIMESTAMPTZ", True, False)
        for column in table.columns:
            if column.name == "at" or column.name.endswith("_at"):
                assert column.type == "TIMESTAMPTZ", f"{table.name}.{column.name}"
        for fk in table.foreign_keys:
            assert table.column(fk.column).type == "BIGINT", f"{table.name}.{fk.column}"


async def test_it_stores_money_as_bigint_units(db: Database) -> None:
    schema = await describe_schema(db)
    for table, column in [
        ("budgets", "daily_limit"),
        ("budgets", "monthly_limit"),
        ("costs", "unit_price"),
        ("costs", "amount"),
    ]:
        assert schema.table(table).column(column).type == "BIGINT", f"{table}.{column}"


async def test_it_describes_keys_and_foreign_keys(db: Database) -> None:
    schema = await describe_schema(db)
    contacts = schema.table("contacts")
    assert contacts.column("id") == Column("id", "BIGINT", True, True)
    assert contacts.column("tags") == Column("tags", "JSONB", True, False)
    assert contacts.column("email") == Column("email", "TEXT", False, False)
    # The (tenant_id, lower(email)) index is not unique, so it is not a key.
    assert contacts.unique_keys == (UniqueKey(("tenant_id", "phone_e164")),)
    assert ForeignKey("tenant_id", "tenants", "id", "CASCADE") in contacts.foreign_keys
    assert (
        ForeignKey("last_import_batch_id", "import_batches", "id", "SET NULL")
        in contacts.foreign_keys
    )
    assert schema.table("sending_numbers").column("warmup_started_on").type == "DATE"
    assert schema.table("tenants").column("paused").type == "BOOLEAN"
    assert schema.table("tenants").column("cooldown_hours").type == "INTEGER"

    short_links = schema.table("short_links").unique_keys
    partial = [key for key in short_links if key.partial]
    assert partial == [
        UniqueKey(
            ("campaign_id", "contact_id"), "campaign_id IS NOT NULL AND contact_id IS NOT NULL"
        )
    ]


@pytest.mark.parametrize(
    ("sqlite_spelling", "postgresql_spelling", "normalised"),
    [
        (
            "idempotency_key IS NOT NULL",
            "(idempotency_key IS NOT NULL)",
            "idempotency_key IS NOT NULL",
        ),
        (
            "campaign_id IS NOT NULL\n    AND contact_id is not null",
            "((campaign_id IS NOT NULL) AND (contact_id IS NOT NULL))",
            "campaign_id IS NOT NULL AND contact_id IS NOT NULL",
        ),
        ("lower(email) <> ''", "(lower(email) <> ''::text)", "lower(email) <> ''"),
    ],
)
def test_it_spells_a_partial_index_condition_one_way_for_both_backends(
    sqlite_spelling: str, postgresql_spelling: str, normalised: str
) -> None:
    assert normalise_predicate(sqlite_spelling) == normalised
    assert normalise_predicate(postgresql_spelling) == normalised


def test_it_names_column_types_one_way_for_both_backends() -> None:
    assert normalise_type("timestamp with time zone") == normalise_type("TIMESTAMPTZ")
    assert normalise_type("timestamp with time zone") == "TIMESTAMPTZ"
    assert normalise_type("bigint") == "BIGINT"
    assert normalise_type("character varying") == "CHARACTER VARYING"  # unknown: kept, visible


# CHECK constraints: every enumerated list of pack §3 (and the migration's own), exactly.


@dataclass(frozen=True)
class Enumeration:
    table: str
    column: str
    values: tuple[str, ...]
    base: dict[str, Any] = field(default_factory=dict)  # what the row needs for every value

    @property
    def id(self) -> str:
        return f"{self.table}.{self.column}"


ENUMERATIONS = [
    Enumeration(
        "campaigns",
        "status",
        ("draft", "scheduled", "sending", "paused", "completed", "cancelled"),
    ),
    Enumeration(
        "send_jobs",
        "status",
        (
            "queued",
            "sending",
            "sent",
            "delivered",
            "undelivered",
            "failed",
            "skipped",
            "cancelled",
            "unknown",
        ),
    ),
    # Pack §7: the gates that defer a job, and `price_unknown` (a budget with no price).
    Enumeration(
        "send_jobs",
        "held_by",
        ("pause", "budget", "price_unknown", "quiet_hours", "rate_limit", "warmup"),
    ),
    Enumeration("send_jobs", "encoding", ("GSM-7", "UCS-2")),  # pack §8
    Enumeration(
        "events",
        "type",
        (
            "IMPORTED",
            "QUEUED",
            "SKIPPED",
            "SENT",
            "DELIVERED",
            "UNDELIVERED",
            "FAILED",
            "CLICKED",
            "REPLIED",
            "OPT_OUT",
            "RESUBSCRIBE",
            "HELP",
            "CANCELLED",
        ),
    ),
    Enumeration(
        "do_not_contact",
        "source",
        ("stop_keyword", "unsubscribe_link", "provider", "manual", "api"),
    ),
    Enumeration("suppression_rules", "kind", ("cooldown", "manual", "complaint", "bounce")),
    Enumeration("memberships", "role", ("admin", "staff", "viewer")),
    Enumeration("api_keys", "role", ("admin", "staff", "viewer")),
    Enumeration("import_batches", "status", ("dry_run", "committed")),
    Enumeration(
        "import_rows",
        "decision",
        ("invalid_phone", "duplicate", "dnc", "suppressed_by_cooldown", "update", "create"),
    ),  # pack §6
    Enumeration("outbox", "kind", ("sms", "email", "alert")),
    Enumeration("webhook_events", "kind", ("status", "inbound")),
    Enumeration("costs", "source", ("estimate", "provider")),
    # An alphanumeric sender ID is at most 11 characters, so the row holds one.
    Enumeration("sending_numbers", "kind", ("phone", "alphanumeric"), {"phone_e164": "DemoShop"}),
]


def is_check_violation(exc: BaseException) -> bool:
    if isinstance(exc, asyncpg.CheckViolationError):
        return True
    return isinstance(exc, sqlite3.IntegrityError) and "CHECK constraint failed" in str(exc)


async def checked_values(db: Database, table: str, column: str) -> set[str]:
    """The values a `column IN (...)` CHECK of `table` lists, read back from the catalog."""
    if db.dialect == "sqlite":
        sql = await db.val(
            Sql("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = :table"),
            table=table,
        )
        found = re.search(rf"\b{column}\s+IN\s*\(([^)]*)\)", sql)
    else:
        # PostgreSQL keeps `column IN (...)` as `column = ANY (ARRAY['a'::text, ...])`.
        definitions = await db.all(
            Sql(
                "SELECT pg_get_constraintdef(con.oid) AS definition FROM pg_constraint con"
                " JOIN pg_class c ON c.oid = con.conrelid"
                " WHERE c.relname = :table AND con.contype = 'c'"
            ),
            table=table,
        )
        text = "\n".join(row["definition"] for row in definitions)
        found = re.search(rf"\b{column} = ANY \(ARRAY\[([^\]]*)\]", text)
    assert found is not None, f"no CHECK lists the values of {table}.{column}"
    return set(re.findall(r"'([^']*)'", found.group(1)))


@pytest.mark.parametrize("enumeration", ENUMERATIONS, ids=[e.id for e in ENUMERATIONS])
async def test_it_checks_each_enumerated_column_against_exactly_its_list(
    db: Database, rows: Rows, enumeration: Enumeration
) -> None:
    assert await checked_values(db, enumeration.table, enumeration.column) == set(
        enumeration.values
    )

    tenant_id = await rows.tenant()
    row_id = await rows.add(enumeration.table, tenant_id, **enumeration.base)
    update = Sql(f"UPDATE {enumeration.table} SET {enumeration.column} = :value WHERE id = :id")

    for value in enumeration.values:
        assert await db.run(update, value=value, id=row_id) == 1, value

    for value in ("", "not_a_value", enumeration.values[0].swapcase()):
        with pytest.raises(IntegrityErrors) as caught:
            await db.run(update, value=value, id=row_id)
        assert is_check_violation(caught.value), f"{value!r}: {caught.value!r}"


# Foreign keys


async def test_it_enforces_foreign_keys(db: Database, rows: Rows) -> None:
    with pytest.raises(IntegrityErrors) as caught:
        await rows.add("contacts", 999_999)
    assert is_integrity_error(caught.value)
    assert isinstance(caught.value, asyncpg.ForeignKeyViolationError) or (
        "FOREIGN KEY constraint failed" in str(caught.value)
    ), repr(caught.value)

    tenant_id = await rows.tenant()
    await rows.add("contacts", tenant_id)


# Active suppression rules (docs/schema.md): no partial index can hold now(), so the lookup
# seeks (tenant_id, phone_e164) or (tenant_id, contact_id) and filters on expires_at.

ACTIVE_BY_PHONE = """
SELECT id FROM suppression_rules
WHERE tenant_id = :tenant_id AND phone_e164 = :phone
  AND (expires_at IS NULL OR expires_at > :now)
"""
ACTIVE_BY_CONTACT = """
SELECT id FROM suppression_rules
WHERE tenant_id = :tenant_id AND contact_id = :contact_id
  AND (expires_at IS NULL OR expires_at > :now)
"""


async def query_plan(db: Database, query: str, **params: Any) -> str:
    if db.dialect == "sqlite":
        plan = await db.all(Sql("EXPLAIN QUERY PLAN " + query), **params)
        return "\n".join(str(step["detail"]) for step in plan)
    # An empty table is cheapest to scan; forbid that to see which index the query can use.
    async with db.transaction() as tx:
        await tx.run(Sql("SET LOCAL enable_seqscan = off"))
        plan = await tx.all(Sql("EXPLAIN " + query), **params)
    return "\n".join(str(step["QUERY PLAN"]) for step in plan)


@pytest.mark.parametrize(
    ("query", "index", "key"),
    [
        (ACTIVE_BY_PHONE, "suppression_rules_active_phone", {"phone": PHONE}),
        (ACTIVE_BY_CONTACT, "suppression_rules_active_contact", {"contact_id": 1}),
    ],
    ids=["by_phone", "by_contact"],
)
async def test_it_serves_the_active_suppression_lookup_from_its_index(
    db: Database, clock: ManualClock, query: str, index: str, key: dict[str, Any]
) -> None:
    plan = await query_plan(db, query, tenant_id=1, now=clock.now(), **key)
    assert index in plan, plan


async def test_it_finds_only_active_suppression_rules_with_the_documented_query(
    rows: Rows, db: Database, clock: ManualClock
) -> None:
    tenant_id = await rows.tenant()
    other_tenant_id = await rows.tenant()
    forever = await rows.add("suppression_rules", tenant_id, expires_at=None)
    for_a_day = await rows.add(
        "suppression_rules", tenant_id, expires_at=clock.now() + timedelta(days=1)
    )
    await rows.add("suppression_rules", tenant_id, expires_at=clock.now() - timedelta(seconds=1))
    await rows.add("suppression_rules", tenant_id, phone_e164="+61400000002", expires_at=None)
    await rows.add("suppression_rules", other_tenant_id, expires_at=None)

    async def active() -> set[int]:
        found = await db.all(
            Sql(ACTIVE_BY_PHONE), tenant_id=tenant_id, phone=PHONE, now=clock.now()
        )
        return {row["id"] for row in found}

    assert await active() == {forever, for_a_day}
    clock.advance(days=1)  # expires_at is exclusive: at that instant the rule has expired
    assert await active() == {forever}


# Data migrations

REDO_ONE = """
import sys
from pathlib import Path
from yoyo import get_backend, read_migrations
from smsapp.config import parse_database_url
from smsapp.db.migrate import MIGRATIONS_DIR, yoyo_url
url = parse_database_url(sys.argv[1], Path('.'))
backend = get_backend(yoyo_url(url))
migrations = read_migrations(str(MIGRATIONS_DIR))
try:
    with backend.lock():
        one = migrations.filter(lambda m: m.id == sys.argv[2])
        backend.rollback_migrations(backend.to_rollback(one))
        if sys.argv[3] == "redo":
            backend.apply_migrations(backend.to_apply(migrations))
finally:
    backend.connection.close()
"""


def redo_migration(url: DatabaseUrl, migration_id: str, *, apply_again: bool = True) -> None:
    """Roll `migration_id` (and those after it) back and apply them again, in a fresh
    interpreter (see `in_child_process`): its data step runs over the rows already there.
    `apply_again=False`: roll back only."""
    done = subprocess.run(
        [sys.executable, "-c", REDO_ONE, url.url, migration_id,
         "redo" if apply_again else "rollback"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


async def test_0007_sets_each_links_last_hit_time_from_its_hits(
    database_url: DatabaseUrl, clock: ManualClock
) -> None:
    db = await open_database(database_url)
    try:
        tenant_id = await db.val(
            Sql(
                "INSERT INTO tenants (name, slug, created_at, updated_at)"
                " VALUES ('Acme', 'acme', :now, :now) RETURNING id"
            ),
            now=clock.now(),
        )
        add_link = Sql(
            "INSERT INTO short_links (token, tenant_id, target_url, expires_at, created_at,"
            " updated_at) VALUES (:token, :t, 'https://shop.example/', :e, :now, :now)"
            " RETURNING id"
        )
        expires = clock.now() + timedelta(days=60)
        hit = await db.val(add_link, token="Hitlink001", t=tenant_id, e=expires, now=clock.now())
        quiet = await db.val(add_link, token="Quietlink1", t=tenant_id, e=expires, now=clock.now())
        for seconds in (30, 5, 90, 60):
            await db.run(
                Sql(
                    "INSERT INTO short_link_hits (short_link_id, tenant_id, at, is_bot,"
                    " user_agent, ip_hash, method, created_at)"
                    " VALUES (:l, :t, :at, FALSE, 'x', 'h', 'GET', :at)"
                ),
                l=hit, t=tenant_id, at=clock.now() + timedelta(seconds=seconds),
            )  # fmt: skip
    finally:
        await db.close()

    redo_migration(database_url, "0007_link_last_hit")

    db = await open_database(database_url)
    try:
        last = Sql("SELECT last_hit_at FROM short_links WHERE id = :id")
        assert await db.val(last, id=hit) == clock.now() + timedelta(seconds=90)
        assert await db.val(last, id=quiet) is None
    finally:
        await db.close()


async def test_0009_keeps_every_hit_and_a_tenants_hits_still_go_with_it(
    database_url: DatabaseUrl, clock: ManualClock
) -> None:
    db = await open_database(database_url)
    try:
        add_tenant = Sql(
            "INSERT INTO tenants (name, slug, created_at, updated_at)"
            " VALUES (:slug, :slug, :now, :now) RETURNING id"
        )
        kept = await db.val(add_tenant, slug="kept", now=clock.now())
        gone = await db.val(add_tenant, slug="gone", now=clock.now())
        add_link = Sql(
            "INSERT INTO short_links (token, tenant_id, target_url, expires_at, created_at,"
            " updated_at) VALUES (:token, :t, 'https://shop.example/', :e, :now, :now)"
            " RETURNING id"
        )
        expires = clock.now() + timedelta(days=60)
        links = {
            kept: await db.val(add_link, token="Keptlink01", t=kept, e=expires, now=clock.now()),
            gone: await db.val(add_link, token="Gonelink01", t=gone, e=expires, now=clock.now()),
        }
        for n, tenant_id in enumerate((kept, gone, kept)):
            await db.run(
                Sql(
                    "INSERT INTO short_link_hits (short_link_id, tenant_id, at, is_bot, reason,"
                    " user_agent, ip_hash, method, created_at)"
                    " VALUES (:l, :t, :at, :bot, :reason, 'Agent', 'h', 'GET', :at)"
                ),
                l=links[tenant_id], t=tenant_id, at=clock.now() + timedelta(seconds=n),
                bot=n == 1, reason="burst" if n == 1 else None,
            )  # fmt: skip
        every_hit = Sql("SELECT * FROM short_link_hits ORDER BY id")
        before = await db.all(every_hit)
    finally:
        await db.close()

    redo_migration(database_url, "0009_hits_tenant_without_fk")

    db = await open_database(database_url)
    try:
        assert await db.all(every_hit) == before
        hits = (await describe_schema(db)).table("short_link_hits")
        assert hits.foreign_keys == (ForeignKey("short_link_id", "short_links", "id", "CASCADE"),)
        await db.run(Sql("DELETE FROM tenants WHERE id = :id"), id=gone)
        left = await db.all(Sql("SELECT tenant_id FROM short_link_hits"))
        assert [row["tenant_id"] for row in left] == [kept, kept]
    finally:
        await db.close()


async def test_0010_gives_links_pages_room_on_postgresql_and_rolls_back_to_the_default(
    database_url: DatabaseUrl,
) -> None:
    async def links_storage() -> tuple[Any, Schema]:
        db = await open_database(database_url)
        try:
            options = None
            if db.dialect == "postgresql":
                options = await db.val(
                    Sql("SELECT reloptions FROM pg_class WHERE oid = 'short_links'::regclass")
                )
            return options, await describe_schema(db)
        finally:
            await db.close()

    applied_options, applied_schema = await links_storage()
    redo_migration(database_url, "0010_short_links_room_for_counters", apply_again=False)
    rolled_back_options, rolled_back_schema = await links_storage()
    redo_migration(database_url, "0010_short_links_room_for_counters")
    again_options, again_schema = await links_storage()

    if database_url.dialect == "postgresql":
        assert applied_options == again_options == ["fillfactor=70"]
        assert rolled_back_options is None
    else:  # SQLite has no such setting: the migration changes nothing there
        assert applied_options is rolled_back_options is again_options is None
    assert applied_schema == rolled_back_schema == again_schema


async def test_0011_adds_the_indexes_of_a_campaigns_links_and_a_jobs_costs_and_rolls_back(
    database_url: DatabaseUrl,
) -> None:
    added = {"short_links_campaign", "costs_send_job"}

    applied = await index_names(database_url)
    redo_migration(database_url, "0011_indexes_for_campaign_links_and_job_costs", apply_again=False)
    rolled_back = await index_names(database_url)
    redo_migration(database_url, "0011_indexes_for_campaign_links_and_job_costs")

    assert added <= applied
    assert rolled_back == applied - added
    assert await index_names(database_url) == applied


async def test_0012_indexes_hits_by_link_alone_and_rolls_back_to_link_and_time(
    database_url: DatabaseUrl,
) -> None:
    applied = await index_names(database_url)
    redo_migration(database_url, "0012_hits_index_by_link", apply_again=False)
    rolled_back = await index_names(database_url)
    redo_migration(database_url, "0012_hits_index_by_link")

    assert "short_link_hits_link" in applied and "short_link_hits_link_time" not in applied
    assert rolled_back == applied - {"short_link_hits_link"} | {"short_link_hits_link_time"}
    assert await index_names(database_url) == applied
    db = await open_database(database_url)
    try:
        columns = await index_columns(db, "short_link_hits_link")
    finally:
        await db.close()
    assert columns == ["short_link_id"]


async def test_0013_gives_callbacks_stored_before_it_their_message_id_from_their_payload(
    database_url: DatabaseUrl, clock: ManualClock
) -> None:
    redo_migration(database_url, "0013_webhook_events_message_id", apply_again=False)
    db = await open_database(database_url)
    try:
        for provider, key, payload in (
            ("twilio", "SM1:delivered", {"MessageSid": "SM1", "To": "+61412345678"}),
            ("sandbox", "msg_2", {"message_id": "SB2", "to": "+61412345678"}),
            ("twilio", "token-3", {"AccountSid": "AC1"}),
        ):
            await db.run(
                Sql(
                    "INSERT INTO webhook_events (provider, provider_event_id, kind, payload,"
                    " received_at, created_at) VALUES (:p, :k, 'status', :payload, :now, :now)"
                ),
                p=provider, k=key, payload=payload, now=clock.now(),
            )  # fmt: skip
    finally:
        await db.close()

    in_child_process(database_url, "apply_migrations")

    db = await open_database(database_url)
    try:
        rows = await db.all(
            Sql("SELECT provider_event_id, message_id FROM webhook_events ORDER BY id")
        )
    finally:
        await db.close()
    assert [(r["provider_event_id"], r["message_id"]) for r in rows] == [
        ("SM1:delivered", "SM1"), ("msg_2", "SB2"), ("token-3", None),
    ]  # fmt: skip
    assert "webhook_events_message" in await index_names(database_url)


async def index_names(url: DatabaseUrl) -> set[str]:
    db = await open_database(url)
    try:
        if db.dialect == "sqlite":
            query = "SELECT name FROM sqlite_master WHERE type = 'index'"
        else:
            query = "SELECT indexname AS name FROM pg_indexes WHERE schemaname = current_schema()"
        return {str(row["name"]) for row in await db.all(Sql(query))}
    finally:
        await db.close()


async def index_columns(db: Database, index: str) -> list[str]:
    """The columns of `index`, in key order."""
    if db.dialect == "sqlite":
        rows = await db.all(
            Sql("SELECT name FROM pragma_index_info(:index) ORDER BY seqno"), index=index
        )
    else:
        rows = await db.all(
            Sql(
                "SELECT a.attname AS name FROM pg_index i"
                " JOIN pg_class c ON c.oid = i.indexrelid"
                " JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n) ON true"
                " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum"
                " WHERE c.relname = :index ORDER BY k.n"
            ),
            index=index,
        )
    return [str(row["name"]) for row in rows]
