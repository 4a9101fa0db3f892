"""datapost delivery throughput against plain dramatiq's no-op throughput, in one run.

Part 1: N small (1 KiB) digi.me postbox writes through the whole pipeline (bulk enqueue ->
`datapost worker` P x T -> sandbox), as bench.digime_throughput. Part 2, after the datapost
workers have stopped: N messages to a no-op actor (bench.noop_actor, its own queue and
namespace on the same private Redis) sent with `actor.send`, consumed by
`python -m dramatiq bench.noop_actor -p P -t T` with the prefetch and poll settings
`datapost worker` uses, timed until the actor has counted N runs. Reports both rates, their
ratio, worker CPU per datapost job and the job's own crypto cost.

    python -m bench.noop_ratio [--jobs 1000] [--processes 2] [--threads 8]
"""

from __future__ import annotations

import argparse
import importlib
import os
import subprocess
import sys
import time

from producers import Datapost

from .digime_throughput import crypto_cost
from .harness import ROOT, bench_env, cpu_seconds, emit, machine, run_pipeline, small_writes, tree, wait_until


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_noop(redis_url: str, jobs: int, processes: int, threads: int) -> dict:
    os.environ["BENCH_NOOP_REDIS_URL"] = redis_url
    actor_module = importlib.import_module("bench.noop_actor")
    actor_module.counter.delete(actor_module.DONE_KEY)
    env = {**os.environ, "BENCH_NOOP_REDIS_URL": redis_url,
           "dramatiq_queue_prefetch": str(max(8, 2 * threads)),
           "dramatiq_worker_timeout": "100"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "dramatiq", "bench.noop_actor", "-p", str(processes),
         "-t", str(threads)], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        time.sleep(4)  # boot, as run_pipeline allows datapost's workers
        procs = tree(proc)
        cpu0 = cpu_seconds(procs)
        payload = "x" * 1024
        started = time.monotonic()
        for _ in range(jobs):
            actor_module.noop.send(payload)
        enqueue_s = time.monotonic() - started
        wait_until(lambda: int(actor_module.counter.get(actor_module.DONE_KEY) or 0) >= jobs,
                   timeout=600, interval=0.01)
        seconds = time.monotonic() - started
        cpu = cpu_seconds(procs) - cpu0
    finally:
        stop(proc)
    return {"seconds": seconds, "enqueue_seconds": enqueue_s, "worker_cpu": cpu}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--jobs", type=int, default=1000)
    p.add_argument("--processes", type=int, default=2)
    p.add_argument("--threads", type=int, default=8)
    p.add_argument("--size", type=int, default=1024, help="bytes per datapost write")
    p.add_argument("--users", type=int, default=10)
    args = p.parse_args()
    with bench_env() as bench:
        with Datapost.connect(bench.settings(), bench.redis.url) as datapost:
            users = bench.mint_users(datapost, args.users)
            writes = small_writes(users, args.jobs, args.size)
            run = run_pipeline(bench, datapost, writes, args.processes, args.threads)
        for proc in bench.workers:
            stop(proc)
        print("datapost done; running plain dramatiq no-op", file=sys.stderr)
        noop = run_noop(bench.redis.url, args.jobs, args.processes, args.threads)
    crypto = crypto_cost()
    dp_rate = args.jobs / run["seconds"]
    noop_rate = args.jobs / noop["seconds"]
    per_job = run["worker_cpu"] / args.jobs
    emit({
        "benchmark": "noop_ratio", "machine": machine(), "jobs": args.jobs,
        "bytes_per_job": args.size, "processes": args.processes, "threads": args.threads,
        "datapost_seconds": round(run["seconds"], 3),
        "datapost_jobs_per_second": round(dp_rate, 1),
        "noop_seconds": round(noop["seconds"], 3),
        "noop_jobs_per_second": round(noop_rate, 1),
        "noop_enqueue_seconds": round(noop["enqueue_seconds"], 3),
        "datapost_over_noop": round(dp_rate / noop_rate, 3),
        "target_ratio": 0.40, "ratio_met": dp_rate / noop_rate >= 0.40,
        "worker_cpu_ms_per_job": round(per_job * 1000, 3),
        "noop_worker_cpu_ms_per_job": round(noop["worker_cpu"] / args.jobs * 1000, 3),
        "sandbox_cpu_ms_per_job": round(run["sandbox_cpu"] / args.jobs * 1000, 3),
        "crypto_ms_per_job": round(crypto * 1000, 3),
        "worker_cpu_over_crypto": round(per_job / crypto, 2),
        "target_cpu_over_crypto": 4.0, "cpu_met": per_job / crypto <= 4.0,
        "states": run["states"],
    })


if __name__ == "__main__":
    main()
