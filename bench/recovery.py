"""Recovery from a killed worker: time from SIGKILL until every job is delivered.

A sandbox fault delays every digi.me postbox upload by --delay-ms, so a 1 x 4 worker is busy
with uploads in flight and messages prefetched. Once --kill-after jobs have succeeded, the
worker's whole process group gets SIGKILL; a fresh worker (same shape) starts at once and the
clock runs until all jobs are `succeeded`. The fault rules are cleared at the end.

    python -m bench.recovery [--jobs 40] [--kill-after 12] [--delay-ms 2000]
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time

from producers import Datapost, DigimeWrite

from .harness import bench_env, emit, machine, wait_until


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--jobs", type=int, default=40)
    p.add_argument("--kill-after", type=int, default=12, help="succeeded jobs before the kill")
    p.add_argument("--delay-ms", type=int, default=2000)
    p.add_argument("--processes", type=int, default=1)
    p.add_argument("--threads", type=int, default=4)
    p.add_argument("--size", type=int, default=1024)
    args = p.parse_args()
    with bench_env() as bench:
        bench.control("POST", "/faults", json={"target": "digime", "path": "postbox",
                                               "delay_ms": args.delay_ms, "probability": 1.0})
        try:
            with Datapost.connect(bench.settings(), bench.redis.url) as datapost:
                bench.mint_user(datapost, "recovery-user")
                redis = datapost.stores.redis

                def succeeded() -> int:
                    return redis.zcard("datapost:jobs:succeeded")

                worker = bench.start_worker(args.processes, args.threads)
                time.sleep(4)
                datapost.enqueue_many([
                    DigimeWrite(user="recovery-user", data=os.urandom(args.size),
                                file_name=f"r{i}.bin") for i in range(args.jobs)])
                wait_until(lambda: succeeded() >= args.kill_after, timeout=600, interval=0.05)
                at_kill = dict(datapost.stores.jobs.counts())
                done_at_kill = succeeded()
                os.killpg(worker.pid, signal.SIGKILL)
                killed = time.monotonic()
                worker.wait()
                print(f"killed with {done_at_kill}/{args.jobs} delivered", file=sys.stderr)
                bench.start_worker(args.processes, args.threads)
                wait_until(lambda: succeeded() >= args.jobs, timeout=900, interval=0.1)
                recovery_s = time.monotonic() - killed
                states = {k: v for k, v in datapost.stores.jobs.counts().items() if v}
            sent = bench.control("GET", "/stats", params={"client_id": "bench_bench-contract"})
        finally:
            bench.control("DELETE", "/faults")
    remaining = args.jobs - done_at_kill
    emit({
        "benchmark": "recovery", "machine": machine(), "jobs": args.jobs,
        "processes": args.processes, "threads": args.threads, "delay_ms": args.delay_ms,
        "succeeded_at_kill": done_at_kill,
        "states_at_kill": {k: v for k, v in at_kill.items() if v},
        "kill_to_all_delivered_seconds": round(recovery_s, 2),
        "target_seconds": 90, "met": recovery_s <= 90,
        "floor_seconds": round(remaining * args.delay_ms / 1000 / (args.processes * args.threads),
                               1),
        "postbox_calls": sent["postbox_calls"], "states": states,
    })


if __name__ == "__main__":
    main()
