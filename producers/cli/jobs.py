"""`datapost jobs list|show|replay|cancel`: find, inspect, replay and cancel jobs."""

from __future__ import annotations

import argparse
import json
import sys

from worker.config import Settings
from worker.store.credentials import PROVIDERS
from worker.store.jobs import REPLAYABLE, JobState

from .opsview import (
    accept_time_ago,
    clean,
    cut,
    fields,
    input_errors,
    json_flag,
    operations,
    short_error,
    table,
    time_arg,
    when,
)
from .output import Output

STATES = [str(s) for s in JobState]
REPLAY_STATES = sorted(str(s) for s in REPLAYABLE)
TIME_HELP = "ISO 8601 (2026-11-24T10:00:00Z; no zone = UTC) or a time ago (-30m, -1h, -2d)"


def register(sub) -> None:
    common = json_flag()
    p = sub.add_parser("jobs", help="list, inspect, replay and cancel jobs",
                       description="List, inspect, replay and cancel delivery jobs.")
    p.set_defaults(handler=lambda args, settings, out: _usage(p))
    actions = p.add_subparsers(dest="action", metavar="ACTION")

    ls = actions.add_parser(
        "list", parents=[common], help="jobs, newest first",
        description="Jobs newest first (by when they entered their current state), from the "
                    "per-state indexes.")
    ls.add_argument("--state", choices=STATES, metavar="STATE",
                    help=f"only jobs in this state ({', '.join(STATES)})")
    ls.add_argument("--provider", choices=PROVIDERS, help="only this provider's jobs")
    ls.add_argument("--user", help="only this app user's jobs")
    ls.add_argument("--since", help=f"entered their state at or after this time: {TIME_HELP}")
    ls.add_argument("--until", help="entered their state at or before this time (same forms)")
    ls.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")
    accept_time_ago(ls)
    ls.set_defaults(handler=run_list)

    show = actions.add_parser(
        "show", parents=[common], help="one job: summary, attempts, events",
        description="One job: its summary, every attempt (time, duration, HTTP status, "
                    "provider code, class, decision) and its state changes. Never the sealed "
                    "request, the payload or a token.")
    show.add_argument("job_id", metavar="JOB_ID")
    show.set_defaults(handler=run_show)

    replay = actions.add_parser(
        "replay", parents=[common], help="queue failed, dead or parked jobs again",
        description="Queue failed, dead or parked jobs again: by id, or every job in one "
                    "state that matches the filters (a bulk replay needs --state). The "
                    "attempt count starts again at 0 (a fresh retry budget); the attempt "
                    "history stays. Asks before a bulk replay on a terminal unless --yes.")
    replay.add_argument("job_ids", nargs="*", metavar="JOB_ID")
    replay.add_argument("--state", choices=REPLAY_STATES,
                        help="bulk: every job in this state that matches the filters")
    replay.add_argument("--provider", choices=PROVIDERS, help="bulk: only this provider's jobs")
    replay.add_argument("--user", help="bulk: only this app user's jobs")
    replay.add_argument("--since", help=f"bulk: entered the state at or after: {TIME_HELP}")
    replay.add_argument("--until", help="bulk: entered the state at or before (same forms)")
    replay.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    accept_time_ago(replay)
    replay.set_defaults(handler=run_replay)

    cancel = actions.add_parser(
        "cancel", parents=[common], help="cancel queued, retrying or parked jobs",
        description="Cancel queued, retrying or parked jobs: they are never delivered and "
                    "their payloads are deleted. Running and finished jobs cannot be cancelled.")
    cancel.add_argument("job_ids", nargs="+", metavar="JOB_ID")
    cancel.set_defaults(handler=run_cancel)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


# -- list ------------------------------------------------------------------------------------
@input_errors
def run_list(args: argparse.Namespace, settings: Settings, out: Output) -> int:
    since, until = time_arg(args.since, "--since"), time_arg(args.until, "--until")
    with operations(settings, out) as ops:
        rows = ops.list_jobs(state=args.state, provider=args.provider, user=args.user,
                             since=since, until=until, limit=args.limit)
    filters = {"state": args.state, "provider": args.provider, "user": args.user,
               "since": since, "until": until, "limit": args.limit}
    human = "No jobs match." if not rows else "\n".join([
        table(["ID", "STATE", "PROVIDER", "OP", "USER", "ATTEMPTS", "CREATED", "UPDATED", "ERROR"],
              [[r["id"], r["state"], r["provider"], r["op"], cut(clean(r["user"]), 40),
                r["attempts"], when(r["created_at"]), when(r["updated_at"]),
                short_error(r["error"]) if r["state"] != "succeeded" else "-"] for r in rows]),
        f"{len(rows)} job(s), newest first" + (" (limit reached)" if len(rows) == args.limit
                                               else "")])
    out.result({"jobs": rows, "count": len(rows), "filters": filters}, human=human)
    return 0


# -- show ------------------------------------------------------------------------------------
@input_errors
def run_show(args: argparse.Namespace, settings: Settings, out: Output) -> int:
    with operations(settings, out) as ops:
        shown = ops.show_job(args.job_id)
    out.result(shown, human=_show_human(shown))
    return 0


