"""Liveness and readiness (pack §15)."""

from __future__ import annotations

from aiohttp import web

from smsapp.access import Access, route
from smsapp.db.migrate import migration_ids
from smsapp.hit_writer import HIT_WRITER
from smsapp.keys import CLOCK, DB, SENDER

# The send loop finishes a round at least every few seconds; this long without one means it
# is stuck (a hung provider call holds a round for at most the provider's timeout).
SEND_LOOP_STALE_SECONDS = 120


async def healthz(request: web.Request) -> web.Response:
    now = request.app[CLOCK].now()
    return web.json_response({"ok": True, "ts": now.isoformat().replace("+00:00", "Z")})


async def readyz(request: web.Request) -> web.Response:
    db = request.app[DB]
    checks: dict[str, str] = {}
    try:
        await db.val("health.ping")
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"unreachable: {type(exc).__name__}"
        return _ready(request, checks)
    try:
        applied = {r["migration_id"] for r in await db.all("health.applied_migrations")}
    except Exception:
        applied = set()
    pending = [m for m in migration_ids() if m not in applied]
    checks["migrations"] = (
        "ok" if not pending else f"pending: {', '.join(pending)} (run smsapp migrate)"
    )
    if not pending and HIT_WRITER in request.app:
        # Every redirect journals its hit before answering: no journal, no links.
        checks["hit_journal"] = await request.app[HIT_WRITER].readiness()
    if SENDER in request.app:
        age = request.app[SENDER].seconds_since_last_round()
        checks["send_loop"] = (
            "ok" if age is not None and age < SEND_LOOP_STALE_SECONDS
            else "starting" if age is None
            else f"stalled: no round for {age:.0f} s"
        )  # fmt: skip
    return _ready(request, checks)


def _ready(request: web.Request, checks: dict[str, str]) -> web.Response:
    ok = all(v == "ok" for v in checks.values())
    now = request.app[CLOCK].now().isoformat().replace("+00:00", "Z")
    return web.json_response({"ok": ok, "ts": now, "checks": checks}, status=200 if ok else 503)


routes = [
    route("GET", "/healthz", healthz, access=Access.PUBLIC, name="healthz"),
    route("GET", "/readyz", readyz, access=Access.PUBLIC, name="readyz"),
]
