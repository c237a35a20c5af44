"""`smsapp bench redirect [--backend sqlite|postgresql] [--seconds 5] [--connections 50]
[--runs 5] [--warmup 1] [--breakdown]`: the short-link redirect `GET /s/{token}` with every hit
journaled before its 302 and folded into the database (pack §16 target: ≥ 75 % of the bare
aiohttp 302 ceiling, p99 < 50 ms at 50 connections).

Its ceiling is a bare aiohttp app whose only handler answers a 302 to a fixed URL, measured in
the same run with the same load generator. Each server runs in its own (spawned) process, so the
load generator does not share an event loop with it. The app is the real one without its
scheduler, send loop and import workers (`run_background=False`): with nothing to send they
would poll the database once a second, and the workers cannot start in a benchmark's server
process (a daemon's). The load generator is `wrk` when it is on
PATH (or `--client wrk`), else an aiohttp client with N concurrent tasks (`--client aiohttp`);
the report names the one used. Each server first gets `--warmup` seconds of load, not counted
(the app's link cache fills, connections are opened, as on a server that has been up a while);
then `--runs` times the bare app and the app are loaded one after the other, and the top-level
figures are those of the run with the median ratio (all runs are listed, and `ratios` gives
every run's ratio in order: on a shared machine one run says little, as two identical servers
measured 0.75 and 0.87 of the bare app over the same twelve rounds). `--breakdown` also
loads, in each run, the app with its hit writer answering at once and journaling nothing
(`unrecorded`): what the app's request path costs without the recording. Each load also
reports the CPU time per request of the server and of the load generator (docs/
click-integrity.md explains how they make the ratio).

Requests rotate over one campaign's links (`--links`, 1,000 by default) with a phone browser's
User-Agent, so hits are human wherever the click rules allow (a repeat within 1 s of a link's
previous hit is a burst, a bot). The servers are terminated as by a crash, so afterwards a new
hit writer folds what they journaled and had not folded yet, as the app's next start would;
then the hits in the database are counted: every answered 302 (warm-up included) must be
there. The aiohttp client waits for its requests in
flight, so the two counts must be equal; wrk stops with up to one request per connection
unanswered, which the server may still record, so there the recorded hits may exceed the
answered ones by at most that many per load.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import re
import resource
import shutil
import statistics
import subprocess
import tempfile
import time
from multiprocessing.queues import Queue
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from smsapp.bench.processes import ServerProcess, serve_until_terminated
from smsapp.bench.scratch import DEFAULT_PG_URL, scratch_database
from smsapp.clock import SystemClock
from smsapp.config import DatabaseUrl, Settings
from smsapp.db import Sql, open_database
from smsapp.hit_writer import HitWriter, PendingHit
from smsapp.short_links import TTL, new_token
from smsapp.tenancy import create_tenant

UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1_2 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.1.2 Mobile/15E148 Safari/604.1"
)
TARGET = "https://shop.example/sale?utm_source=sms"
BARE_TARGET = "https://shop.example/"


# --- The servers, each in its own process ----------------------------------------------------


async def _bare_302(request: web.Request) -> web.StreamResponse:
    return web.Response(status=302, headers={"Location": BARE_TARGET})


def _bare_app() -> web.Application:
    app = web.Application()
    app.router.add_get("/s/{token}", _bare_302)
    return app


async def _serve(kind: str, settings: Settings | None, ports: Queue[int]) -> None:
    if kind == "bare":
        app = _bare_app()
    else:
        from smsapp.app import create_app

        if kind == "unrecorded":
            HitWriter.record = _answer_unrecorded  # type: ignore[method-assign]
        assert settings is not None
        app = create_app(settings, run_background=False)
    await serve_until_terminated(app, ports)


async def _answer_unrecorded(self: HitWriter, hit: PendingHit) -> None:
    """The `unrecorded` server's hit writer: answers every hit at once and writes nothing, so
    that server measures the app's request path without the recording (--breakdown only)."""


def _server_main(kind: str, settings: Settings | None, ports: Queue[int]) -> None:
    asyncio.run(_serve(kind, settings, ports))


