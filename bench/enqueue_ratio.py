"""Enqueue rate: `Datapost.enqueue_many` (batches of 500) against dramatiq's `actor.send`.

Both on the same private Redis, no workers running. datapost writes, per job, a job record,
its payload, the state index and the dramatiq message, in batches of 500; dramatiq sends one
message (carrying the same 1 KiB as its argument) per Redis round trip, to the no-op actor of
bench.noop_actor (its own namespace and queue).

    python -m bench.enqueue_ratio [--jobs 1000] [--batch 500]
"""

from __future__ import annotations

import argparse
import importlib
import os
import time

from producers import Datapost

from .harness import bench_env, emit, machine, small_writes


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--jobs", type=int, default=1000)
    p.add_argument("--batch", type=int, default=500)
    p.add_argument("--size", type=int, default=1024, help="bytes per write / message")
    p.add_argument("--users", type=int, default=10)
    args = p.parse_args()
    with bench_env() as bench:
        with Datapost.connect(bench.settings(), bench.redis.url) as datapost:
            users = bench.mint_users(datapost, args.users)
            writes = small_writes(users, args.jobs, args.size)
            started = time.perf_counter()
            for i in range(0, len(writes), args.batch):
                datapost.enqueue_many(writes[i:i + args.batch])
            dp_s = time.perf_counter() - started
            queued = datapost.stores.jobs.counts()
        os.environ["BENCH_NOOP_REDIS_URL"] = bench.redis.url
        actor_module = importlib.import_module("bench.noop_actor")
        payload = "x" * args.size
        actor_module.noop.send(payload)  # connect before timing, as datapost did for users
        started = time.perf_counter()
        for _ in range(args.jobs):
            actor_module.noop.send(payload)
        dq_s = time.perf_counter() - started
        dq_len = actor_module.broker.client.llen(f"{actor_module.NAMESPACE}:{actor_module.QUEUE}")
    dp_rate, dq_rate = args.jobs / dp_s, args.jobs / dq_s
    emit({
        "benchmark": "enqueue_ratio", "machine": machine(), "jobs": args.jobs,
        "batch": args.batch, "bytes_per_job": args.size,
        "datapost_seconds": round(dp_s, 4), "datapost_per_second": round(dp_rate, 1),
        "dramatiq_send_seconds": round(dq_s, 4), "dramatiq_per_second": round(dq_rate, 1),
        "datapost_over_dramatiq": round(dp_rate / dq_rate, 2),
        "target_ratio": 3.0, "ratio_met": dp_rate / dq_rate >= 3.0,
        "datapost_states": {k: v for k, v in queued.items() if v},
        "dramatiq_queue_length": dq_len,
    })


if __name__ == "__main__":
    main()
