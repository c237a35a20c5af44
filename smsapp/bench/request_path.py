"""`smsapp bench request-path [--backend sqlite|postgresql] [--connections 50] [--rounds 400]
[--repeats 5]`: what one `GET /s/{token}` costs the app's event loop, in CPU time, against a
bare aiohttp 302 app measured the same way — without the network and without a load generator.

Raw HTTP requests are fed to aiohttp's own protocol (the server a runner makes) over stand-in
transports, `--connections` of them at a time, keep-alive, `--rounds` times per repeat, and
each answer is read back. So the figure is the event loop's CPU time per request (the main
thread's, `time.thread_time`), steady to about a microsecond where `smsapp bench redirect`
moves by a tenth from run to run: the tool for working on the request path. The target of pack
§16 is measured by `smsapp bench redirect`, under load, with the network; under load every
microsecond here counts about twice (docs/click-integrity.md).

Four sides, each in its own (spawned) process, since two of them replace something:
- `ceiling`: the bare app of `smsapp bench redirect`;
- `shell`: the app with a bare 302 handler in the redirect's place (its routing among all its
  routes; the redirect, a fast-path route, passes no middleware);
- `unrecorded`: the redirect with its hit writer answering at once, journaling nothing;
- `ours`: the redirect, every hit journaled and folded (on SQLite the fold runs on the
  database's own thread, outside this figure; on PostgreSQL in the server).
Every answer must be a 302, and every hit of `ours` must be in the database afterwards
(`every_hit_recorded`)."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import multiprocessing
import statistics
import tempfile
import time
from multiprocessing.queues import Queue
from pathlib import Path
from typing import Any

from aiohttp import web

from smsapp.bench.redirect import (
    UA,
    _answer_unrecorded,
    _bare_302,
    _bare_app,
    bench_app_settings,
    recorded,
    seed,
)
from smsapp.bench.scratch import DEFAULT_PG_URL, scratch_database
from smsapp.config import Settings

SIDES = ("ceiling", "shell", "unrecorded", "ours")
PEER = ("127.0.0.1", 40000)


class Tally:
    """The answers written to every stand-in transport; `answered` is set once `expected` are."""

    def __init__(self) -> None:
        self.answers = 0
        self.redirects = 0
        self.expected = 0
        self.answered = asyncio.Event()

    def expect(self, more: int) -> None:
        self.expected += more
        self.answered.clear()

    def add(self, written: bytes) -> None:
        self.answers += written.count(b"HTTP/1.1 ")
        self.redirects += written.count(b"HTTP/1.1 302 ")
        if self.answers >= self.expected:
            self.answered.set()


class StandInTransport(asyncio.Transport):
    """What aiohttp's protocol writes to, in place of a socket: it counts the answers."""

    def __init__(self, tally: Tally) -> None:
        super().__init__()
        self._tally = tally
        self._closing = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._tally.add(bytes(data))

    def writelines(self, chunks: Any) -> None:
        self.write(b"".join(bytes(chunk) for chunk in chunks))

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        self._closing = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": PEER, "sockname": ("127.0.0.1", 8080)}.get(name, default)

    def get_write_buffer_size(self) -> int:
        return 0

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def _make_app(side: str, settings: Settings | None) -> web.Application:
    if side == "ceiling":
        return _bare_app()
    from smsapp.app import create_app
    from smsapp.hit_writer import HitWriter
    from smsapp.routes import short_links

    if side == "shell":  # the redirect's routes, with the bare handler
        short_links.routes[:] = [
            dataclasses.replace(spec, handler=_bare_302)
            if spec.handler is short_links.follow_link
            else spec
            for spec in short_links.routes
        ]
    elif side == "unrecorded":
        HitWriter.record = _answer_unrecorded  # type: ignore[method-assign]
    assert settings is not None
    return create_app(settings, run_background=False)


async def measure(
    app: web.Application, tokens: list[str], connections: int, rounds: int, repeats: int
) -> dict[str, Any]:
    """Per repeat (after one not counted), the event loop's CPU µs a request."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    assert runner.server is not None
    requests = [
        f"GET /s/{token} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: {UA}\r\n\r\n".encode()
        for token in tokens
    ]
    tally = Tally()
    protocols = []
    for _ in range(connections):
        protocol = runner.server()
        protocol.connection_made(StandInTransport(tally))
        protocols.append(protocol)
    figures = []
    sent = 0
    try:
        for repeat in range(repeats + 1):
            started = time.thread_time()
            for _ in range(rounds):
                tally.expect(connections)
                for protocol in protocols:
                    protocol.data_received(requests[sent % len(requests)])
                    sent += 1
                await tally.answered.wait()  # the loop runs the requests until each is answered
            if repeat:
                figures.append((time.thread_time() - started) / (rounds * connections) * 1e6)
    finally:
        for protocol in protocols:
            protocol.connection_lost(None)
        await runner.cleanup()  # the app's hit writer folds what is left
    return {
        "us_per_request": [round(figure, 2) for figure in figures],
        "requests": sent,
        "answers": tally.answers,
        "redirects": tally.redirects,
    }


def _side_main(
    side: str,
    settings: Settings | None,
    tokens: list[str],
    sizes: tuple[int, int, int],
    results: Queue[dict[str, Any]],
) -> None:
    try:
        app = _make_app(side, settings)
        results.put(asyncio.run(measure(app, tokens, *sizes)))
    except BaseException as exc:
        results.put({"error": f"{type(exc).__name__}: {exc}"})  # not a wait for the timeout
        raise


def _run_side(
    side: str, settings: Settings, tokens: list[str], sizes: tuple[int, int, int]
) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    results: Queue[dict[str, Any]] = context.Queue()
    process = context.Process(
        target=_side_main, args=(side, settings, tokens, sizes, results), daemon=True
    )
    process.start()
    try:
        result = results.get(timeout=600)
        if "error" in result:
            raise RuntimeError(f"the {side} side failed: {result['error']}")
        return result
    finally:
        process.join(60)
        if process.is_alive():
            process.kill()
            process.join()


def run(settings: Settings, argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="smsapp bench request-path")
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--links", type=int, default=1000)
    args = parser.parse_args(argv)
    for name in ("connections", "rounds", "repeats", "links"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name} must be at least 1")
    sizes = (args.connections, args.rounds, args.repeats)
    sides: dict[str, dict[str, Any]] = {}
    with (
        scratch_database(args.backend, args.pg_url) as url,
        tempfile.TemporaryDirectory(prefix="smsapp-bench-data-") as data,
    ):
        tokens = asyncio.run(seed(url, args.links))
        app_settings = bench_app_settings(settings, url, Path(data))
        for side in SIDES:
            sides[side] = _run_side(side, app_settings, tokens, sizes)
        hits = asyncio.run(recorded(url, Path(data)))["hits"]
    medians = {side: round(statistics.median(s["us_per_request"]), 2) for side, s in sides.items()}
    return {
        "benchmark": "request-path",
        "backend": args.backend,
        "connections": args.connections,
        "rounds": args.rounds,
        "repeats": args.repeats,
        "us_per_request": medians,  # median over the repeats, each side
        "extra_us": {
            "routing": round(medians["shell"] - medians["ceiling"], 2),
            "redirect": round(medians["unrecorded"] - medians["shell"], 2),
            "recording": round(medians["ours"] - medians["unrecorded"], 2),
        },
        "sides": sides,
        "every_answer_a_redirect": all(
            s["answers"] == s["redirects"] == s["requests"] for s in sides.values()
        ),
        "hits_recorded": hits,
        "every_hit_recorded": hits == sides["ours"]["requests"],
    }
