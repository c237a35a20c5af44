"""`smsapp bench`: the registry and the db benchmark's output shape (never its figures)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from smsapp.bench import BENCHMARKS, run_benchmark
from smsapp.bench import scratch as bench_scratch
from smsapp.config import load_settings
from tests.conftest import PG_SERVER_URL
from tests.test_cli import Cli, cli, restore_logging

__all__ = ["cli", "restore_logging"]  # fixtures shared with test_cli

MEASURES = ("point_reads", "bulk_insert")

BenchRun = Callable[..., dict[str, Any]]


@pytest.fixture
def run_bench(
    cli: Cli, backend: str, pg_available: bool, run_id: str, monkeypatch: pytest.MonkeyPatch
) -> BenchRun:
    """`run_bench("db", "--rows", "200")`: `smsapp bench` on the test's backend, its report.
    Its scratch database is named for this run (`smsapp_bench_<name>_<run id>`), so that
    benchmarks run by others on the server don't count."""
    if backend == "postgresql" and not pg_available:
        pytest.skip("PostgreSQL is not reachable")

    def run(name: str, *options: str) -> dict[str, Any]:
        scratch = f"smsapp_bench_{name}_{run_id}"
        monkeypatch.setattr(bench_scratch, "scratch_database_name", lambda: scratch)
        args = ["bench", name, *options]
        if backend == "postgresql":
            args += ["--backend", "postgresql", "--pg-url", PG_SERVER_URL]
        result = cli(*args)
        assert result.code == 0, result.err
        report: dict[str, Any] = json.loads(result.out)
        return report

    return run


def test_it_lists_the_benchmarks_with_a_description(cli: Cli) -> None:
    result = cli("bench", "list")
    assert result.code == 0, result.err
    listed = json.loads(result.out)["benchmarks"]
    assert {"name": "db", "description": BENCHMARKS["db"].description} in listed
    assert all(entry["description"] for entry in listed)


def test_it_refuses_an_unknown_benchmark_naming_the_known_ones(cli: Cli) -> None:
    result = cli("bench", "no-such-bench")
    assert result.code == 1
    assert "unknown benchmark 'no-such-bench'" in result.err
    assert "db" in result.err
    assert result.out == ""


def test_it_raises_value_error_for_an_unknown_name(tmp_path: Path) -> None:
    settings = load_settings({"SMSAPP_DATA_DIR": str(tmp_path)})
    with pytest.raises(ValueError, match="known benchmarks: db"):
        run_benchmark(settings, "nope", [])


def test_it_runs_the_db_benchmark_and_prints_figures_beside_their_ceilings(
    run_bench: BenchRun, backend: str, run_id: str
) -> None:
    report = run_bench("db", "--rows", "200")
    assert report["benchmark"] == "db"
    assert report["backend"] == backend
    assert report["rows"] == 200
    for measure in MEASURES:
        figure = report[measure]
        assert set(figure) == {"ours", "ceiling", "ratio"}
        assert figure["ours"] > 0
        assert figure["ceiling"] > 0
        assert figure["ratio"] == pytest.approx(figure["ours"] / figure["ceiling"], abs=0.01)
    if backend == "postgresql":
        scratch = f"smsapp_bench_db_{run_id}"
        assert not database_exists(scratch), "the scratch database was not dropped"


def database_exists(name: str) -> bool:
    async def exists() -> bool:
        conn = await asyncpg.connect(PG_SERVER_URL, timeout=5)
        try:
            found = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
            return found is not None
        finally:
            await conn.close()

    return asyncio.run(exists())


def test_it_refuses_bad_db_benchmark_options(cli: Cli) -> None:
    result = cli("bench", "db", "--rows", "0")
    assert result.code == 1
    assert "--rows" in result.err


def test_the_redirect_benchmark_records_every_answered_hit(tmp_path: Path) -> None:
    """SQLite and the aiohttp client only (wrk is left out): the servers run in their own
    processes, and every 302 the client saw, warm-up included, is a hit in the database."""
    settings = load_settings({"SMSAPP_DATA_DIR": str(tmp_path)})
    argv = ["--seconds", "0.5", "--connections", "3", "--links", "20", "--client", "aiohttp",
            "--warmup", "0.2", "--runs", "2", "--breakdown"]  # fmt: skip
    report = run_benchmark(settings, "redirect", argv)
    assert report["benchmark"] == "redirect"
    assert report["backend"] == "sqlite"
    assert report["client"] == "aiohttp"
    assert len(report["runs"]) == 2
    assert report["ratio"] in [run["ratio"] for run in report["runs"]]
    assert report["ratios"] == sorted(run["ratio"] for run in report["runs"])
    assert report["ratio"] == report["ratios"][1]  # the median run's, of two the greater
    for run in report["runs"]:
        for side in ("ours", "ceiling", "unrecorded"):
            figure = run[side]
            assert set(figure) == {
                "requests", "redirects", "requests_per_second", "p99_ms",
                "server_cpu_us_per_request", "load_generator_cpu_us_per_request",
            }  # fmt: skip
            assert figure["requests"] > 0
            assert figure["redirects"] == figure["requests"]
            assert figure["p99_ms"] > 0
            assert figure["server_cpu_us_per_request"] > 0  # read from /proc (Linux)
            assert figure["load_generator_cpu_us_per_request"] > 0
        assert run["ratio"] > 0 and run["unrecorded_ratio"] > 0
    assert set(report["cpu_us_per_request"]) == {"ceiling", "ours", "unrecorded", "load_generator"}
    ours_total = sum(run["ours"]["redirects"] for run in report["runs"])
    assert report["redirects_answered"] > ours_total  # the warm-up's hits are answered too
    assert report["hits_recorded"] == report["redirects_answered"]
    assert 0 < report["human_hits_recorded"] <= report["hits_recorded"]
    assert report["every_hit_recorded"] is True


