"""The `smsapp` command line (pack §17), driven in-process through `smsapp.cli.main`."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from smsapp.app import create_app
from smsapp.cli import main
from smsapp.config import DatabaseUrl, Settings
from smsapp.db import Row, Sql, open_database
from tests.conftest import FreshDatabases
from tests.support_env import is_config_name

SEEDED_TABLES = ("tenants", "message_templates", "sending_numbers", "users", "memberships")


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    @property
    def last_line(self) -> str:
        return self.out.rstrip("\n").splitlines()[-1]


class Cli:
    """Runs `smsapp ARGS` in this process, against one database, and captures its output."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
        self._monkeypatch = monkeypatch
        self._capsys = capsys

    def use(self, url: DatabaseUrl | str) -> None:
        self._monkeypatch.setenv("DATABASE_URL", url if isinstance(url, str) else url.url)

    def __call__(self, *args: str) -> CliResult:
        self._capsys.readouterr()
        code = main(list(args))
        captured = self._capsys.readouterr()
        return CliResult(code, captured.out, captured.err)


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """`main` points the root logger at the stderr of the moment; put it back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


@pytest.fixture
def cli(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    restore_logging: None,
) -> Cli:
    """A clean configuration: development, data dir in tmp_path, no DATABASE_URL yet."""
    for name in list(os.environ):
        if is_config_name(name):
            monkeypatch.delenv(name)
    monkeypatch.setenv("SMSAPP_DATA_DIR", str(tmp_path / "cli-data"))
    return Cli(monkeypatch, capsys)


async def _dump(url: DatabaseUrl, tables: tuple[str, ...]) -> dict[str, list[Row]]:
    db = await open_database(url)
    try:
        return {t: await db.all(Sql(f"SELECT * FROM {t} ORDER BY id")) for t in tables}
    finally:
        await db.close()


def dump(url: DatabaseUrl, *tables: str) -> dict[str, list[Row]]:
    return asyncio.run(_dump(url, tables))


async def _query(url: DatabaseUrl, sql: str, params: dict[str, Any]) -> list[Row]:
    db = await open_database(url)
    try:
        return await db.all(Sql(sql), **params)
    finally:
        await db.close()


def query(url: DatabaseUrl, sql: str, **params: Any) -> list[Row]:
    return asyncio.run(_query(url, sql, params))


def memberships_of(url: DatabaseUrl, email: str) -> list[Row]:
    return query(
        url,
        "SELECT u.email, u.is_operator, t.slug, m.role FROM memberships m "
        "JOIN users u ON u.id = m.user_id JOIN tenants t ON t.id = m.tenant_id "
        "WHERE u.email = :email ORDER BY t.slug",
        email=email,
    )


def test_it_migrates_an_empty_database_and_then_has_nothing_to_apply(
    cli: Cli, backend: str, fresh_databases: FreshDatabases
) -> None:
    cli.use(fresh_databases.make(backend, migrated=False))
    first = cli("migrate")
    assert first.code == 0, first.err
    assert first.out.startswith("applied ")
    assert "0001_initial_schema" in first.out
    assert first.out.split()[1] != "0"
    second = cli("migrate")
    assert second.code == 0, second.err
    assert second.out.strip() == "applied 0 migration(s)"


def test_it_refuses_to_write_the_erd_of_a_database_with_migrations_pending(
    cli: Cli, backend: str, fresh_databases: FreshDatabases, tmp_path: Path
) -> None:
    cli.use(fresh_databases.make(backend, migrated=False))
    output = tmp_path / "erd.md"
    refused = cli("erd", "--output", str(output))
    assert refused.code == 1
    assert "pending" in refused.err and "smsapp migrate" in refused.err
    assert not output.exists()
    assert cli("migrate").code == 0
    written = cli("erd", "--output", str(output))
    assert written.code == 0, written.err
    assert "short_link_hits {" in output.read_text()


def test_it_seeds_the_demo_tenant_and_a_second_seed_changes_nothing(
    cli: Cli, database_url: DatabaseUrl
) -> None:
    cli.use(database_url)
    first = cli("seed", "--admin-email", "Owner@Example.com")
    assert first.code == 0, first.err
    assert "seeded tenant demo" in first.out
    before = dump(database_url, *SEEDED_TABLES)

    second = cli("seed", "--admin-email", "Owner@Example.com")
    assert second.code == 0, second.err
    assert dump(database_url, *SEEDED_TABLES) == before

    assert [t["slug"] for t in before["tenants"]] == ["demo"]
    demo_id = before["tenants"][0]["id"]
    templates = before["message_templates"]
    assert len(templates) == 3
    assert {t["tenant_id"] for t in templates} == {demo_id}
    assert [(n["tenant_id"], n["phone_e164"], n["kind"]) for n in before["sending_numbers"]] == [
        (demo_id, "+61400000000", "phone")
    ]
    assert memberships_of(database_url, "owner@example.com") == [
        {"email": "owner@example.com", "is_operator": False, "slug": "demo", "role": "admin"}
    ]


def test_it_creates_a_tenant_and_refuses_a_duplicate_slug(
    cli: Cli, database_url: DatabaseUrl
) -> None:
    cli.use(database_url)
    created = cli("tenant", "create", "--name", "Acme Pty Ltd", "--slug", "acme")
    assert created.code == 0, created.err
    assert "created tenant acme" in created.out
    rows = query(database_url, "SELECT name, slug FROM tenants")
    assert rows == [{"name": "Acme Pty Ltd", "slug": "acme"}]

    duplicate = cli("tenant", "create", "--name", "Other", "--slug", "acme")
    assert duplicate.code == 1
    assert "a tenant with slug 'acme' already exists" in duplicate.err
    assert "Traceback" not in duplicate.err
    assert len(query(database_url, "SELECT id FROM tenants")) == 1


def test_it_refuses_a_malformed_slug(cli: Cli, database_url: DatabaseUrl) -> None:
    cli.use(database_url)
    result = cli("tenant", "create", "--name", "Acme", "--slug", "Not A Slug")
    assert result.code == 1
    assert "slug" in result.err


def test_it_creates_a_staff_user_and_an_operator(cli: Cli, database_url: DatabaseUrl) -> None:
    cli.use(database_url)
    assert cli("seed").code == 0

    staff = cli("user", "create", "Staff@Example.com", "--tenant", "demo", "--role", "staff")
    assert staff.code == 0, staff.err
    assert memberships_of(database_url, "staff@example.com") == [
        {"email": "staff@example.com", "is_operator": False, "slug": "demo", "role": "staff"}
    ]

    operator = cli(
        "user", "create", "ops@example.com", "--tenant", "demo", "--role", "viewer", "--operator"
    )
    assert operator.code == 0, operator.err
    assert "[operator]" in operator.out
    assert memberships_of(database_url, "ops@example.com") == [
        {"email": "ops@example.com", "is_operator": True, "slug": "demo", "role": "viewer"}
    ]

    promoted = cli("user", "create", "staff@example.com", "--tenant", "demo", "--role", "admin")
    assert promoted.code == 0, promoted.err
    assert [m["role"] for m in memberships_of(database_url, "staff@example.com")] == ["admin"]


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (("user", "create", "a@example.com"), "--tenant SLUG --role ROLE, or --operator"),
        (("user", "create", "a@example.com", "--tenant", "demo"), "go together"),
        (("user", "create", "not-an-email", "--operator"), "not an email address"),
        (("user", "create", "a@example.com", "--tenant", "nope", "--role", "staff"), "nope"),
    ],
)
def test_it_refuses_a_bad_user_create(
    cli: Cli, database_url: DatabaseUrl, args: tuple[str, ...], complaint: str
) -> None:
    cli.use(database_url)
    assert cli("seed").code == 0
    result = cli(*args)
    assert result.code == 1
    assert complaint in result.err


def test_it_adds_a_sending_number_and_an_alphanumeric_sender_id(
    cli: Cli, database_url: DatabaseUrl
) -> None:
    cli.use(database_url)
    assert cli("seed").code == 0
    phone = cli("number", "add", "--tenant", "demo", "+61412345678")
    assert phone.code == 0, phone.err
    sender = cli("number", "add", "--tenant", "demo", "DemoCo")
    assert sender.code == 0, sender.err
    national = cli("number", "add", "--tenant", "demo", "0412 345 679")
    assert national.code == 0, national.err

    rows = query(
        database_url,
        "SELECT phone_e164, kind FROM sending_numbers WHERE phone_e164 <> '+61400000000' "
        "ORDER BY id",
    )
    assert rows == [
        {"phone_e164": "+61412345678", "kind": "phone"},
        {"phone_e164": "DemoCo", "kind": "alphanumeric"},
        {"phone_e164": "+61412345679", "kind": "phone"},
    ]


@pytest.mark.parametrize(
    ("value", "complaint"),
    [
        ("12345", "not a valid mobile number"),
        ("+61 2 9999 1234", "not a valid mobile number"),
        ("ThisIsTooLongASenderId", "neither a phone number nor an alphanumeric sender ID"),
        ("bad!id", "neither a phone number nor an alphanumeric sender ID"),
    ],
)
def test_it_refuses_an_invalid_sending_number(
    cli: Cli, database_url: DatabaseUrl, value: str, complaint: str
) -> None:
    cli.use(database_url)
    assert cli("seed").code == 0
    result = cli("number", "add", "--tenant", "demo", value)
    assert result.code == 1
    assert complaint in result.err
    assert len(query(database_url, "SELECT id FROM sending_numbers")) == 1


def test_it_refuses_another_tenants_number(cli: Cli, database_url: DatabaseUrl) -> None:
    cli.use(database_url)
    assert cli("seed").code == 0
    assert cli("tenant", "create", "--name", "Acme", "--slug", "acme").code == 0
    result = cli("number", "add", "--tenant", "acme", "+61400000000")
    assert result.code == 1
    assert "already belongs to another tenant" in result.err


async def test_it_creates_an_api_key_printed_last_that_authenticates(
    cli: Cli,
    database_url: DatabaseUrl,
    settings: Settings,
    aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]],
) -> None:
    cli.use(database_url)
    # main() runs its own event loop, so it runs on a thread beside this test's loop.
    assert (await asyncio.to_thread(cli, "seed")).code == 0
    created = await asyncio.to_thread(
        cli, "api-key", "create", "--tenant", "demo", "--role", "viewer", "--name", "ci"
    )
    assert created.code == 0, created.err
    key = created.last_line
    assert key.startswith("sk_")
    assert key.strip() == key and " " not in key
    stored = await _query(database_url, "SELECT name, role, key_hash FROM api_keys", {})
    assert [(k["name"], k["role"]) for k in stored] == [("ci", "viewer")]
    assert key not in str(stored)  # only its hash is kept

    client = await aiohttp_client(create_app(settings, run_background=False))
    response = await client.get("/api/me", headers={"Authorization": f"Bearer {key}"})
    assert response.status == 200
    body = await response.json()
    assert body["role"] == "viewer"
    assert body["tenant"]["slug"] == "demo"

    refused = await client.get("/api/me", headers={"Authorization": f"Bearer {key}x"})
    assert refused.status == 401


def test_it_refuses_an_api_key_for_an_unknown_tenant(cli: Cli, database_url: DatabaseUrl) -> None:
    cli.use(database_url)
    result = cli("api-key", "create", "--tenant", "nope", "--role", "viewer", "--name", "ci")
    assert result.code == 1
    assert "no tenant with slug 'nope'" in result.err


@pytest.mark.parametrize(
    "url", ["mysql://root:hunter2@db/smsapp", "postgresql://host", "sqlite:///:memory:"]
)
def test_it_exits_2_with_a_configuration_error_for_a_bad_database_url(
    cli: Cli, url: str
) -> None:
    cli.use(url)
    result = cli("migrate")
    assert result.code == 2
    assert "configuration error" in result.err
    assert "DATABASE_URL" in result.err
    assert "hunter2" not in result.err
    assert result.out == ""
