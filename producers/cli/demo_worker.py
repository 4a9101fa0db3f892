"""Run an in-process worker until every demo job is finished, printing each state change."""

from __future__ import annotations

import time

import dramatiq

from worker.config import Settings
from worker.service import DeliveryService

from ..client import Datapost
from .output import Output

FINAL = ("succeeded", "failed", "dead", "parked")


def run_until_done(settings: Settings, redis_url: str, datapost: Datapost, ids: list[str],
                   names: dict[str, str], out: Output, timeout: float = 300) -> dict:
    service = DeliveryService.build(settings, redis_url)
    service.declare_actor()
    worker = dramatiq.Worker(service.broker, worker_threads=4, worker_timeout=100)
    worker.start()
    seen: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            for job_id in ids:
                state = str(datapost.job(job_id).state)
                if seen.get(job_id) != state:
                    seen[job_id] = state
                    out.say(f"      {names[job_id]:<22} {state}")
            if all(s in FINAL for s in seen.values()):
                break
            time.sleep(0.05)
    finally:
        worker.stop(timeout=30_000)
        service.broker.close()
        service.close()
    bad = {names[j]: s for j, s in seen.items() if s != "succeeded"}
    if bad:
        raise RuntimeError(f"jobs did not succeed: {bad}")
    return {names[j]: datapost.status(j)["result"] for j in ids}
