"""Dataswyft record writes through the whole pipeline.

enqueue (bulk) -> Redis -> `datapost worker` processes -> sandbox PDAs store each record
(PDA-wide duplicate check, token renewal on every answer) -> result recorded, with every
renewed token persisted compare-and-set. Reports jobs/s and worker CPU per job.

    python -m bench.dataswyft_records [--jobs 2000] [--processes 2] [--threads 8]
"""

from __future__ import annotations

import argparse
import uuid

from producers import Datapost, PdaRecordWrite

from .harness import bench_env, emit, machine, run_pipeline


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
        run = run_pipeline(bench, datapost, writes, args.processes, args.threads)
    emit({
        "benchmark": "dataswyft_records", "machine": machine(), "jobs": args.jobs,
        "processes": args.processes, "threads": args.threads, "pdas": len(pdas),
        "users": args.users, "seconds": round(run["seconds"], 3),
        "jobs_per_second": round(args.jobs / run["seconds"], 1),
        "enqueue_seconds": round(run["enqueue_seconds"], 3),
        "worker_cpu_ms_per_job": round(run["worker_cpu"] / args.jobs * 1000, 3),
        "states": run["states"],
    })


if __name__ == "__main__":
    main()
