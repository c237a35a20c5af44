"""The in-process scheduler (APScheduler 3, AsyncIOScheduler): periodic jobs of the app.

Jobs only poll the database and act on what is due, so several processes may run their own
scheduler against one PostgreSQL: every action claims its row first (see
`queue_builder.fire_due_schedules`).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from smsapp.keys import CLOCK, DB, SETTINGS
from smsapp.queue_builder import fire_due_schedules

log = logging.getLogger("smsapp.scheduler")

SCHEDULE_POLL_SECONDS = 15

SCHEDULER = web.AppKey("scheduler", AsyncIOScheduler)


async def fire_schedules(app: web.Application) -> None:
    fired = await fire_due_schedules(app[DB], app[CLOCK], app[SETTINGS])
    if fired:
        log.info("queued scheduled campaigns %s", fired, extra={"campaigns": fired})


async def scheduler(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: start the periodic jobs after the database is open, stop them before."""
    jobs = AsyncIOScheduler(timezone="UTC")
    jobs.add_job(fire_schedules, "interval", seconds=SCHEDULE_POLL_SECONDS, args=[app],
                 id="fire_schedules", max_instances=1, coalesce=True)
    jobs.start()
    app[SCHEDULER] = jobs
    yield
    jobs.shutdown(wait=False)
