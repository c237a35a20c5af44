"""What the live database's schema is, the same way on SQLite and PostgreSQL.

`describe_schema` reads the catalog (queries in `smsapp/queries/schema.sql`) and returns plain
frozen dataclasses, so that two schemas compare with `==` (tests/test_migrations.py checks the
two backends build the same one) and the ERD (smsapp.db.erd) renders the same bytes from
either. Each backend's way of describing things is normalised to one vocabulary: the types the
migrations declare (BIGINT, INTEGER, TEXT, BOOLEAN, TIMESTAMPTZ, DATE, JSONB) and one spelling
of a partial index's condition.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from smsapp.db import Database, Row
from smsapp.db.migrate import YOYO_TABLES

# The name given to a unique key's part that is an expression rather than a column.
EXPRESSION = "<expression>"

# Declared (SQLite) and reported (PostgreSQL) type names, lower-case, to the migrations' names.
_TYPES = {
    "bigint": "BIGINT",
    "int8": "BIGINT",
    "integer": "INTEGER",
    "int": "INTEGER",
    "int4": "INTEGER",
    "text": "TEXT",
    "boolean": "BOOLEAN",
    "bool": "BOOLEAN",
    "timestamptz": "TIMESTAMPTZ",
    "timestamp with time zone": "TIMESTAMPTZ",
    "date": "DATE",
    "jsonb": "JSONB",
}


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # normalised, see normalise_type
    not_null: bool
    primary_key: bool


@dataclass(frozen=True)
class UniqueKey:
    columns: tuple[str, ...]  # in index order
    where: str | None = None  # a partial unique index's condition, normalised

    @property
    def partial(self) -> bool:
        return self.where is not None


@dataclass(frozen=True)
class ForeignKey:
    column: str
    ref_table: str
    ref_column: str
    on_delete: str  # NO ACTION, RESTRICT, CASCADE, SET NULL or SET DEFAULT


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]  # in declaration order
    unique_keys: tuple[UniqueKey, ...]  # sorted
    foreign_keys: tuple[ForeignKey, ...]  # sorted

    def column(self, name: str) -> Column:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(f"table {self.name} has no column {name!r}")

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)


@dataclass(frozen=True)
class Schema:
    tables: tuple[Table, ...]  # sorted by name

    def table(self, name: str) -> Table:
        for table in self.tables:
            if table.name == name:
                return table
        raise KeyError(f"the schema has no table {name!r}")

    @property
    def table_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.tables)


async def describe_schema(db: Database) -> Schema:
    """The live schema: every table except yoyo's bookkeeping, with columns and keys."""
    column_rows = _without_yoyo(await db.all("schema.columns"))
    unique_rows = _without_yoyo(await db.all("schema.unique_keys"))
    foreign_rows = _without_yoyo(await db.all("schema.foreign_keys"))

    columns = _columns(column_rows, sqlite=db.dialect == "sqlite")
    primary_keys = {
        table: [c.name for c in table_columns if c.primary_key]
        for table, table_columns in columns.items()
    }
    unique_keys = _unique_keys(unique_rows)
    foreign_keys = _foreign_keys(foreign_rows, primary_keys)

    tables = [
        Table(
            name=name,
            columns=tuple(columns[name]),
            unique_keys=tuple(sorted(unique_keys.get(name, set()), key=_unique_key_order)),
            foreign_keys=tuple(sorted(foreign_keys.get(name, []), key=_foreign_key_order)),
        )
        for name in sorted(columns)
    ]
    return Schema(tuple(tables))


def normalise_type(declared: str) -> str:
    """`timestamp with time zone` and `TIMESTAMPTZ` → `TIMESTAMPTZ`; unknown types upper-cased
    (so a type the two backends name differently shows up as a difference, not as a crash)."""
    key = " ".join(declared.lower().split())
    return _TYPES.get(key, key.upper())


# String literals, PostgreSQL casts, words, two-character operators, any other character.
_PREDICATE_TOKEN = re.compile(
    r"'(?:[^']|'')*'|::\s*[A-Za-z_][A-Za-z0-9_]*|[A-Za-z_][A-Za-z0-9_]*|<>|<=|>=|!=|\|\||\S"
)
_KEYWORDS = frozenset({"AND", "OR", "NOT", "IS", "NULL", "TRUE", "FALSE", "IN", "LIKE"})


