"""Run the sandbox as a child process and read the URLs it prints.

The CLI never imports `sandbox`: it is the independent other side of each protocol, so it
runs in its own process exactly as a real provider would.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

from worker.errors import DatapostError


class SandboxStartError(DatapostError):
    """The sandbox process exited or printed nothing usable."""


class SandboxProcess:
    def __init__(self, *args: str, data_dir: Path | None = None) -> None:
        self.args = list(args)
        if data_dir is not None:
            self.args += ["--data-dir", str(data_dir)]
        self.process: subprocess.Popen | None = None
        self.urls: dict = {}

    def start(self, timeout: float = 30.0) -> dict:
        cmd = [sys.executable, "-m", "sandbox", "--json", *self.args]
        self.process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        stdin=subprocess.DEVNULL, text=True)
        line: list[str] = []
        reader = threading.Thread(target=lambda: line.append(self.process.stdout.readline()),
                                  daemon=True)
        reader.start()
        reader.join(timeout)
        if not line or not line[0].strip():
            self.stop()
            err = self.process.stderr.read()[-800:] if self.process.stderr else ""
            raise SandboxStartError(f"the sandbox did not start: {err.strip() or 'no output'}")
        try:
            self.urls = json.loads(line[0])
        except ValueError:
            self.stop()
            raise SandboxStartError(
                f"the sandbox printed something unexpected: {line[0][:200]}") from None
        threading.Thread(target=self._drain, daemon=True).start()
        return self.urls

    def _drain(self) -> None:
        """Keep reading the child's pipes so it never blocks on a full buffer."""
        assert self.process is not None
        for stream in (self.process.stdout, self.process.stderr):
            threading.Thread(target=lambda s=stream: [None for _ in s], daemon=True).start()

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout)

    def __enter__(self) -> SandboxProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
