"""Shared fixtures. Every test that needs the database gets it from `database_url`, which is
parametrised over both backends: a real SQLite file and a real PostgreSQL database.

PostgreSQL: `SMSAPP_TEST_PG_URL` (default postgresql://postgres@127.0.0.1:5432/postgres) names
a server; the session migrates one template database and every test gets a fresh clone of it.
When the server cannot be reached the PostgreSQL cases are skipped, unless
`SMSAPP_TEST_REQUIRE_PG=1` (CI sets it), when they fail.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp import DummyCookieJar
from aiohttp.test_utils import TestClient

from smsapp.api_keys import create_api_key
from smsapp.app import create_app
from smsapp.clock import ManualClock
from smsapp.config import DatabaseUrl, Settings, load_settings, parse_database_url
from smsapp.db import Database, open_database
from smsapp.db.migrate import apply_migrations
from smsapp.tenancy import create_tenant

PG_SERVER_URL = os.environ.get(
    "SMSAPP_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REQUIRE_PG = os.environ.get("SMSAPP_TEST_REQUIRE_PG") == "1"
BACKENDS = ["sqlite", "postgresql"]


def _pg_url(dbname: str) -> str:
    base, _, _ = PG_SERVER_URL.rpartition("/")
    return f"{base}/{dbname}"


async def _pg_admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_SERVER_URL, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def pg_admin(sql: str) -> None:
    """Run one administrative statement; callable from sync and async tests alike (its own
    event loop, in a thread of its own)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, _pg_admin(sql)).result()


@pytest.fixture(scope="session")
def pg_available() -> bool:
    try:
        pg_admin("SELECT 1")
    except (OSError, asyncpg.PostgresError) as exc:
        if REQUIRE_PG:
            raise RuntimeError(f"PostgreSQL at {PG_SERVER_URL} is required: {exc}") from exc
        return False
    return True


@pytest.fixture(scope="session")
def run_id() -> str:
    return f"{os.getpid()}_{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="session")
def pg_template(pg_available: bool, run_id: str) -> Iterator[str | None]:
    """A migrated template database for this test run, dropped at the end."""
    if not pg_available:
        yield None
        return
    name = f"smsapp_test_tmpl_{run_id}"
    pg_admin(f'CREATE DATABASE "{name}"')
    apply_migrations(parse_database_url(_pg_url(name), Path(".")))
    yield name
    pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "smsapp.db"
    apply_migrations(parse_database_url(f"sqlite:///{path}", path.parent))
    return path


@dataclass
class FreshDatabases:
    """Makes empty or migrated databases of either backend, and drops them afterwards."""

    tmp_path: Path
    pg_template: str | None
    run_id: str
    created: list[str]

    def make(
        self, backend: str, *, migrated: bool = True, sqlite_template: Path | None = None
    ) -> DatabaseUrl:
        if backend == "sqlite":
            path = self.tmp_path / f"db_{uuid.uuid4().hex[:8]}" / "smsapp.db"
            path.parent.mkdir(parents=True)
            if migrated and sqlite_template is not None:
                shutil.copyfile(sqlite_template, path)
            url = parse_database_url(f"sqlite:///{path}", path.parent)
            if migrated and sqlite_template is None:
                apply_migrations(url)
            return url
        if self.pg_template is None:
            pytest.skip(
                "PostgreSQL is not reachable (set SMSAPP_TEST_REQUIRE_PG=1 to fail instead)"
            )
        name = f"smsapp_test_{self.run_id}_{uuid.uuid4().hex[:8]}"
        template = f' TEMPLATE "{self.pg_template}"' if migrated else ""
        pg_admin(f'CREATE DATABASE "{name}"{template}')
        self.created.append(name)
        return parse_database_url(_pg_url(name), Path("."))

    def drop_all(self) -> None:
        for name in self.created:
            pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def fresh_databases(
    tmp_path: Path, pg_template: str | None, run_id: str
) -> Iterator[FreshDatabases]:
    maker = FreshDatabases(tmp_path, pg_template, run_id, [])
    yield maker
    maker.drop_all()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(
    backend: str, fresh_databases: FreshDatabases, sqlite_template: Path
) -> DatabaseUrl:
    """A migrated database of the current backend, fresh for this test."""
    return fresh_databases.make(backend, sqlite_template=sqlite_template)