def normalise_predicate(sql: str) -> str:
    """One spelling of a partial index's WHERE condition for both backends.

    PostgreSQL prints `((campaign_id IS NOT NULL) AND (contact_id IS NOT NULL))` for what the
    migration (and so SQLite) spells `campaign_id IS NOT NULL AND contact_id IS NOT NULL`.
    This drops grouping parentheses (not a function call's), drops `::type` casts, upper-cases
    keywords and collapses spaces. Dropping grouping is lossy (`(a OR b) AND c`), which is fine
    for a comparison key made from the same migration text on both sides.
    """
    out: list[str] = []
    call_parens: list[bool] = []  # for each open parenthesis: does it belong to a call?
    for part in _PREDICATE_TOKEN.findall(sql):
        if part.startswith("::"):
            continue
        if part == "(":
            previous = out[-1] if out else ""
            is_call = _is_word(previous) and previous.upper() not in _KEYWORDS
            call_parens.append(is_call)
            if is_call:
                out.append(part)
            continue
        if part == ")":
            if call_parens and call_parens.pop():
                out.append(part)
            continue
        if part.upper() in _KEYWORDS:
            part = part.upper()
        out.append(part)
    text = ""
    for part in out:
        # Only a call's parentheses are left: `lower(email)`, `f(a, b)`.
        if text and not text.endswith("(") and part not in ("(", ")", ","):
            text += " "
        text += part
    return text


def _is_word(token: str) -> bool:
    return bool(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", token))


def _without_yoyo(rows: list[Row]) -> list[Row]:
    return [r for r in rows if r["table_name"] not in YOYO_TABLES]


def _columns(rows: Iterable[Row], *, sqlite: bool) -> dict[str, list[Column]]:
    by_table: dict[str, list[Row]] = {}
    for row in rows:
        by_table.setdefault(row["table_name"], []).append(row)

    tables: dict[str, list[Column]] = {}
    for table, table_rows in by_table.items():
        pk_count = sum(1 for r in table_rows if r["primary_key"])
        columns = []
        for row in sorted(table_rows, key=lambda r: int(r["position"])):
            data_type = normalise_type(row["data_type"])
            not_null = bool(row["not_null"])
            primary_key = bool(row["primary_key"])
            if sqlite and primary_key and pk_count == 1 and data_type == "INTEGER":
                # SQLite's `INTEGER PRIMARY KEY` is the 64-bit rowid, never NULL: the same key
                # as PostgreSQL's `BIGINT ... IDENTITY PRIMARY KEY` (smsapp.db.migrate).
                data_type = "BIGINT"
                not_null = True
            columns.append(Column(row["column_name"], data_type, not_null, primary_key))
        tables[table] = columns
    return tables


def _unique_keys(rows: Iterable[Row]) -> dict[str, set[UniqueKey]]:
    by_index: dict[tuple[str, str], list[Row]] = {}
    for row in rows:
        by_index.setdefault((row["table_name"], row["index_name"]), []).append(row)

    keys: dict[str, set[UniqueKey]] = {}
    for (table, _index), index_rows in by_index.items():
        index_rows.sort(key=lambda r: int(r["position"]))
        columns = tuple(r["column_name"] or EXPRESSION for r in index_rows)
        first = index_rows[0]
        where = None
        if first["partial"]:
            where = normalise_predicate(_predicate_of(first))
        # A set: a UNIQUE constraint and a unique index on the same columns are one key.
        keys.setdefault(table, set()).add(UniqueKey(columns, where))
    return keys


def _predicate_of(row: Row) -> str:
    if "predicate" in row:  # PostgreSQL renders the condition itself
        return str(row["predicate"])
    # SQLite keeps the CREATE INDEX statement as written; the condition follows WHERE.
    match = re.search(r"\bWHERE\b(.*)\Z", str(row["index_sql"]), re.IGNORECASE | re.DOTALL)
    if match is None:
        raise ValueError(f"cannot find the WHERE clause of partial index {row['index_name']}")
    return match.group(1)


def _foreign_keys(
    rows: Iterable[Row], primary_keys: dict[str, list[str]]
) -> dict[str, list[ForeignKey]]:
    by_key: dict[tuple[str, str], list[Row]] = {}
    for row in rows:
        by_key.setdefault((row["table_name"], str(row["fk_id"])), []).append(row)

    keys: dict[str, list[ForeignKey]] = {}
    for (table, _fk_id), key_rows in by_key.items():
        if len(key_rows) != 1:
            columns = ", ".join(r["column_name"] for r in key_rows)
            raise ValueError(
                f"{table} ({columns}): multi-column foreign keys are not described yet; "
                "extend smsapp.db.schema (and the ERD) before adding one"
            )
        row = key_rows[0]
        ref_column = row["ref_column"]
        if ref_column is None:  # SQLite: `REFERENCES parent` means the parent's primary key
            ref_column = primary_keys[row["ref_table"]][0]
        keys.setdefault(table, []).append(
            ForeignKey(row["column_name"], row["ref_table"], ref_column, row["on_delete"])
        )
    return keys


def _unique_key_order(key: UniqueKey) -> tuple[tuple[str, ...], str]:
    return key.columns, key.where or ""


def _foreign_key_order(key: ForeignKey) -> tuple[str, str, str]:
    return key.column, key.ref_table, key.ref_column
