"""Every named query (smsapp/queries/*.sql) reads only the rows it needs: no table is read whole
unless the query is declared below with why that is fine. Hits, links, jobs, costs and events
grow with every campaign, and a whole read of one of them costs more each day (the SQLite fold
once read every hit ever stored, twice a fold, through an index chosen to skip a sort).

SQLite: the plan of `EXPLAIN QUERY PLAN`, run on the schema the migrations build (SQLite plans
from the schema alone: the app keeps no statistics). PostgreSQL: `EXPLAIN (FORMAT JSON)` with
sequential scans disabled, so that a table read whole shows only where no index can serve the
query; parameters get sample values of the types PostgreSQL infers for them."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg

from smsapp.config import DatabaseUrl
from smsapp.db import Database, Sql
from smsapp.db.queries import compile_sql, query_book

# Queries that read a table whole, and why that stays cheap.
READS_A_TABLE_WHOLE = {
    "admin.tenants_with_members": "the platform admin's list of every tenant",
    "campaigns.due_scheduled": "campaigns: a tenant has tens to hundreds; once a minute",
    "campaigns.unfinished_queues": "campaigns, at start-up",
    "health.applied_migrations": "the migrations table",
    "hit_journal.home": "one row",
    "people.delete_expired_sessions": "the periodic purge of sessions that have ended",
    "people.forget_login_requests": "the periodic purge of old login requests",
    "schema.columns": "the catalogue",
    "schema.foreign_keys": "the catalogue",
    "schema.unique_keys": "the catalogue",
    "sender.complete_campaigns": "campaigns that are sending: a handful",
    "sender.due_tenants": "tenants, once a send round",
    "sending_numbers.sender_id_holder": "a few numbers per tenant",
    "short_links.tenant_short_hosts": "tenants, every few seconds",
}


def named_queries(dialect: str) -> Iterator[tuple[str, str]]:
    book = query_book()
    for name in book.names():
        try:
            yield name, compile_sql(book.text(name, dialect), dialect).text  # type: ignore[arg-type]
        except KeyError:
            continue  # a query of the other dialect only


# --- SQLite -------------------------------------------------------------------------------------

_TABLE_ALIAS = re.compile(r"\b(?:FROM|JOIN|UPDATE|INTO)\s+(\w+)(?:\s+(?:AS\s+)?([a-z_]\w*))?")


_PARAMETER = re.compile(r"'(?:[^']|'')*'|::|:([A-Za-z_]\w*)")  # strings and casts are not


def _any_parameters(sql: str) -> dict[str, int]:
    """Every named parameter 1: SQLite's plan does not depend on the values."""
    return {name: 1 for name in _PARAMETER.findall(sql) if name}


async def sqlite_tables(db: Database) -> set[str]:
    rows = await db.all(Sql("SELECT name FROM sqlite_master WHERE type = 'table'"))
    return {str(row["name"]) for row in rows}


async def sqlite_whole_reads(db: Database, sql: str, tables: set[str]) -> set[str]:
    """The tables `sql` reads whole: a SCAN (of the table, or all of one of its indexes) of a
    name that is a table or one's alias here, rather than a CTE or subquery.

    An INSERT's plan also shows a scan of each table whose foreign key refers to the table
    written, without an index to find the rows: SQLite runs those only while some foreign key
    is violated (OP_FkIfZero skips them), which never lasts past a statement here (no key is
    deferred). So for an INSERT only the names the statement gives its tables count (a table
    it reads under an alias as well as refers to shows under both). A DELETE's scans of the
    rows that refer to it do run: for a DELETE every table counts."""
    named = [(table, alias) for table, alias in _TABLE_ALIAS.findall(sql) if table in tables]
    aliases = {alias or table: table for table, alias in named}
    if not sql.lstrip().upper().startswith("INSERT"):
        aliases.update({table: table for table in tables})
    plan = await db.all(Sql("EXPLAIN QUERY PLAN " + sql), **_any_parameters(sql))
    whole = set()
    for step in plan:
        scan = re.match(r"SCAN (\w+)", str(step["detail"]))
        if scan and scan.group(1) in aliases:
            whole.add(aliases[scan.group(1)])
    return whole


# --- PostgreSQL ---------------------------------------------------------------------------------