# --- The load generators ---------------------------------------------------------------------


@dataclasses.dataclass
class Load:
    requests: int  # answered
    redirects: int  # answered with a 302
    seconds: float
    p99_ms: float
    server_cpu: float | None = None  # CPU seconds the server used during the load
    generator_cpu: float | None = None  # and the load generator

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds

    def figures(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "redirects": self.redirects,
            "requests_per_second": round(self.per_second, 1),
            "p99_ms": round(self.p99_ms, 2),
            "server_cpu_us_per_request": self._per_request(self.server_cpu),
            "load_generator_cpu_us_per_request": self._per_request(self.generator_cpu),
        }

    def _per_request(self, cpu_seconds: float | None) -> float | None:
        if cpu_seconds is None or not self.requests:
            return None
        return round(cpu_seconds / self.requests * 1e6, 1)


def generator_cpu_seconds(wrk: bool) -> float:
    """The CPU time the load generator has used so far: wrk's (a child process, counted once it
    has exited), or this process's, whose event loop is the aiohttp client."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN if wrk else resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def aiohttp_load(port: int, tokens: list[str], seconds: float, connections: int) -> Load:
    """N tasks each sending one request after another until the time is up; every request
    sent is awaited to its answer, so `requests` is exactly what the server answered."""
    latencies: list[float] = []
    statuses: list[int] = []
    connector = aiohttp.TCPConnector(limit=connections)
    headers = {"User-Agent": UA}
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
        started = time.perf_counter()
        deadline = started + seconds

        async def worker(n: int) -> None:
            i = n
            while time.perf_counter() < deadline:
                url = f"http://127.0.0.1:{port}/s/{tokens[i % len(tokens)]}"
                i += connections
                sent = time.perf_counter()
                async with session.get(url, allow_redirects=False) as response:
                    await response.read()
                    statuses.append(response.status)
                latencies.append(time.perf_counter() - sent)

        await asyncio.gather(*(worker(n) for n in range(connections)))
        elapsed = time.perf_counter() - started
    p99 = statistics.quantiles(latencies, n=100)[98] if len(latencies) > 1 else latencies[0]
    return Load(len(statuses), statuses.count(302), elapsed, p99 * 1000)


WRK_SCRIPT = """
tokens = {%s}
counter = 0
request = function()
  counter = counter + 1
  return wrk.format("GET", "/s/" .. tokens[(counter %% #tokens) + 1], {["User-Agent"] = "%s"})
end
"""

UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def wrk_load(wrk: str, port: int, tokens: list[str], seconds: float, connections: int) -> Load:
    with tempfile.TemporaryDirectory(prefix="smsapp-bench-wrk-") as tmp:
        script = Path(tmp) / "tokens.lua"
        script.write_text(WRK_SCRIPT % (", ".join(f'"{t}"' for t in tokens), UA))
        threads = min(2, connections)
        out = subprocess.run(  # noqa: S603 (our own arguments, no shell)
            [wrk, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s",
             "--latency", "-s", str(script), f"http://127.0.0.1:{port}/"],
            capture_output=True, text=True, check=True, timeout=seconds + 60,
        ).stdout  # fmt: skip
    done = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", out)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s|m)", out)
    if done is None or p99 is None:
        raise RuntimeError(f"could not read wrk's output:\n{out}")
    requests = int(done.group(1))
    elapsed = float(done.group(2)) * UNITS_MS[done.group(3)] / 1000
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: .*", out)
    if errors:
        raise RuntimeError(f"wrk saw socket errors: {errors.group(0)}")
    redirects = requests - (int(bad.group(1)) if bad else 0)
    return Load(requests, redirects, elapsed, float(p99.group(1)) * UNITS_MS[p99.group(2)])


# --- The run ---------------------------------------------------------------------------------


async def seed(url: DatabaseUrl, links: int) -> list[str]:
    """One tenant, one campaign, `links` contacts each with its own link (no message sent, so
    the 2 s-after-sending rule does not apply)."""
    db = await open_database(url)
    clock = SystemClock()
    try:
        tenant_id = await create_tenant(db, clock, name="Bench", slug="bench")
        now = clock.now()
        campaign_id = await db.val(
            Sql(
                "INSERT INTO campaigns (tenant_id, name, created_at, updated_at) "
                "VALUES (:t, 'Bench', :now, :now) RETURNING id"
            ),
            t=tenant_id,
            now=now,
        )
        await db.run_many(
            Sql(
                "INSERT INTO contacts (tenant_id, phone_e164, created_at, updated_at) "
                "VALUES (:t, :p, :now, :now)"
            ),
            [{"t": tenant_id, "p": f"+614{n:08d}", "now": now} for n in range(links)],
        )
        contacts = await db.all(Sql("SELECT id FROM contacts ORDER BY id"))
        tokens = [new_token() for _ in contacts]
        await db.run_many(
            Sql(
                "INSERT INTO short_links (token, tenant_id, campaign_id, contact_id, target_url, "
                "expires_at, created_at, updated_at) "
                "VALUES (:token, :t, :c, :p, :target, :expires, :now, :now)"
            ),
            [
                {"token": token, "t": tenant_id, "c": campaign_id, "p": row["id"],
                 "target": TARGET, "expires": now + TTL, "now": now}
                for token, row in zip(tokens, contacts, strict=True)
            ],
        )  # fmt: skip
    finally:
        await db.close()
    return tokens


def bench_app_settings(settings: Settings, url: DatabaseUrl, data_dir: Path) -> Settings:
    """The app's settings for a benchmark over the scratch database `url`. Requests come to the
    app's public host, as links printed with it do (a host that is no one's would make each hit
    look up the tenants' own short hosts first)."""
    return dataclasses.replace(
        settings,
        database=url,
        data_dir=data_dir,
        public_base_url="http://127.0.0.1",
        short_link_base_url=None,
    )


async def recorded(url: DatabaseUrl, data_dir: Path) -> dict[str, int]:
    """The hits in the database, once what the servers journaled is folded: they were
    terminated, as by a crash, so a new hit writer adopts their journals, as a restarted app
    would."""
    db = await open_database(url)
    try:
        writer = HitWriter(db, data_dir, SystemClock())
        await writer.fold()
        writer.journal.close(folded=True)
        row = await db.one(
            Sql(
                "SELECT (SELECT count(*) FROM short_link_hits) AS hits, "
                "(SELECT count(*) FROM short_link_hits WHERE NOT is_bot) AS human, "
                "(SELECT coalesce(sum(clicks_total), 0) FROM short_links) AS clicks_total"
            )
        )
    finally:
        await db.close()
    assert row is not None
    return {k: int(v) for k, v in row.items()}


SIDES = ("ceiling", "ours", "unrecorded")


def _median_cpu(runs: list[dict[str, Any]], side: str, figure: str) -> float | None:
    values = [run[side][figure] for run in runs if side in run and run[side][figure] is not None]
    return round(statistics.median(values), 1) if values else None


def run(settings: Settings, argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="smsapp bench redirect")
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--links", type=int, default=1000)
    parser.add_argument("--client", choices=("auto", "wrk", "aiohttp"), default="auto")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--breakdown", action="store_true")
    args = parser.parse_args(argv)
    if args.seconds <= 0:
        raise ValueError("--seconds must be more than 0")
    if args.connections < 1:
        raise ValueError("--connections must be at least 1")
    if args.links < 1:
        raise ValueError("--links must be at least 1")
    if args.runs < 1:
        raise ValueError("--runs must be at least 1")
    if args.warmup < 0:
        raise ValueError("--warmup must be 0 or more")
    wrk = shutil.which("wrk") if args.client != "aiohttp" else None
    if args.client == "wrk" and wrk is None:
        raise ValueError("--client wrk: wrk is not on PATH")

    def load(server: ServerProcess, port: int, tokens: list[str], seconds: float) -> Load:
        """One load on one server, with the CPU time each side used for it."""
        server_before = server.cpu_seconds()
        generator_before = generator_cpu_seconds(wrk is not None)
        if wrk is not None:
            result = wrk_load(wrk, port, tokens, seconds, args.connections)
        else:
            result = asyncio.run(aiohttp_load(port, tokens, seconds, args.connections))
        server_after = server.cpu_seconds()
        result.generator_cpu = generator_cpu_seconds(wrk is not None) - generator_before
        if server_before is not None and server_after is not None:
            result.server_cpu = server_after - server_before
        return result

    runs: list[dict[str, Any]] = []
    answered = 0  # 302s the recording server gave, warm-up included
    loads_on_ours = 0
    with (
        scratch_database(args.backend, args.pg_url) as url,
        tempfile.TemporaryDirectory(prefix="smsapp-bench-data-") as data,
    ):
        tokens = asyncio.run(seed(url, args.links))
        app_settings = bench_app_settings(settings, url, Path(data))
        with contextlib.ExitStack() as servers:
            bare = ServerProcess(_server_main, "bare", None)
            app = ServerProcess(_server_main, "app", app_settings)
            plain = (
                ServerProcess(_server_main, "unrecorded", app_settings) if args.breakdown else None
            )
            bare_port = servers.enter_context(bare)
            app_port = servers.enter_context(app)
            plain_port = servers.enter_context(plain) if plain is not None else None
            # Warm-up, not counted: the app's link cache fills, connections are made.
            if args.warmup > 0:
                load(bare, bare_port, tokens, args.warmup)
                answered += load(app, app_port, tokens, args.warmup).redirects
                loads_on_ours += 1
                if plain is not None and plain_port is not None:
                    load(plain, plain_port, tokens, args.warmup)
            for _ in range(args.runs):
                ceiling = load(bare, bare_port, tokens, args.seconds)
                ours = load(app, app_port, tokens, args.seconds)
                answered += ours.redirects
                loads_on_ours += 1
                figures: dict[str, Any] = {
                    "ours": ours.figures(),
                    "ceiling": ceiling.figures(),
                    "ratio": round(ours.per_second / ceiling.per_second, 3),
                }
                if plain is not None and plain_port is not None:
                    unrecorded = load(plain, plain_port, tokens, args.seconds)
                    figures["unrecorded"] = unrecorded.figures()
                    figures["unrecorded_ratio"] = round(
                        unrecorded.per_second / ceiling.per_second, 3
                    )
                runs.append(figures)
            time.sleep(0.5)  # wrk leaves requests in flight: let the server finish them
        hits = asyncio.run(recorded(url, Path(data)))
    unanswered = hits["hits"] - answered
    if wrk is None:
        every_hit_recorded = unanswered == 0
    else:
        # wrk stops with up to one request per connection unanswered, which may be recorded.
        every_hit_recorded = 0 <= unanswered <= args.connections * loads_on_ours
    every_hit_recorded = every_hit_recorded and hits["clicks_total"] == hits["hits"]
    median = sorted(runs, key=lambda r: float(r["ratio"]))[len(runs) // 2]
    cpu = {side: _median_cpu(runs, side, "server_cpu_us_per_request") for side in SIDES}
    cpu["load_generator"] = _median_cpu(runs, "ceiling", "load_generator_cpu_us_per_request")
    return {
        "benchmark": "redirect",
        "backend": args.backend,
        "client": "wrk" if wrk is not None else "aiohttp",
        "seconds": args.seconds,
        "connections": args.connections,
        "links": args.links,
        "warmup_seconds": args.warmup,
        **median,  # the run of the median ratio
        "ratios": sorted(float(r["ratio"]) for r in runs),
        # Median CPU time per request over the runs, of each server and of the load generator
        # (with the bare server). They share the machine's cores, so when all of them are busy
        # the ratio is about (generator + ceiling) / (generator + ours): docs/click-integrity.md.
        "cpu_us_per_request": {side: value for side, value in cpu.items() if value is not None},
        "runs": runs,
        "hits_recorded": hits["hits"],
        "human_hits_recorded": hits["human"],
        "redirects_answered": answered,
        "every_hit_recorded": every_hit_recorded,
    }
