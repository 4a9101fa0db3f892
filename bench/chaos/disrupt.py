"""Worker kills and the Redis restart, fired when delivery progress crosses chosen marks.

Each kill is SIGKILL to a whole `datapost worker` process group (no drain, no ack); a fresh
worker of the same shape starts at once. Before the kill the jobs then `running` on that
worker are noted: they are the only ones whose upload may have landed without the result
being recorded, so they bound the duplicates the audit may find.
"""

from __future__ import annotations

import os
import random
import signal
import sys
import threading
import time
from collections.abc import Callable

import redis

from worker.store.jobs import JobState

from ..harness import tree


class Disruptor(threading.Thread):
    def __init__(self, bench, datapost, *, total: int, kills: int, redis_restarts: int,
                 start_worker: Callable[[], object], progress: Callable[[], int],
                 rng: random.Random) -> None:
        super().__init__(name="chaos-disruptor", daemon=True)
        self.bench, self.datapost = bench, datapost
        self.start_worker = start_worker
        self.progress = progress
        marks = [("kill", rng.uniform(0.05, 0.85)) for _ in range(kills)]
        marks += [("redis_restart", rng.uniform(0.15, 0.7)) for _ in range(redis_restarts)]
        self.plan = sorted(((kind, int(total * frac)) for kind, frac in marks),
                           key=lambda m: m[1])
        self.rng = rng
        self.events: list[dict] = []
        self.error: BaseException | None = None
        self.started = time.monotonic()
        self._halt = threading.Event()

    def stop(self) -> None:
        self._halt.set()

    def run(self) -> None:
        try:
            for kind, mark in self.plan:
                while not self._halt.is_set() and self._safe_progress() < mark:
                    time.sleep(0.1)
                if self._halt.is_set():
                    return
                # a random moment within the next ~2 s, not exactly on the mark
                time.sleep(self.rng.uniform(0, 2))
                event = self._kill() if kind == "kill" else self._restart_redis()
                event.update(kind=kind, mark=mark, at_s=round(time.monotonic() - self.started, 2))
                self.events.append(event)
                print(f"chaos: {kind} at {event['at_s']} s: {event}", file=sys.stderr, flush=True)
        except BaseException as exc:
            self.error = exc

    def _safe_progress(self) -> int:
        try:
            return self.progress()
        except redis.RedisError:
            return 0

    def _kill(self) -> dict:
        live = [w for w in self.bench.workers if w.poll() is None]
        victim = self.rng.choice(live)
        pids = {p.pid for p in tree(victim)}
        in_flight = self._running_on(pids)
        os.killpg(victim.pid, signal.SIGKILL)
        victim.wait()
        self.start_worker()
        return {"worker_pid": victim.pid, "pids": sorted(pids), "in_flight": len(in_flight),
                "in_flight_jobs": in_flight}

    def _running_on(self, pids: set[int]) -> list[str]:
        jobs = self.datapost.stores.jobs
        out = []
        for job_id in jobs.ids_in_state(JobState.RUNNING):
            job = jobs.get(job_id)
            if job is not None and job.state is JobState.RUNNING and _pid_of(job.worker) in pids:
                out.append(job_id)
        return out

    def _restart_redis(self) -> dict:
        running = self.datapost.stores.jobs.ids_in_state(JobState.RUNNING)
        began = time.monotonic()
        self.bench.redis.stop()
        time.sleep(1.0)  # a real outage, not just a reconnect
        self.bench.redis.start()
        return {"down_seconds": round(time.monotonic() - began, 2),
                "in_flight": len(running), "in_flight_jobs": list(running)}


def _pid_of(worker_id: str) -> int | None:
    try:
        return int(worker_id.split(":")[1])
    except (IndexError, ValueError):
        return None

