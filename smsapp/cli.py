"""The `smsapp` command line (pack §17). Every command reads DATABASE_URL (default: a SQLite
file under SMSAPP_DATA_DIR, default ./data/)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from smsapp.clock import SystemClock
from smsapp.config import ConfigError, Settings, load_settings
from smsapp.db import Database, DatabaseError, open_database
from smsapp.logs import configure_logging

log = logging.getLogger("smsapp.cli")


class CommandError(Exception):
    """A command could not do what was asked; the message says why."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="smsapp", description="Self-hosted SMS marketing.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the web app, scheduler and send loop")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)

    sub.add_parser("migrate", help="apply pending database migrations")

    seed = sub.add_parser("seed", help="create the demo tenant, templates, number and admin")
    seed.add_argument("--admin-email", default="admin@example.com")

    erd = sub.add_parser("erd", help="write the Mermaid ERD of the live schema")
    erd.add_argument("--output", default="docs/erd.md", help="file to write, or - for stdout")

    tenant = sub.add_parser("tenant", help="manage tenants").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    tenant_create = tenant.add_parser("create", help="create a tenant")
    tenant_create.add_argument("--name", required=True)
    tenant_create.add_argument("--slug", required=True)

    user = sub.add_parser("user", help="manage users").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    user_create = user.add_parser("create", help="create a user (or update their role)")
    user_create.add_argument("email")
    user_create.add_argument("--tenant", help="tenant slug for the membership")
    user_create.add_argument("--role", choices=("admin", "staff", "viewer"))
    user_create.add_argument("--operator", action="store_true", help="platform operator")

    number = sub.add_parser("number", help="manage sending numbers").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    number_add = number.add_parser("add", help="add a sending number or sender ID")
    number_add.add_argument("--tenant", required=True, help="tenant slug")
    number_add.add_argument("phone", help="E.164 number, or an alphanumeric sender ID")

    api_key = sub.add_parser("api-key", help="manage API keys").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    key_create = api_key.add_parser("create", help="create an API key (printed once, last line)")
    key_create.add_argument("--tenant", required=True, help="tenant slug")
    key_create.add_argument("--role", required=True, choices=("admin", "staff", "viewer"))
    key_create.add_argument("--name", required=True)

    login_link = sub.add_parser("login-link", help="print a sign-in link for a user")
    login_link.add_argument("email")

    bench = sub.add_parser("bench", help="run a benchmark; prints JSON")
    bench.add_argument("name", help="benchmark name ('list' shows them)")
    bench.add_argument("args", nargs=argparse.REMAINDER, help="the benchmark's own options")
    return parser


async def _with_db(settings: Settings, work: Callable[[Database], Awaitable[Any]]) -> Any:
    db = await open_database(settings.database)
    try:
        return await work(db)
    finally:
        await db.close()


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    from aiohttp import web

    from smsapp.app import create_app
    from smsapp.db.sqlite import ProcessLock

    lock = None
    if settings.database.sqlite_path is not None:
        lock = ProcessLock(settings.database.sqlite_path)
        lock.acquire()
    try:
        log.info(
            "serving on http://%s:%s with %s",
            args.host,
            args.port,
            settings.database.redacted(),
            extra={"env": settings.env, "provider": settings.sms_provider},
        )
        web.run_app(
            create_app(settings),
            host=args.host,
            port=args.port,
            access_log=None,
            print=None,
            handle_signals=True,
        )
    finally:
        if lock:
            lock.release()
    return 0


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    from smsapp.db.migrate import apply_migrations

    applied = apply_migrations(settings.database)
    print(f"applied {len(applied)} migration(s)" + (": " + ", ".join(applied) if applied else ""))
    return 0


def cmd_seed(settings: Settings, args: argparse.Namespace) -> int:
    from smsapp.seed import seed

    result = asyncio.run(
        _with_db(settings, lambda db: seed(db, SystemClock(), admin_email=args.admin_email))
    )
    print(f"seeded tenant demo (id {result.tenant_id}), admin {args.admin_email.lower()}")
    return 0


def cmd_erd(settings: Settings, args: argparse.Namespace) -> int:
    from smsapp.db.erd import render_erd
    from smsapp.db.migrate import pending_migrations

    pending = pending_migrations(settings.database)
    if pending:  # the ERD of a schema short of its migrations would be wrong, or empty
        print(
            f"error: {len(pending)} migration(s) pending ({', '.join(pending)});"
            " run `smsapp migrate` first",
            file=sys.stderr,
        )
        return 1
    text: str = asyncio.run(_with_db(settings, render_erd))
    if args.output == "-":
        sys.stdout.write(text)
    else:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"wrote {args.output}")
    return 0


