"""Delivers the sandbox provider's callbacks to our own webhooks, as a real provider would.

The app's background loop calls `post_due_sandbox_callbacks` every tick: each due callback
(status or inbound, already signed) is POSTed to its URL, a few at a time. A callback our
server did not take is retried the way providers do: a 5xx, 408, 429 or no answer is handed
back to the sandbox for a later attempt with exponential backoff (at most `MAX_ATTEMPTS` in
all); any other 4xx (a 403 for a bad signature) would fail again the same way and is dropped
with a log line.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

import aiohttp

from smsapp.engine.providers.sandbox import SandboxProvider, SignedCallback

log = logging.getLogger(__name__)

CONCURRENCY = 16
MAX_ATTEMPTS = 6
FIRST_RETRY = timedelta(seconds=5)
LONGEST_RETRY = timedelta(minutes=5)
TIMEOUT = aiohttp.ClientTimeout(total=15)
RETRIED_STATUSES = frozenset({408, 429})


def retry_delay(attempt: int) -> timedelta:
    """The wait after failed attempt number `attempt` (1, 2, …): 5 s, 10 s, 20 s, … ≤ 5 min."""
    delay: timedelta = FIRST_RETRY * 2 ** max(0, attempt - 1)
    return min(delay, LONGEST_RETRY)


async def _post(session: aiohttp.ClientSession, callback: SignedCallback) -> int | None:
    """The answer's status, or None when there was no answer."""
    try:
        async with session.post(
            callback.url, data=callback.body, headers=callback.headers, timeout=TIMEOUT
        ) as response:
            await response.read()
            return response.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        log.warning("sandbox callback to %s not answered: %s", callback.url, type(exc).__name__)
        return None


async def post_due_sandbox_callbacks(
    session: aiohttp.ClientSession, provider: SandboxProvider, now: datetime
) -> int:
    """POST every callback due at `now`; answers how many our server took (2xx)."""
    callbacks = provider.due_callbacks(now)
    if not callbacks:
        return 0
    slots = asyncio.Semaphore(CONCURRENCY)

    async def deliver(callback: SignedCallback) -> bool:
        async with slots:
            try:
                status = await _post(session, callback)
            except asyncio.CancelledError:
                provider.redeliver(callback, now)  # shutting down: not lost, only delayed
                raise
        if status is not None and 200 <= status < 300:
            return True
        retried = status is None or status >= 500 or status in RETRIED_STATUSES
        if retried and callback.attempt < MAX_ATTEMPTS:
            provider.redeliver(callback, now + retry_delay(callback.attempt))
        else:
            log.warning(
                "sandbox %s callback dropped after attempt %d (answer %s)",
                callback.kind,
                callback.attempt,
                status,
            )
        return False

    delivered = await asyncio.gather(*(deliver(callback) for callback in callbacks))
    return sum(delivered)
