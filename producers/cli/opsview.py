"""What the operator commands (`jobs`, `credentials`, `stats`) share: connecting, turning bad
input into exit status 2, and plain aligned tables."""

from __future__ import annotations

import argparse
import contextlib
import functools
import re
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import redis

from worker.config import Settings
from worker.errors import CredentialNotFound, JobNotFound, ValidationError
from worker.redis_server import redis_for_cli

from ..client import Datapost
from ..ops import Operations, parse_time
from .output import Output

Handler = Callable[[argparse.Namespace, Settings, Output], int]

# `--since -1h`: argparse would take "-1h" for an option; let it through as a value.
_TIME_AGO = re.compile(r"^-\d+(\.\d+)?[smhdw]?$|^-\d*\.\d+$")
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e]")


def json_flag() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true",
                        help="print one JSON object on stdout instead of the human output")
    return common


def accept_time_ago(parser: argparse.ArgumentParser) -> None:
    parser._negative_number_matcher = _TIME_AGO  # argparse has no public switch for this


def input_errors(handler: Handler) -> Handler:
    """Bad input (unknown job, wrong state, bad time, unknown credential) is exit status 2
    with one clear line; an unreachable Redis is status 1. Never a traceback."""

    @functools.wraps(handler)
    def run(args: argparse.Namespace, settings: Settings, out: Output) -> int:
        try:
            return handler(args, settings, out)
        except (ValidationError, JobNotFound, CredentialNotFound) as exc:
            out.error(str(exc))
            return 2
        except redis.exceptions.ConnectionError as exc:
            out.error(f"cannot reach Redis: {exc}")
            return 1

    return run


@contextlib.contextmanager
def operations(settings: Settings, out: Output) -> Iterator[Operations]:
    with redis_for_cli(settings.redis_url, settings.data_dir, out.say) as url, \
            Datapost.connect(settings, url) as datapost:
        yield Operations(datapost)


def time_arg(value: str | None, name: str) -> float | None:
    return None if value is None else parse_time(value, name=name)


# -- human formatting ------------------------------------------------------------------------
def clean(value: Any) -> str:
    """One line of text, without control characters (provider messages come from outside)."""
    return _UNPRINTABLE.sub("?", str(value)).replace("\n", " ")


def when(ts: float | None) -> str:
    if not ts:
        return "-"
    return datetime.fromtimestamp(float(ts), UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


def short_error(error: dict | None, width: int = 70) -> str:
    if not error:
        return "-"
    parts = [str(error["status"])] if error.get("status") else []
    parts.append(str(error.get("message") or error.get("class") or "error"))
    return cut(clean(" ".join(parts)), width)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], indent: str = "") -> str:
    """Left-aligned columns, two spaces apart; the last column is not padded."""
    cells = [[clean("-" if v is None or v == "" else v) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        return (indent + "  ".join(v.ljust(w) for v, w in zip(values, widths, strict=True))).rstrip()

    return "\n".join([line(list(headers)), *(line(r) for r in cells)])


def fields(pairs: Sequence[tuple[str, Any]], indent: str = "  ") -> str:
    """`name   value` lines with the values aligned."""
    width = max(len(name) for name, _ in pairs)
    return "\n".join(f"{indent}{name.ljust(width)}  {clean('-' if v is None or v == '' else v)}"
                     for name, v in pairs)
