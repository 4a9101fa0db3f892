"""`datapost stats`: queue depth, jobs in flight, jobs by state, success rate by provider."""

from __future__ import annotations

import argparse

from worker.config import Settings
from worker.errors import ValidationError
from worker.store.jobs import JobState

from ..ops import DEFAULT_WINDOWS, parse_duration
from .opsview import input_errors, json_flag, operations, table
from .output import Output


def register(sub) -> None:
    p = sub.add_parser("stats", parents=[json_flag()], help="queue depth, states, success rates",
                       description="Queue depth (ready, delayed, held by workers, dead-letter), "
                                   "jobs in flight, jobs by state, and the success rate by "
                                   "provider over recent windows, from the event stream "
                                   "(succeeded vs failed + dead).")
    p.add_argument("--window", action="append", metavar="DURATION",
                   help="a success-rate window such as 5m, 1h, 24h (repeatable; default "
                        "5m, 1h and 24h)")
    p.set_defaults(handler=run)


def _windows(values: list[str] | None) -> tuple[int, ...]:
    if not values:
        return DEFAULT_WINDOWS
    out = []
    for value in values:
        seconds = round(parse_duration(value, name="--window"))
        if not 1 <= seconds <= 30 * 86400:
            raise ValidationError(f"--window {value!r} must be from 1 s to 30 days")
        out.append(seconds)
    return tuple(out)


@input_errors
def run(args: argparse.Namespace, settings: Settings, out: Output) -> int:
    windows = _windows(args.window)
    with operations(settings, out) as ops:
        stats = ops.stats(windows)
    out.result(stats, human=_human(stats))
    return 0


def _human(stats: dict) -> str:
    q = stats["queue"]
    lines = [f"Queue {q['name']} ({q['broker']} broker)"]
    if "error" in q:
        lines.append(f"  unavailable: {q['error']}")
    else:
        rows = [("ready", q["ready"], "messages waiting for a worker"),
                ("delayed", q["delayed"], "messages waiting for their time (retries, delays)"),
                ("held", q["unacked"], "messages fetched by workers (running or prefetched)"),
                ("dead-letter", q["dead_letter"], "messages dramatiq gave up on"),
                ("workers", q["workers"], "worker processes with a fresh heartbeat")]
        lines.append(table(["", "COUNT", ""], [r for r in rows if r[1] is not None],
                           indent="  ").split("\n", 1)[1])
    age = stats["oldest_queued_age"]
    lines += [f"In flight: {stats['in_flight']} running",
              f"Oldest queued job: {'-' if age is None else f'{age:.0f} s'}; "
              f"{stats['scheduled_later']} job(s) scheduled for later",
              "", "Jobs by state",
              table([str(s).upper() for s in JobState],
                    [[stats["jobs"].get(str(s), 0) for s in JobState]], indent="  "),
              "", "Success rate by provider (finished jobs: succeeded / succeeded + failed + dead)"]
    rows = []
    for window in stats["success"]:
        if not window["providers"]:
            rows.append([window["label"], "-", 0, 0, 0, "-"])
        for provider, c in window["providers"].items():
            rate = "-" if c["rate"] is None else f"{c['rate'] * 100:.1f}%"
            rows.append([window["label"], provider, c["succeeded"], c["failed"], c["dead"], rate])
    lines.append(table(["WINDOW", "PROVIDER", "SUCCEEDED", "FAILED", "DEAD", "RATE"], rows,
                       indent="  "))
    return "\n".join(lines)
