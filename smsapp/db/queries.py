"""Named SQL, kept in `smsapp/queries/<area>.sql` and loaded once.

A file holds blocks headed `-- name: <query>`; a block headed `-- name: <query> [postgresql]`
or `[sqlite]` is that backend's own text, for the few places where the dialects differ
(`FOR UPDATE SKIP LOCKED`, array parameters). Queries are addressed as `<area>.<query>`.
Parameters are written `:name` for both backends; for asyncpg they are compiled to `$n` once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

Dialect = Literal["sqlite", "postgresql"]

QUERIES_DIR = Path(__file__).resolve().parent.parent / "queries"

_HEADER = re.compile(r"^--\s*name:\s*([a-z_][a-z0-9_]*)\s*(?:\[(sqlite|postgresql)\])?\s*$")
# `:name` but not PostgreSQL's `::type` cast; string literals are skipped by the tokenizer below.
_TOKENS = re.compile(r"'(?:[^']|'')*'|::|:([A-Za-z_][A-Za-z0-9_]*)")


@dataclass(frozen=True)
class Sql:
    """Raw SQL with `:name` parameters, for the rare query that is not worth naming."""

    text: str


@dataclass(frozen=True)
class Compiled:
    text: str
    params: tuple[str, ...]  # parameter names in `$n` order (PostgreSQL); empty for SQLite


@cache
def compile_sql(text: str, dialect: Dialect) -> Compiled:
    if dialect == "sqlite":
        return Compiled(text, ())
    order: list[str] = []

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return match.group(0)
        if name not in order:
            order.append(name)
        return f"${order.index(name) + 1}"

    return Compiled(_TOKENS.sub(replace, text), tuple(order))


class QueryBook:
    """All named queries of the app, by `area.name`, each with its text per dialect."""

    def __init__(self, queries: dict[str, dict[str, str]]) -> None:
        self._queries = queries

    @classmethod
    def load(cls, directory: Path = QUERIES_DIR) -> QueryBook:
        queries: dict[str, dict[str, str]] = {}
        for path in sorted(directory.glob("*.sql")):
            area = path.stem
            for name, dialect, text in _parse(path):
                key = f"{area}.{name}"
                variants = queries.setdefault(key, {})
                slot = dialect or "*"
                if slot in variants:
                    raise ValueError(f"{path}: query {name!r} is defined twice")
                variants[slot] = text
        return cls(queries)

    def text(self, name: str, dialect: Dialect) -> str:
        try:
            variants = self._queries[name]
        except KeyError:
            raise KeyError(f"no query named {name!r} in {QUERIES_DIR}") from None
        text = variants.get(dialect) or variants.get("*")
        if text is None:
            raise KeyError(f"query {name!r} has no text for {dialect}")
        return text

    def names(self) -> list[str]:
        return sorted(self._queries)


def _parse(path: Path) -> list[tuple[str, str | None, str]]:
    blocks: list[tuple[str, str | None, str]] = []
    name: str | None = None
    dialect: str | None = None
    lines: list[str] = []

    def flush() -> None:
        if name is not None:
            text = "\n".join(lines).strip().rstrip(";").strip()
            if not text:
                raise ValueError(f"{path}: query {name!r} is empty")
            blocks.append((name, dialect, text))

    for raw in path.read_text(encoding="utf-8").splitlines():
        header = _HEADER.match(raw.strip())
        if header:
            flush()
            name, dialect, lines = header.group(1), header.group(2), []
        elif name is not None:
            lines.append(raw)
        elif raw.strip() and not raw.strip().startswith("--"):
            raise ValueError(f"{path}: SQL before the first '-- name:' header")
    flush()
    return blocks


@cache
def query_book() -> QueryBook:
    return QueryBook.load()
