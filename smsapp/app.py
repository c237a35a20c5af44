"""The app factory. Start-up and shutdown read top to bottom in `cleanup_ctx`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import timedelta

import aiohttp
from aiohttp import web

from smsapp.access import check_route_table, register_routes
from smsapp.background import background_tasks
from smsapp.clock import Clock, SystemClock
from smsapp.config import Settings
from smsapp.db import open_database
from smsapp.engine.delivery_status import STATUS_WRITER, StatusWriter
from smsapp.engine.outbox_dispatcher import dispatch_due
from smsapp.engine.providers import SandboxProvider, make_provider
from smsapp.engine.sandbox_pump import post_due_sandbox_callbacks
from smsapp.engine.sender import Sender, SenderConfig
from smsapp.hit_writer import hit_writer
from smsapp.keys import CLOCK, DB, HTTP, LINK_CACHE, PROVIDER, SENDER, SETTINGS
from smsapp.middleware import access_control, error_shape, request_context
from smsapp.pages import setup_templates
from smsapp.routes import all_routes
from smsapp.scheduler import scheduler
from smsapp.short_host import SHORT_HOSTS, ShortHosts, short_host_middleware
from smsapp.short_links import LinkCache
from smsapp.webhook_events import WEBHOOK_COUNTERS, WebhookCounters
from smsapp.workers import shutdown_pool, warm_up

log = logging.getLogger("smsapp.app")
SEND_LOOP_SHUTDOWN_SECONDS = 30  # a round's provider calls finish; then it is cancelled
MAX_REQUEST_BYTES = 50 * 1024 * 1024 + 64 * 1024  # a 50 MB CSV plus its multipart envelope


async def start_worker_processes(app: web.Application) -> None:
    warm_up()  # not awaited: the workers boot while the app starts serving


async def stop_worker_processes(app: web.Application) -> None:
    await asyncio.to_thread(shutdown_pool)


def create_app(
    settings: Settings, *, clock: Clock | None = None, run_background: bool = True
) -> web.Application:
    """The app. `run_background=False` (tests) leaves out the scheduler and the send loop, whose
    work the tests drive directly with an injected clock."""
    short_hosts = ShortHosts(settings)
    # No app-wide middlewares: the route table wraps each route in them (smsapp/access.py).
    app = web.Application(client_max_size=MAX_REQUEST_BYTES)
    middlewares = [
        request_context,
        short_host_middleware(short_hosts),  # short hosts serve links only
        error_shape,
        access_control,
    ]
    app[SETTINGS] = settings
    app[CLOCK] = clock or SystemClock()
    app[LINK_CACHE] = LinkCache()
    app[SHORT_HOSTS] = short_hosts
    app[WEBHOOK_COUNTERS] = WebhookCounters()  # refused and handled webhooks, for /metrics
    app[STATUS_WRITER] = StatusWriter()  # group commit of status callbacks
    setup_templates(app)
    register_routes(app, all_routes(), middlewares)
    check_route_table(app)

    async def database(app: web.Application) -> AsyncIterator[None]:
        app[DB] = await open_database(settings.database)
        yield
        await app[DB].close()

    async def sms_provider(app: web.Application) -> AsyncIterator[None]:
        async with aiohttp.ClientSession() as session:
            app[HTTP] = session
            app[PROVIDER] = make_provider(settings, session, app[CLOCK])
            yield

    async def send_loop(app: web.Application) -> AsyncIterator[None]:
        """The send loop: transactional messages first (the outbox's fast lane), orphaned
        attempts, then one batch per tenant with due jobs, round after round."""
        db, clock, provider = app[DB], app[CLOCK], app[PROVIDER]

        async def fast_lane() -> None:
            await dispatch_due(db, clock, settings, provider)
            if isinstance(provider, SandboxProvider):  # it "calls back" as a provider would
                await post_due_sandbox_callbacks(app[HTTP], provider, clock.now())

        config = SenderConfig(lease=timedelta(seconds=settings.send_lease_seconds))
        sender = Sender(db, clock, provider, config=config, before_round=fast_lane)
        app[SENDER] = sender
        await sender.recover_at_start()
        stopping = asyncio.Event()
        task = asyncio.create_task(sender.run_forever(stopping), name="send loop")
        yield
        stopping.set()
        try:
            await asyncio.wait_for(task, SEND_LOOP_SHUTDOWN_SECONDS)
        except TimeoutError:
            log.error("the send loop did not stop in time; cancelled mid-round")

    app.cleanup_ctx.append(database)
    app.cleanup_ctx.append(hit_writer)  # after the database: drained before it closes
    app.cleanup_ctx.append(sms_provider)
    app.cleanup_ctx.append(background_tasks)  # after the database: torn down before it
    if run_background:
        app.cleanup_ctx.append(send_loop)  # after the provider: stopped before it closes
        app.cleanup_ctx.append(scheduler)
        app.on_startup.append(start_worker_processes)
    app.on_cleanup.append(stop_worker_processes)
    return app
