"""A bounded log of the requests the sandbox answered, for tests and the demo to inspect."""

from __future__ import annotations

import itertools
import threading
from collections import deque
from dataclasses import asdict, dataclass, field


@dataclass
class LoggedRequest:
    id: int
    at: float
    target: str
    host: str
    method: str
    path: str
    query: str
    status: int | None = None
    duration_ms: float | None = None
    fault: str | None = None
    error: str | None = None
    headers: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return asdict(self)


class RequestLog:
    """Keeps the newest `capacity` requests; header *names* only, never values."""

    def __init__(self, capacity: int = 10_000) -> None:
        self._items: deque[LoggedRequest] = deque(maxlen=capacity)
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def start(self, **fields) -> LoggedRequest:
        entry = LoggedRequest(id=next(self._ids), **fields)
        with self._lock:
            self._items.append(entry)
        return entry

    def list(
        self,
        *,
        target: str | None = None,
        host: str | None = None,
        path_contains: str | None = None,
        limit: int = 1000,
    ) -> list[LoggedRequest]:
        with self._lock:
            items = list(self._items)
        if target:
            items = [r for r in items if r.target == target]
        if host:
            items = [r for r in items if r.host == host]
        if path_contains:
            items = [r for r in items if path_contains in r.path]
        return items[-limit:]

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
