"""A benchmark's server in its own process, so the load generator and the server under test
do not share one event loop (or one interpreter lock)."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from collections.abc import Callable
from multiprocessing.queues import Queue
from pathlib import Path

from aiohttp import web

from smsapp.config import Settings

# The process's entry point: (kind of server, settings, where to put the port once listening).
ServerMain = Callable[[str, Settings | None, "Queue[int]"], None]


class ServerProcess:
    """`with ServerProcess(main, kind, settings) as port:` a server on 127.0.0.1 while inside.
    `main` must be a module-level function (the process is spawned, not forked)."""

    def __init__(self, main: ServerMain, kind: str, settings: Settings | None) -> None:
        context = multiprocessing.get_context("spawn")
        self._ports: Queue[int] = context.Queue()
        self._process = context.Process(
            target=main, args=(kind, settings, self._ports), daemon=True
        )

    def __enter__(self) -> int:
        self._process.start()
        try:
            return self._ports.get(timeout=60)
        except BaseException:
            self._stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self._stop()

    def cpu_seconds(self) -> float | None:
        """The CPU time the server has used so far, all its threads; None where the system does
        not tell (only Linux's /proc is read)."""
        pid = self._process.pid
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return None
        # Fields after the command's closing parenthesis: utime and stime are the 12th and 13th.
        fields = stat.rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def _stop(self) -> None:
        self._process.terminate()
        self._process.join(10)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()


async def serve_until_terminated(app: web.Application, ports: Queue[int]) -> None:
    """Serve `app` on a free port of 127.0.0.1, put the port in `ports`, and serve until the
    benchmark terminates the process: the body of a `ServerMain`."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    ports.put(runner.addresses[0][1])
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
