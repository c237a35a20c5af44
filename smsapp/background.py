"""Fire-and-forget work started by a request (an email), owned by the app so that shutdown
waits for it instead of dropping it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Coroutine
from typing import Any

from aiohttp import web

log = logging.getLogger("smsapp.background")


class TaskSet:
    """The app's running background tasks."""

    def __init__(self) -> None:
        self.tasks: set[asyncio.Task[None]] = set()


BACKGROUND_TASKS = web.AppKey("background_tasks", TaskSet)
SHUTDOWN_GRACE_SECONDS = 10


def spawn(app: web.Application, work: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
    task = asyncio.create_task(work, name=name)
    tasks = app[BACKGROUND_TASKS].tasks
    tasks.add(task)

    def done(t: asyncio.Task[None]) -> None:
        tasks.discard(t)
        if not t.cancelled() and t.exception() is not None:
            log.error("background task %s failed", name, exc_info=t.exception())

    task.add_done_callback(done)
    return task


async def background_tasks(app: web.Application) -> AsyncIterator[None]:
    app[BACKGROUND_TASKS] = TaskSet()
    yield
    pending = list(app[BACKGROUND_TASKS].tasks)
    if pending:
        await asyncio.wait(pending, timeout=SHUTDOWN_GRACE_SECONDS)
