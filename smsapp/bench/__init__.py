"""Benchmarks (pack §16): `smsapp bench NAME [options]` runs one and prints its JSON.

Each benchmark is a function `run(settings, argv) -> dict` in its own module under
`smsapp/bench/`, parsing its own options from `argv`. Every figure is printed next to its
ceiling, the same work done by the bare tool measured in the same run, so the ratio holds on
a noisy machine. To add one: write the module and add a line to `BENCHMARKS`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from smsapp.config import Settings

BenchmarkFunction = Callable[[Settings, list[str]], dict[str, Any]]


@dataclass(frozen=True)
class Benchmark:
    name: str
    description: str
    module: str  # imported only when the benchmark runs; its `run` is the entry point


BENCHMARKS: dict[str, Benchmark] = {
    b.name: b
    for b in [
        Benchmark(
            "db",
            "point reads (db.one) and bulk inserts (db.run_many) against the raw driver",
            "smsapp.bench.db",
        ),
        Benchmark(
            "import",
            "contacts import, dry-run then commit (--rows N), against phone parsing alone",
            "smsapp.bench.imports",
        ),
        Benchmark(
            "queue",
            "queue a campaign to N contacts with short links (--contacts N), against bulk insert",
            "smsapp.bench.queue",
        ),
        Benchmark(
            "send",
            "the send loop draining N queued jobs through every gate (--jobs N), against a "
            "bare claim loop",
            "smsapp.bench.send",
        ),
        Benchmark(
            "redirect",
            "GET /s/{token} with every hit recorded, under load, against a bare aiohttp 302",
            "smsapp.bench.redirect",
        ),
        Benchmark(
            "fold",
            "the hit writer's fold alone: what a journaled hit costs the database, against "
            "the same hits inserted with nothing decided",
            "smsapp.bench.fold",
        ),
        Benchmark(
            "request-path",
            "the event loop's CPU time per GET /s/{token}, in one process without the network, "
            "against a bare aiohttp 302; where the app's extra goes",
            "smsapp.bench.request_path",
        ),
        Benchmark(
            "webhooks",
            "signed Twilio status or inbound callbacks against a live app (--kind), against a "
            "bare form-parsing handler; counts the rows after",
            "smsapp.bench.webhooks",
        ),
    ]
}


def list_benchmarks() -> list[dict[str, str]]:
    return [{"name": b.name, "description": b.description} for b in BENCHMARKS.values()]


def run_benchmark(settings: Settings, name: str, argv: Sequence[str]) -> dict[str, Any]:
    """Run benchmark `name` with its own options `argv`; `list` names them all."""
    if name == "list":
        return {"benchmarks": list_benchmarks()}
    benchmark = BENCHMARKS.get(name)
    if benchmark is None:
        known = ", ".join(sorted(BENCHMARKS))
        raise ValueError(f"unknown benchmark {name!r}; known benchmarks: {known} (or 'list')")
    module = importlib.import_module(benchmark.module)
    run: BenchmarkFunction = module.run
    return run(settings, list(argv))
