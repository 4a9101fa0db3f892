"""`receiver`: a tiny HTTP server on 127.0.0.1 that records where the browser was sent back
to. (`browser` and `page` live in tests/browser_fixtures.py, registered once for the whole
suite: two Playwright instances cannot share a thread.)"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest


class Receiver:
    """Where the browser lands after a redirect: every GET is recorded and answered with a
    small page. `url(path)` gives an absolute URL on it; `hits` holds the raw request targets."""

    def __init__(self) -> None:
        hits: list[str] = []
        self.hits = hits

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path != "/favicon.ico":  # the browser's own request, not a redirect
                    hits.append(self.path)
                body = b"<!doctype html><title>Returned</title><h1>Back at the app</h1>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return self.base + path

    def last(self, path: str) -> tuple[str, dict[str, list[str]]]:
        """The raw query of the last request to `path`, and it parsed."""
        for target in reversed(self.hits):
            parts = urlsplit(target)
            if parts.path == path:
                return parts.query, parse_qs(parts.query, keep_blank_values=True)
        raise AssertionError(f"nothing arrived at {path}; got {self.hits}")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()
