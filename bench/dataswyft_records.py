"""Dataswyft record writes through the whole pipeline.

enqueue (bulk) -> Redis -> `datapost worker` processes -> sandbox PDAs store each record
(PDA-wide duplicate check, token renewal on every answer) -> result recorded, with every
renewed token persisted compare-and-set. Reports jobs/s and worker CPU per job.

    python -m bench.dataswyft_records [--jobs 2000] [--processes 2] [--threads 8]
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid

from producers import Datapost, PdaRecordWrite

from .harness import bench_env, cpu_seconds, emit, machine, tree, wait_until


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--jobs", type=int, default=2000)
    p.add_argument("--processes", type=int, default=2)
    p.add_argument("--threads", type=int, default=8)
    p.add_argument("--users", type=int, default=10)
    args = p.parse_args()
    with bench_env("--pda", "alice", "--pda", "bob") as bench, \
            Datapost.connect(bench.settings(), bench.redis.url) as datapost:
        pdas = bench.urls["pdas"]
        users = [f"pda-bench-{i}" for i in range(args.users)]
        for i, user in enumerate(users):
            bench.pda_user(datapost, user, pdas[i % len(pdas)])
        run = uuid.uuid4().hex[:8]
        writes = [PdaRecordWrite(user=users[i % len(users)], namespace="bench",
                                 endpoint="events", data={"run": run, "n": i, "value": i * 7})
                  for i in range(args.jobs)]
        worker = bench.start_worker(args.processes, args.threads)
        time.sleep(4)
        procs = tree(worker)
        cpu0 = cpu_seconds(procs)
        started = time.monotonic()
        for i in range(0, len(writes), 500):
            datapost.enqueue_many(writes[i:i + 500])
            print(f"enqueued {min(i + 500, len(writes))}/{len(writes)}", file=sys.stderr)
        enqueue_s = time.monotonic() - started
        done = lambda: datapost.stores.redis.zcard("datapost:jobs:succeeded") >= args.jobs  # noqa: E731
        wait_until(done, timeout=600)
        elapsed = time.monotonic() - started
        worker_cpu = cpu_seconds(procs) - cpu0
        counts = datapost.stores.jobs.counts()
    emit({
        "benchmark": "dataswyft_records", "machine": machine(), "jobs": args.jobs,
        "processes": args.processes, "threads": args.threads, "pdas": len(pdas),
        "users": args.users, "seconds": round(elapsed, 3),
        "jobs_per_second": round(args.jobs / elapsed, 1), "enqueue_seconds": round(enqueue_s, 3),
        "worker_cpu_ms_per_job": round(worker_cpu / args.jobs * 1000, 3),
        "states": {k: v for k, v in counts.items() if v},
    })


if __name__ == "__main__":
    main()
