"""A small pool of worker processes for CPU-bound work that would otherwise stall the event
loop: parsing every phone number of a 100k-row import takes seconds of pure Python.

Processes are started with `spawn` (forking a process that runs threads — aiosqlite's — is
unsafe) and kept for the life of the app; `smsapp serve` starts them in the background at
start-up (`warm_up`), so no import waits for a Python interpreter to boot; `shutdown_pool` ends
them.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import Future, ProcessPoolExecutor

_pool: ProcessPoolExecutor | None = None


def worker_count() -> int:
    """One core fewer than the machine has (at most 4): while the workers normalise, the app's
    own process is busy too — deciding, writing, answering. On 2 cores one worker imports
    100k rows as fast as two did, and the import's processes stay under 300 MB together."""
    return max(1, min(4, (os.cpu_count() or 1) - 1))


def get_pool() -> ProcessPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ProcessPoolExecutor(
            max_workers=worker_count(), mp_context=multiprocessing.get_context("spawn")
        )
    return _pool


def shutdown_pool() -> None:
    global _pool
    if _pool is not None:
        _pool.shutdown(wait=True, cancel_futures=True)
        _pool = None


def _prepare() -> None:
    """Load what the import's workers use, phone metadata included."""
    import phonenumbers

    import smsapp.imports.service  # noqa: F401  (the module whose functions the workers run)

    phonenumbers.parse("+61412345678", None)


def warm_up() -> list[Future[None]]:
    """Start every worker now (one task each) instead of at the first large import."""
    pool = get_pool()
    return [pool.submit(_prepare) for _ in range(worker_count())]
