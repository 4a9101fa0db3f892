"""The chaos run: 10,000 jobs across digi.me and two PDAs through injected faults, worker
SIGKILLs and a Redis restart; then an audit against what the sandbox received.

    python -m bench.chaos [--jobs 10000] [--workers 2] [--kills 3] [--seed N]

Prints one JSON summary as its last line; exits 1 if any job was lost, ended in the wrong
state, or was duplicated without a disruption to explain it.
"""

from __future__ import annotations

import argparse
import random
import signal
import sys
import time
import uuid
from pathlib import Path

from producers import Datapost
from worker.store.jobs import TERMINAL

from ..harness import bench_env, emit, machine
from .audit import audit, receipts, states
from .disrupt import Disruptor
from .faults import FaultMix
from .workload import Producer, plan


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--jobs", type=int, default=10_000)
    p.add_argument("--workers", type=int, default=2, help="`datapost worker` instances")
    p.add_argument("--processes", type=int, default=1, help="processes per worker")
    p.add_argument("--threads", type=int, default=8, help="threads per process")
    p.add_argument("--kills", type=int, default=3, help="worker SIGKILLs")
    p.add_argument("--redis-restarts", type=int, default=1)
    p.add_argument("--rate", type=float, default=400.0, help="enqueue rate, jobs/s")
    p.add_argument("--http-timeout", type=float, default=2.0,
                   help="the workers' HTTP timeout; injected timeouts hold 2x this")
    p.add_argument("--digime-users", type=int, default=20)
    p.add_argument("--pda-users", type=int, default=10)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--timeout", type=float, default=1800, help="give up after this many s")
    p.add_argument("--logs", type=Path, default=None, help="keep worker stderr in this dir")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # SIGTERM (e.g. from `timeout`) unwinds normally, so workers, sandbox and Redis stop
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    rng = random.Random(seed)
    mix = FaultMix(timeout_hold_ms=int(args.http_timeout * 2000))
    with bench_env("--pda", "alpha", "--pda", "beta", "--seed", str(seed)) as bench:
        bench.env["DATAPOST_HTTP_TIMEOUT"] = str(args.http_timeout)
        with Datapost.connect(bench.settings(), bench.redis.url) as datapost:
            summary = storm(bench, datapost, args, mix, rng)
    summary.update(benchmark="chaos", machine=machine(), seed=seed)
    emit(summary)
    return 0 if summary["ok"] else 1


def storm(bench, datapost, args, mix: FaultMix, rng: random.Random) -> dict:
    digime_users = bench.mint_users(datapost, args.digime_users, prefix="chaos-dm")
    pdas = bench.urls["pdas"]
    pda_users = [f"chaos-pda-{i}" for i in range(args.pda_users)]
    for i, user in enumerate(pda_users):
        bench.pda_user(datapost, user, pdas[i % len(pdas)], namespace="chaos")
    planned = plan(args.jobs, digime_users, pda_users, uuid.uuid4().hex[:8], rng)
    for rule in mix.rules():
        bench.control("POST", "/faults", json=rule)
    if args.logs:
        args.logs.mkdir(parents=True, exist_ok=True)
    counter = iter(range(1000))

    def start_worker():
        log = args.logs / f"worker-{next(counter)}.log" if args.logs else None
        return bench.start_worker(args.processes, args.threads, log=log)

    for _ in range(args.workers):
        start_worker()
    time.sleep(4)

    def finished() -> int:
        counts = datapost.stores.jobs.counts()
        return sum(counts[str(state)] for state in TERMINAL)

    producer = Producer(datapost, planned, batch=100, rate=args.rate)
    disruptor = Disruptor(bench, datapost, total=args.jobs, kills=args.kills,
                          redis_restarts=args.redis_restarts, start_worker=start_worker,
                          progress=finished, rng=rng)
    started = time.monotonic()
    producer.start()
    disruptor.start()
    timed_out = wait_for_all(finished, producer, args.jobs, started + args.timeout)
    seconds = time.monotonic() - started
    disruptor.stop()
    disruptor.join(30)
    fired = [{k: r[k] for k in ("status", "delay_ms", "drop", "probability", "fired")}
             for r in bench.control("GET", "/faults")["faults"]]
    bench.control("DELETE", "/faults")
    time.sleep(1)
    got = receipts(bench)
    report = audit(planned, producer.job_ids, states(datapost.stores.jobs, producer.job_ids),
                   got, disruptor.events)
    problems = [str(e) for e in (producer.error, disruptor.error) if e]
    ok = (not timed_out and not problems and report["lost"] == 0 and not report["not_enqueued"]
          and report["wrong_state"] == 0 and not report["invalid_delivered"]
          and report["received_equals_enqueued"] and report["duplicates"]["unexplained"] == 0)
    return {
        "ok": ok, "zero_lost": report["lost"] == 0 and not report["not_enqueued"],
        "jobs": args.jobs, "seconds": round(seconds, 1), "timed_out": timed_out,
        "workers": f"{args.workers} x {args.processes} process x {args.threads} threads",
        "http_timeout_s": args.http_timeout, "faults": mix.to_json(), "faults_fired": fired,
        "disruptions": [{k: v for k, v in e.items() if k not in ("in_flight_jobs", "pids")}
                        for e in disruptor.events],
        "producer_resends": producer.resends, "errors": problems, **report,
    }


def wait_for_all(finished, producer: Producer, total: int, deadline: float) -> bool:
    """Block until every job is terminal; True if the deadline came first."""
    last = 0.0
    while True:
        try:
            done = finished()
        except Exception:  # Redis mid-restart: look again
            done = -1
        if done >= total and not producer.is_alive():
            return False
        if time.monotonic() > deadline:
            return True
        if time.monotonic() - last > 5:
            print(f"chaos: {max(done, 0)}/{total} finished, "
                  f"{len(producer.job_ids)} enqueued", file=sys.stderr, flush=True)
            last = time.monotonic()
        time.sleep(0.25)


if __name__ == "__main__":
    sys.exit(main())
