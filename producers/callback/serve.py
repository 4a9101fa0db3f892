"""Serve the callback receiver from a background thread (the demo, tests, embedding)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

import uvicorn
from starlette.types import ASGIApp


class _ThreadServer(uvicorn.Server):
    """uvicorn without signal handlers: the thread's owner decides when it stops."""

    @contextlib.contextmanager
    def capture_signals(self):
        yield


@contextlib.contextmanager
def serve_in_thread(app: ASGIApp, host: str, port: int, timeout: float = 10.0) -> Iterator[None]:
    server = _ThreadServer(uvicorn.Config(app, host=host, port=port, log_level="warning",
                                          lifespan="off", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True, name="datapost-callback")
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"the callback receiver did not start on {host}:{port}")
        time.sleep(0.02)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(timeout)