def cmd_tenant(settings: Settings, args: argparse.Namespace) -> int:
    from smsapp.tenancy import create_tenant

    tenant_id = asyncio.run(
        _with_db(
            settings, lambda db: create_tenant(db, SystemClock(), name=args.name, slug=args.slug)
        )
    )
    print(f"created tenant {args.slug} (id {tenant_id})")
    return 0


def cmd_user(settings: Settings, args: argparse.Namespace) -> int:
    from smsapp.tenancy import ensure_user, set_membership, tenant_by_slug

    if bool(args.tenant) != bool(args.role):
        raise CommandError("--tenant and --role go together")
    if not args.tenant and not args.operator:
        raise CommandError("give --tenant SLUG --role ROLE, or --operator, or both")

    async def work(db: Database) -> int:
        clock = SystemClock()
        tenant_id = (await tenant_by_slug(db, args.tenant))["id"] if args.tenant else None
        user_id = await ensure_user(
            db, clock, args.email, is_operator=True if args.operator else None
        )
        if tenant_id is not None:
            await set_membership(db, clock, user_id=user_id, tenant_id=tenant_id, role=args.role)
        return user_id

    user_id = asyncio.run(_with_db(settings, work))
    where = f" as {args.role} of {args.tenant}" if args.tenant else ""
    print(
        f"user {args.email.strip().lower()} (id {user_id}){where}"
        + (" [operator]" if args.operator else "")
    )
    return 0


def cmd_number(settings: Settings, args: argparse.Namespace) -> int:
    from smsapp.numbers import add_sending_number
    from smsapp.tenancy import tenant_by_slug

    async def work(db: Database) -> int:
        tenant = await tenant_by_slug(db, args.tenant)
        return await add_sending_number(db, SystemClock(), tenant_id=tenant["id"], value=args.phone)

    number_id = asyncio.run(_with_db(settings, work))
    print(f"sending number {args.phone} for {args.tenant} (id {number_id})")
    return 0


def cmd_api_key(settings: Settings, args: argparse.Namespace) -> int:
    from smsapp.api_keys import create_api_key
    from smsapp.tenancy import tenant_by_slug

    async def work(db: Database) -> tuple[int, str]:
        tenant = await tenant_by_slug(db, args.tenant)
        return await create_api_key(
            db, SystemClock(), tenant_id=tenant["id"], role=args.role, name=args.name
        )

    key_id, key = asyncio.run(_with_db(settings, work))
    print(f"API key {args.name!r} (id {key_id}, role {args.role}) for {args.tenant}; shown once:")
    print(key)
    return 0


def cmd_login_link(settings: Settings, args: argparse.Namespace) -> int:
    from smsapp.magic_links import create_login_link
    from smsapp.tenancy import normalise_email

    async def work(db: Database) -> str:
        email = normalise_email(args.email)
        user = await db.one("people.active_user_by_email", email=email)
        if user is None:
            raise CommandError(
                f"no active user {email}; create one with: "
                f"smsapp user create {email} --tenant SLUG --role admin"
            )
        return await create_login_link(db, SystemClock(), settings, user_id=user["id"], ip=None)

    link = asyncio.run(_with_db(settings, work))
    print(f"sign-in link for {args.email.strip().lower()} (valid 15 minutes, once):")
    print(link)
    return 0


def cmd_bench(settings: Settings, args: argparse.Namespace) -> int:
    from smsapp.bench import run_benchmark

    result = run_benchmark(settings, args.name, args.args)
    print(json.dumps(result, indent=2, default=str))
    return 0


COMMANDS: dict[str, Callable[[Settings, argparse.Namespace], int]] = {
    "serve": cmd_serve,
    "migrate": cmd_migrate,
    "seed": cmd_seed,
    "erd": cmd_erd,
    "tenant": cmd_tenant,
    "user": cmd_user,
    "number": cmd_number,
    "api-key": cmd_api_key,
    "login-link": cmd_login_link,
    "bench": cmd_bench,
}


def main(argv: Sequence[str] | None = None) -> int:
    configure_logging()
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
        return COMMANDS[args.command](settings, args)
    except ConfigError as exc:
        print(f"smsapp: configuration error: {exc}", file=sys.stderr)
        return 2
    except (CommandError, DatabaseError, ValueError) as exc:
        print(f"smsapp {args.command}: {exc}", file=sys.stderr)
        return 1