@pytest.fixture
async def db(database_url: DatabaseUrl) -> AsyncIterator[Database]:
    database = await open_database(database_url)
    yield database
    await database.close()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def make_settings(database_url: DatabaseUrl, data_dir: Path, **overrides: str) -> Settings:
    env = {
        "DATABASE_URL": database_url.url,
        "SMSAPP_DATA_DIR": str(data_dir),
        "SMSAPP_SECRET_KEY": "test-secret-key-0123456789abcdef0123456789",
        "PUBLIC_BASE_URL": "http://127.0.0.1:8080",
        # The demo's sandbox fails 3 % of messages at random; tests that want failures script
        # them (SandboxProvider.fail_next) or set a rate themselves.
        "SMSAPP_SANDBOX_FAILURE_RATE": "0",
        **overrides,
    }
    return load_settings(env)


@pytest.fixture
def settings(database_url: DatabaseUrl, tmp_path: Path) -> Settings:
    return make_settings(database_url, tmp_path / "data")


@pytest.fixture
async def client(
    aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]],
    settings: Settings,
    clock: ManualClock,
) -> TestClient[Any, Any]:
    return await aiohttp_client(
        create_app(settings, clock=clock, run_background=False), cookie_jar=DummyCookieJar()
    )


@dataclass
class TenantFixture:
    id: int
    slug: str
    keys: dict[str, str]  # role -> API key

    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}"}


TenantFactory = Callable[[str], Awaitable[TenantFixture]]


@pytest.fixture
async def make_tenant(client: TestClient[Any, Any], clock: ManualClock) -> TenantFactory:
    """Create a tenant with one API key per role, through the app's own database."""
    from smsapp.keys import DB

    async def make(slug: str) -> TenantFixture:
        db = client.app[DB]
        tenant_id = await create_tenant(db, clock, name=slug.title(), slug=slug)
        keys = {}
        for role in ("viewer", "staff", "admin"):
            _, keys[role] = await create_api_key(
                db, clock, tenant_id=tenant_id, role=role, name=f"{role} key"
            )
        return TenantFixture(tenant_id, slug, keys)

    return make


@pytest.fixture
def smtp_server() -> Iterator[Any]:
    from tests.mailbox import SmtpServer

    server = SmtpServer()
    server.start()
    yield server
    server.stop()


@dataclass
class SignedIn:
    """A signed-in browser-like session: the cookie plus the CSRF token for unsafe requests."""

    user_id: int
    email: str
    cookie: str
    csrf: str

    def headers(self, *, unsafe: bool = False) -> dict[str, str]:
        headers = {"Cookie": f"smsapp_session={self.cookie}"}
        if unsafe:
            headers["X-CSRF-Token"] = self.csrf
        return headers


SignIn = Callable[..., Awaitable[SignedIn]]


@pytest.fixture
async def sign_in(client: TestClient[Any, Any], clock: ManualClock) -> SignIn:
    """Make a user (with a role in a tenant, or none) and a session for them, as login does."""
    from smsapp import sessions
    from smsapp.keys import DB, SETTINGS
    from smsapp.tenancy import ensure_user, set_membership

    async def make(
        email: str, *, tenant_id: int | None = None, role: str | None = None, operator: bool = False
    ) -> SignedIn:
        db = client.app[DB]
        user_id = await ensure_user(db, clock, email, is_operator=operator)
        if tenant_id is not None and role is not None:
            await set_membership(db, clock, user_id=user_id, tenant_id=tenant_id, role=role)
        new = await sessions.start_session(
            db, clock, user_id=user_id, ip="127.0.0.1", user_agent="pytest", replaces_token=None
        )
        csrf = sessions.csrf_token(client.app[SETTINGS], new.token)
        return SignedIn(user_id, email, new.token, csrf)

    return make
