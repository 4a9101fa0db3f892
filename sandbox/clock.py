"""A shiftable clock, so tests can jump days ahead without waiting."""

from __future__ import annotations

import threading
import time


class Clock:
    """Wall-clock time plus an offset that the control API can move forward or back."""

    def __init__(self, offset: float = 0.0) -> None:
        self._offset = offset
        self._lock = threading.Lock()

    def now(self) -> float:
        """Epoch seconds as the sandbox sees them."""
        return time.time() + self._offset

    def now_ms(self) -> int:
        return int(self.now() * 1000)

    @property
    def offset(self) -> float:
        return self._offset

    def shift(self, seconds: float) -> float:
        """Move the clock by `seconds` (may be negative); returns the new offset."""
        with self._lock:
            self._offset += seconds
            return self._offset

    def set_offset(self, seconds: float) -> None:
        with self._lock:
            self._offset = seconds
