"""`smsapp serve` as a real process, on the zero-set-up default: SQLite under ./data.

SQLite is for one serving process: a second `serve` on the same data dir must refuse to start
and say to use PostgreSQL. These tests start real processes, so they wait (boundedly) for them.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support_env import is_config_name

pytestmark = pytest.mark.slow

STARTUP_LIMIT_S = 15.0
REFUSAL_LIMIT_S = 10.0


def clean_environment(**extra: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not is_config_name(name)}
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def smsapp(*args: str) -> list[str]:
    return [sys.executable, "-m", "smsapp", *args]


class Server:
    def __init__(self, cwd: Path, port: int, env: dict[str, str]) -> None:
        self.port = port
        self.stderr_path = cwd / f"serve-{port}.stderr"
        self._stderr = open(self.stderr_path, "wb")  # closed in stop()
        self.process = subprocess.Popen(
            smsapp("serve", "--port", str(port)),
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._stderr,
            start_new_session=True,  # its own process group: `kill` reaches its workers too
        )

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def get_json(self, path: str) -> Any:
        url = f"http://127.0.0.1:{self.port}{path}"
        with urllib.request.urlopen(url, timeout=2) as response:
            return json.loads(response.read())

    def wait_until_healthy(self) -> Any:
        deadline = time.monotonic() + STARTUP_LIMIT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"serve exited with {self.process.returncode}:\n{self.stderr()}")
            try:
                return self.get_json("/healthz")
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.1)  # the process is still starting
        pytest.fail(f"serve did not answer /healthz within {STARTUP_LIMIT_S} s:\n{self.stderr()}")

    def kill(self) -> None:
        """SIGKILL to the process and the worker processes it started, as when a container is
        killed (a worker would otherwise outlive its killed parent)."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._stderr.close()


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    path = tmp_path / "site"
    path.mkdir()
    return path


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    started: list[Server] = []
    try:
        yield started
    finally:
        for server in started:
            server.stop()


def test_it_serves_on_the_default_sqlite_file_and_refuses_a_second_process(
    workdir: Path, servers: list[Server]
) -> None:
    env = clean_environment()
    migrated = subprocess.run(
        smsapp("migrate"), cwd=workdir, env=env, capture_output=True, text=True, timeout=60
    )
    assert migrated.returncode == 0, migrated.stderr
    assert migrated.stdout.startswith("applied ")

    first = Server(workdir, free_port(), env)
    servers.append(first)
    health = first.wait_until_healthy()
    assert health["ok"] is True
    assert health["ts"].endswith("Z")
    assert (workdir / "data" / "smsapp.db").is_file()
    assert (workdir / "data" / "secret_key").is_file()

    second = Server(workdir, free_port(), env)
    servers.append(second)
    try:
        code = second.process.wait(timeout=REFUSAL_LIMIT_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"a second serve on the same SQLite file kept running:\n{second.stderr()}")
    message = second.stderr()
    assert code != 0
    assert "SQLite" in message
    assert "PostgreSQL" in message
    assert "Traceback" not in message

    # The first is unharmed by the attempt.
    assert first.process.poll() is None
    assert first.get_json("/healthz")["ok"] is True


def test_it_refuses_to_serve_in_production_without_a_secret(workdir: Path) -> None:
    env = clean_environment(SMSAPP_ENV="production", PUBLIC_BASE_URL="https://sms.example.com")
    result = subprocess.run(
        smsapp("serve", "--port", str(free_port())),
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "configuration error" in result.stderr
    assert "SMSAPP_SECRET_KEY" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (workdir / "data" / "secret_key").exists()
