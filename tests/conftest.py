"""Session fixtures: a private Redis-compatible server and the sandbox, both over loopback.

Nothing here touches the machine's shared Redis on 6379: each test session starts its own
server on a free port (`redis-server` when installed, else the embedded valkey-server), so
tests may flush, kill and restart it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
import redis

from worker.redis_server import RedisServerProcess, find_server_binary

ROOT = Path(__file__).resolve().parent.parent
pytest_plugins = ["tests.browser_fixtures"]


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory) -> Iterator[RedisServerProcess]:
    server = RedisServerProcess(find_server_binary(prefer_system=True),
                                tmp_path_factory.mktemp("redis"), appendonly=True)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServerProcess) -> str:
    if not redis_server.alive():
        redis_server.start()
    return redis_server.url


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.close()


class RunningSandbox(SimpleNamespace):
    """URLs of a sandbox process: digime_api_url, onboard_url, control_url, pdas."""

    process: subprocess.Popen

    def pda(self, name: str) -> dict:
        return next(p for p in self.pdas if p["name"] == name)

    def control(self, method: str, path: str, **kwargs) -> httpx.Response:
        return httpx.request(method, self.control_url + path, timeout=30, **kwargs)


def start_sandbox(data_dir: Path, *args: str) -> RunningSandbox:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "sandbox", "--json", "--data-dir", str(data_dir),
                             *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True, cwd=ROOT, env=env)
    first: list[str] = []
    reader = threading.Thread(target=lambda: first.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(60)
    if not first or not first[0].strip():
        proc.kill()
        raise RuntimeError(f"sandbox did not start: {proc.stderr.read()[-2000:]}")
    for stream in (proc.stdout, proc.stderr):  # keep pipes drained
        threading.Thread(target=lambda s=stream: [None for _ in s], daemon=True).start()
    return RunningSandbox(process=proc, **json.loads(first[0]))


def stop_sandbox(box: RunningSandbox) -> None:
    box.process.terminate()
    try:
        box.process.wait(10)
    except subprocess.TimeoutExpired:
        box.process.kill()


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory) -> Iterator[RunningSandbox]:
    """One sandbox for the session with PDAs alice and bob. Tests that move the clock or
    change settings must put them back (or use `sandbox_factory`)."""
    box = start_sandbox(tmp_path_factory.mktemp("sandbox"), "--pda", "alice", "--pda", "bob")
    yield box
    stop_sandbox(box)


@pytest.fixture
def sandbox_factory(tmp_path) -> Iterator[Callable[..., RunningSandbox]]:
    """Start a private sandbox with extra flags; stopped after the test."""
    started: list[RunningSandbox] = []

    def make(*args: str) -> RunningSandbox:
        box = start_sandbox(tmp_path / f"sandbox{len(started)}", *args)
        started.append(box)
        return box

    yield make
    for box in started:
        stop_sandbox(box)
