"""Enqueue-to-delivered latency at about half the maximum rate.

With `datapost worker` P x T running: first the maximum rate is measured with a short bulk
run (or taken from --rate); then single digi.me writes are enqueued at a steady half of it
(one `enqueue_digime` every 1/rate s) for --seconds. Latency per job is its record's
`updated_at` (when it became `succeeded`) minus `created_at`. Reports p50, p99 and max.

    python -m bench.latency [--rate R] [--seconds 20] [--processes 2] [--threads 8]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

from producers import Datapost

from .harness import bench_env, emit, machine, run_pipeline, small_writes, wait_until


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rate", type=float, default=None,
                   help="steady enqueue rate, jobs/s (default: half the measured maximum)")
    p.add_argument("--max-jobs", type=int, default=1000, help="jobs for the maximum-rate run")
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--processes", type=int, default=2)
    p.add_argument("--threads", type=int, default=8)
    p.add_argument("--size", type=int, default=1024)
    p.add_argument("--users", type=int, default=10)
    args = p.parse_args()
    with bench_env() as bench, Datapost.connect(bench.settings(), bench.redis.url) as datapost:
        users = bench.mint_users(datapost, args.users)
        max_rate = None
        if args.rate is None:
            writes = small_writes(users, args.max_jobs, args.size, tag="m")
            run = run_pipeline(bench, datapost, writes, args.processes, args.threads)
            max_rate = args.max_jobs / run["seconds"]
            rate = max_rate / 2
        else:
            bench.start_worker(args.processes, args.threads)
            time.sleep(4)
            rate = args.rate
        print(f"steady rate {rate:.1f} jobs/s for {args.seconds:.0f} s", file=sys.stderr)
        data = os.urandom(args.size)
        ids: list[str] = []
        interval = 1 / rate
        started = time.monotonic()
        due = started
        count = int(args.seconds * rate)
        for i in range(count):
            now = time.monotonic()
            if due > now:
                time.sleep(due - now)
            ids.append(datapost.enqueue_digime(users[i % len(users)], data,
                                               file_name=f"l{i}.bin"))
            due += interval
        enqueue_s = time.monotonic() - started
        wait_until(lambda: all(datapost.job(j).terminal for j in ids), timeout=300,
                   interval=0.5)
        jobs = [datapost.job(j) for j in ids]
    latencies = [(j.updated_at - j.created_at) * 1000 for j in jobs if j.state == "succeeded"]
    p50, p99 = statistics.median(latencies), percentile(latencies, 0.99)
    emit({
        "benchmark": "latency", "machine": machine(), "processes": args.processes,
        "threads": args.threads, "max_rate": round(max_rate, 1) if max_rate else None,
        "rate": round(rate, 1), "achieved_rate": round(count / enqueue_s, 1),
        "jobs": count, "succeeded": len(latencies),
        "p50_ms": round(p50, 1), "p99_ms": round(p99, 1), "max_ms": round(max(latencies), 1),
        "p50_met": p50 <= 50, "p99_met": p99 <= 250,
    })


if __name__ == "__main__":
    main()
