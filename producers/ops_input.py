"""Reading what an operator types: times, durations, job states."""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from datetime import UTC, datetime

from worker.errors import ValidationError
from worker.store.jobs import JobState

_RELATIVE = re.compile(r"-?(\d+(?:\.\d+)?)([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_time(text: str, *, now: float | None = None, name: str = "time") -> float:
    """An ISO 8601 time (`2026-11-24T10:00:00Z`, `2026-11-24`; no zone means UTC) or a time
    ago (`-90s`, `-15m`, `-1h`, `-2d`, `-1w`; the minus is optional). Returns epoch seconds."""
    now = time.time() if now is None else now
    value = text.strip()
    match = _RELATIVE.fullmatch(value)
    if match:
        return now - float(match.group(1)) * _UNITS[match.group(2)]
    try:
        parsed = datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith(("Z", "z"))
                                        else value)
    except ValueError:
        raise ValidationError(f"{name} {text!r} is neither an ISO 8601 time (2026-11-24T10:00:00Z) "
                              "nor a time ago (-30m, -1h, -2d)") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def parse_duration(text: str, *, name: str = "duration") -> float:
    """`90s`, `15m`, `1h`, `2d`, `1w` in seconds."""
    match = _RELATIVE.fullmatch(text.strip().lstrip("-"))
    if not match:
        raise ValidationError(f"{name} {text!r} is not a duration (90s, 15m, 1h, 2d, 1w)")
    return float(match.group(1)) * _UNITS[match.group(2)]


def check_state(state: str, allowed: Iterable[JobState] = tuple(JobState), *,
                what: str = "state") -> JobState:
    allowed = list(allowed)
    if state not in {str(s) for s in allowed}:
        raise ValidationError(f"unknown {what} {state!r}: expected one of "
                              f"{', '.join(str(s) for s in allowed)}")
    return JobState(state)


def window_label(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