# A text parameter's sample is "[]": valid JSON too, for the text the fold casts to jsonb.
_SAMPLES: dict[str, Any] = {
    "int2": 1, "int4": 1, "int8": 1, "numeric": Decimal(1), "float8": 1.0,
    "text": "[]", "varchar": "x", "bpchar": "x", "name": "x", "bool": False,
    "timestamptz": datetime(2026, 1, 5, tzinfo=UTC), "date": date(2026, 1, 5),
    "interval": timedelta(seconds=1), "jsonb": "{}", "json": "{}", "uuid": uuid.UUID(int=1),
}  # fmt: skip


def _sample(parameter: Any) -> Any:
    array = parameter.kind == "array"  # named after its element: int8[]
    name = parameter.name.removesuffix("[]") if array else parameter.name
    if name not in _SAMPLES:
        raise AssertionError(f"no sample value for a parameter of type {parameter.name}")
    return [_SAMPLES[name]] if array else _SAMPLES[name]


def _plan_nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", []):
        yield from _plan_nodes(child)


async def postgresql_whole_reads(conn: asyncpg.Connection, sql: str) -> set[str]:
    """The tables `sql` reads whole: a sequential scan, with those disabled, is where no index
    can serve the query. (A scan of a whole index is not counted: on the near-empty tables of
    a test, PostgreSQL may merge-join along a primary key where real tables would look rows
    up one by one.)"""
    async with conn.transaction():
        await conn.execute("SET LOCAL enable_seqscan = off")
        statement = await conn.prepare("EXPLAIN (FORMAT JSON) " + sql)
        values = [_sample(p) for p in statement.get_parameters()]
        [plan] = json.loads(await statement.fetchval(*values))
    whole = set()
    for node in _plan_nodes(plan["Plan"]):
        if node["Node Type"] == "Seq Scan":
            whole.add(node["Relation Name"])
    return whole


# --- The test -----------------------------------------------------------------------------------


async def whole_reads(db: Database, database_url: DatabaseUrl) -> dict[str, set[str]]:
    """Query name → the tables its plan reads whole, for every query that reads one."""
    found: dict[str, set[str]] = {}
    if db.dialect == "sqlite":
        tables = await sqlite_tables(db)
        for name, sql in named_queries("sqlite"):
            if whole := await sqlite_whole_reads(db, sql, tables):
                found[name] = whole
        return found
    conn = await asyncpg.connect(database_url.url)
    try:
        for name, sql in named_queries("postgresql"):
            if whole := await postgresql_whole_reads(conn, sql):
                found[name] = whole
    finally:
        await conn.close()
    return found


async def test_it_reads_no_table_whole_but_where_a_query_says_why(
    db: Database, database_url: DatabaseUrl
) -> None:
    found = await whole_reads(db, database_url)
    undeclared = {name: tables for name, tables in found.items() if name not in READS_A_TABLE_WHOLE}
    assert undeclared == {}, f"queries reading a table whole: {undeclared}"


async def test_it_catches_a_query_that_reads_a_growing_table_whole(
    db: Database, database_url: DatabaseUrl
) -> None:
    # The fold's counts as they were: grouped by link, SQLite read the hits' whole index.
    sql = (
        "SELECT short_link_id, count(*) AS total FROM short_link_hits "
        "WHERE id > :before GROUP BY short_link_id"
    )
    if db.dialect == "sqlite":
        whole = await sqlite_whole_reads(db, sql, await sqlite_tables(db))
        assert whole == {"short_link_hits"}
        fixed = sql.replace("short_link_hits ", "short_link_hits NOT INDEXED ")
        assert await sqlite_whole_reads(db, fixed, {"short_link_hits"}) == set()
    else:
        conn = await asyncpg.connect(database_url.url)
        try:
            by_token = "SELECT id FROM short_links WHERE target_url = $1"  # no index on it
            assert await postgresql_whole_reads(conn, by_token) == {"short_links"}
            by_id = "SELECT id FROM short_links WHERE id = $1"
            assert await postgresql_whole_reads(conn, by_id) == set()
        finally:
            await conn.close()


def test_it_declares_only_queries_that_exist() -> None:
    assert set(READS_A_TABLE_WHOLE) <= set(query_book().names())