def _show_human(shown: dict) -> str:
    job = shown["job"]
    error = job["error"]
    lines = [f"Job {job['id']}", fields([
        ("state", job["state"]),
        ("provider", f"{job['provider']} ({job['op']})"),
        ("user", job["user"]),
        ("created", when(job["created_at"])),
        ("updated", when(job["updated_at"])),
        ("run at", when(job["run_at"])),
        ("attempts", f"{job['attempts']} counted against the retry budget; {job['runs']} run(s), "
                     f"{job['throttles']} throttled"),
        ("payload", f"{job['payload_size']} bytes"),
        ("idempotency", job["idempotency_key"]),
        ("result", json.dumps(job["result"], sort_keys=True) if job["result"] else None),
        ("error", None if not error else
         f"{error.get('class')}: {short_error(error, 200)}"
         + (f" (code {error['code']})" if error.get("code") else "")),
    ])]
    attempts = shown["attempts"]
    lines += ["", f"Attempts ({len(attempts)})"]
    if attempts:
        lines.append(table(
            ["#", "STARTED", "DURATION", "STATUS", "CODE", "CLASS", "DECISION", "MESSAGE"],
            [[a.get("run", n), when(a.get("started_at")),
              f"{a['duration_ms']:.0f} ms" if a.get("duration_ms") is not None else "-",
              a.get("status"), a.get("code"), a.get("error_class"), a.get("decision"),
              cut(clean(a.get("message") or ""), 60)] for n, a in enumerate(attempts, 1)],
            indent="  "))
    else:
        lines.append("  none yet")
    events = shown["events"]
    lines += ["", f"Events ({len(events)})" + ("" if shown["events_complete"] else
                                              " (older ones were trimmed from the stream)")]
    if events:
        lines.append(table(["AT", "FROM", "TO", "WORKER", "NOTE"],
                           [[when(e["at"]), e["from"] or "(new)", e["to"], e["worker"],
                             cut(clean(e["note"] or ""), 60)] for e in events], indent="  "))
    return "\n".join(lines)


# -- replay ----------------------------------------------------------------------------------
@input_errors
def run_replay(args: argparse.Namespace, settings: Settings, out: Output) -> int:
    bulk_filters = [args.provider, args.user, args.since, args.until]
    if args.job_ids and (args.state or any(f is not None for f in bulk_filters)):
        out.error("give job ids, or --state with filters for a bulk replay, not both")
        return 2
    if not args.job_ids and not args.state:
        out.error("nothing to replay: give job ids, or --state "
                  f"{'|'.join(REPLAY_STATES)} (with --provider, --user, --since, --until) "
                  "for a bulk replay")
        return 2
    if args.job_ids:
        with operations(settings, out) as ops:
            results = ops.replay(args.job_ids)
        return _replayed(out, results, {"requested": len(results)})
    since, until = time_arg(args.since, "--since"), time_arg(args.until, "--until")
    filters = {"state": args.state, "provider": args.provider, "user": args.user,
               "since": since, "until": until}

    def confirm(n: int) -> bool:
        if args.yes or not sys.stdin.isatty():
            return True
        print(f"Replay {n} {args.state} job(s)? [y/N] ", end="", file=sys.stderr, flush=True)
        return sys.stdin.readline().strip().lower() in ("y", "yes")

    with operations(settings, out) as ops:
        done = ops.replay_matching(args.state, args.provider, args.user, since, until,
                                   confirm=confirm,
                                   progress=lambda n, total, text: out.progress(
                                       n, total, text, stderr=True))
    if not done["confirmed"]:
        out.error(f"nothing replayed ({done['matched']} job(s) matched)")
        return 1
    if not done["matched"]:
        out.result({"matched": 0, "replayed": 0, "filters": filters, "jobs": []},
                   human="No jobs match; nothing replayed.")
        return 0
    return _replayed(out, done["jobs"], {"matched": done["matched"], "filters": filters})


def _replayed(out: Output, results: list[dict], extra: dict) -> int:
    replayed = [r for r in results if r["replayed"]]
    skipped = [r for r in results if not r["replayed"]]
    human = [f"Replayed {len(replayed)} job(s): queued again with a fresh retry budget."]
    if replayed and len(results) <= 50:
        human.append(table(["ID", "WAS"], [[r["id"], r["from"]] for r in replayed], indent="  "))
    if skipped:
        human.append(f"Skipped {len(skipped)}:")
        human.append(table(["ID", "REASON"], [[r["id"], r["reason"]] for r in skipped],
                           indent="  "))
    out.result({**extra, "replayed": len(replayed), "skipped": len(skipped), "jobs": results},
               human="\n".join(human))
    return 0 if not skipped else 1


# -- cancel ----------------------------------------------------------------------------------
@input_errors
def run_cancel(args: argparse.Namespace, settings: Settings, out: Output) -> int:
    with operations(settings, out) as ops:
        results = ops.cancel(args.job_ids)
    done = [r for r in results if r["cancelled"]]
    skipped = [r for r in results if not r["cancelled"]]
    human = [f"Cancelled {len(done)} job(s); their payloads are deleted."]
    if done:
        human.append(table(["ID", "WAS"], [[r["id"], r["from"]] for r in done], indent="  "))
    if skipped:
        human.append(f"Not cancelled ({len(skipped)}):")
        human.append(table(["ID", "REASON"], [[r["id"], r["reason"]] for r in skipped],
                           indent="  "))
    out.result({"cancelled": len(done), "skipped": len(skipped), "jobs": results},
               human="\n".join(human))
    return 0 if not skipped else 1