def test_it_refuses_bad_redirect_benchmark_options(cli: Cli) -> None:
    result = cli("bench", "redirect", "--connections", "0")
    assert result.code == 1
    assert "--connections" in result.err
    result = cli("bench", "redirect", "--runs", "0")
    assert result.code == 1
    assert "--runs" in result.err


def test_it_runs_the_send_benchmark_draining_every_job_through_the_gates(
    run_bench: BenchRun, backend: str
) -> None:
    report = run_bench("send", "--jobs", "300")
    assert (report["benchmark"], report["backend"], report["jobs"]) == ("send", backend, 300)
    # Every job ends sent or skipped (the DNC gate at send time finds some): none left over.
    assert sum(report["statuses"].values()) == 300
    assert set(report["statuses"]) == {"sent", "skipped"}
    assert report["sent"] == report["statuses"]["sent"] and report["messages_per_second"] > 0
    assert report["ceiling_per_second"] > 0


@pytest.mark.parametrize("kind", ["status", "inbound"])
def test_the_webhooks_benchmark_loses_no_callback(tmp_path: Path, kind: str) -> None:
    """SQLite, tiny: both servers in their own processes, every signed callback answered 200
    and found in the database afterwards."""
    settings = load_settings({"SMSAPP_DATA_DIR": str(tmp_path)})
    argv = ["--kind", kind, "--callbacks", "20", "--connections", "3"]
    report = run_benchmark(settings, "webhooks", argv)
    assert (report["benchmark"], report["backend"], report["kind"]) == ("webhooks", "sqlite", kind)
    for side in ("ours", "ceiling"):
        figure = report[side]
        assert set(figure) == {"requests", "ok", "per_second", "p99_ms"}
        assert figure["requests"] == figure["ok"] == 20
        assert figure["per_second"] > 0
    assert report["ratio"] > 0
    assert report["recorded"]["webhook_events"] == 20
    if kind == "status":
        assert report["recorded"]["delivered_jobs"] == report["recorded"]["delivered_events"] == 20
    else:
        assert report["recorded"]["inbound_messages"] == 20
        assert report["recorded"]["do_not_contact"] == report["recorded"]["outbox"] == 2
    assert report["none_lost"] is True


def test_it_refuses_bad_webhooks_benchmark_options(cli: Cli) -> None:
    result = cli("bench", "webhooks", "--callbacks", "0")
    assert result.code == 1
    assert "--callbacks" in result.err


def test_the_request_path_benchmark_answers_every_request_and_records_every_hit(
    tmp_path: Path, backend: str, pg_available: bool, run_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tiny: each side in its own process, every answer a 302, every hit of the recording side
    in the database afterwards, the figures per side and the differences between them."""
    if backend == "postgresql" and not pg_available:
        pytest.skip("PostgreSQL is not reachable")
    monkeypatch.setattr(
        bench_scratch, "scratch_database_name", lambda: f"smsapp_bench_path_{run_id}"
    )
    settings = load_settings({"SMSAPP_DATA_DIR": str(tmp_path)})
    argv = ["--backend", backend, "--pg-url", PG_SERVER_URL, "--connections", "3",
            "--rounds", "4", "--repeats", "2", "--links", "5"]  # fmt: skip
    report = run_benchmark(settings, "request-path", argv)
    assert (report["benchmark"], report["backend"]) == ("request-path", backend)
    sides = ("ceiling", "shell", "unrecorded", "ours")
    assert set(report["us_per_request"]) == set(report["sides"]) == set(sides)
    for side in sides:
        figures = report["sides"][side]
        assert figures["requests"] == figures["answers"] == figures["redirects"] == 3 * 4 * 3
        assert len(figures["us_per_request"]) == 2
        assert all(value > 0 for value in figures["us_per_request"])
    assert set(report["extra_us"]) == {"routing", "redirect", "recording"}
    assert report["every_answer_a_redirect"] is True
    assert report["hits_recorded"] == 36
    assert report["every_hit_recorded"] is True


@pytest.mark.parametrize(
    ("benchmark", "option"),
    [("request-path", option) for option in ("--connections", "--rounds", "--repeats", "--links")]
    + [("fold", option) for option in ("--links", "--hits", "--folds", "--gap-us")],
)
def test_it_refuses_a_benchmark_option_below_its_minimum(
    cli: Cli, benchmark: str, option: str
) -> None:
    result = cli("bench", benchmark, option, "0")
    assert result.code == 1
    assert option in result.err


def test_it_runs_the_fold_benchmark_counting_every_hit_once(
    run_bench: BenchRun, backend: str
) -> None:
    report = run_bench("fold", "--links", "20", "--hits", "150", "--folds", "3")
    assert (report["benchmark"], report["backend"]) == ("fold", backend)
    assert (report["links"], report["hits_per_fold"], report["folds"]) == (20, 150, 3)
    expected = {"wall_us_per_hit", "process_cpu_us_per_hit"}
    if backend == "postgresql":
        expected.add("postgresql_cpu_us_per_hit")  # PostgreSQL runs on this machine
    for side in ("ours", "ceiling"):
        assert set(report[side]) == expected
        assert report[side]["wall_us_per_hit"] > 0
        assert all(value >= 0 for value in report[side].values())  # CPU: in 10 ms ticks
    assert report["ratio"] > 0
    assert report["hits_folded"] == 450
    assert report["counters_exact"] is True
