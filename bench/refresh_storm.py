"""Refresh storm: many queued jobs for one credential whose access token has expired.

One user's access token is minted already expired (60 s ago); N jobs for that user are
bulk-enqueued into running workers (P x T). Reports how many refresh grants the sandbox saw
for the bench client during the run (target: exactly one) and the jobs' final states.

    python -m bench.refresh_storm [--jobs 1000] [--processes 2] [--threads 8]
"""

from __future__ import annotations

import argparse
import os

from producers import Datapost, DigimeWrite

from .harness import bench_env, emit, machine, run_pipeline

CLIENT = "bench_bench-contract"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--jobs", type=int, default=1000)
    p.add_argument("--processes", type=int, default=2)
    p.add_argument("--threads", type=int, default=8)
    p.add_argument("--size", type=int, default=1024)
    args = p.parse_args()
    with bench_env() as bench, Datapost.connect(bench.settings(), bench.redis.url) as datapost:
        bench.mint_user(datapost, "storm-user", access_ttl=-60)
        writes = [DigimeWrite(user="storm-user", data=os.urandom(args.size),
                              file_name=f"s{i}.bin") for i in range(args.jobs)]
        before = bench.control("GET", "/stats", params={"client_id": CLIENT})
        run = run_pipeline(bench, datapost, writes, args.processes, args.threads)
        after = bench.control("GET", "/stats", params={"client_id": CLIENT})
    refreshes = after["refresh_calls"] - before["refresh_calls"]
    succeeded = run["states"].get("succeeded", 0)
    emit({
        "benchmark": "refresh_storm", "machine": machine(), "jobs": args.jobs,
        "processes": args.processes, "threads": args.threads,
        "seconds": round(run["seconds"], 3),
        "jobs_per_second": round(args.jobs / run["seconds"], 1),
        "refresh_calls": refreshes, "refresh_met": refreshes == 1,
        "postbox_calls": after["postbox_calls"] - before["postbox_calls"],
        "all_succeeded": succeeded == args.jobs and sum(run["states"].values()) == args.jobs,
        "states": run["states"],
    })


if __name__ == "__main__":
    main()
