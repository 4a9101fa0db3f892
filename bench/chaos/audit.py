"""After the storm: what the sandbox received against what was enqueued, and what each job
says about itself. Nothing here trusts datapost's own view of delivery; receipts are read
from the sandbox's control API and matched by content (sha256 of the bytes, or the record's
unique `chaos` field)."""

from __future__ import annotations

from collections import Counter

import httpx

from worker.store.jobs import JobStore

from .workload import PlannedJob


def receipts(bench) -> dict[str, Counter]:
    """Fingerprint -> how many times it arrived, per kind of landing place."""
    digime = Counter(d["sha256"] for d in
                     bench.control("GET", "/deliveries")["deliveries"])
    records: Counter = Counter()
    files: Counter = Counter()
    incomplete = 0
    for pda in bench.urls["pdas"]:
        got = _get(pda["url"] + "/_control/records")
        records.update(r["data"]["chaos"] for r in got["records"]
                       if isinstance(r.get("data"), dict) and "chaos" in r["data"])
        for f in _get(pda["url"] + "/_control/files")["files"]:
            if f["status"]["status"] == "Completed" and f.get("sha256"):
                files[f["sha256"]] += 1
            else:
                incomplete += 1
    return {"digime": digime, "records": records, "files": files,
            "incomplete_files": Counter({"count": incomplete})}


def _get(url: str) -> dict:
    return httpx.get(url, timeout=120).raise_for_status().json()


def where(job: PlannedJob) -> str:
    if job.kind.startswith("digime"):
        return "digime"
    return "files" if job.kind == "pda_file" else "records"


def states(jobs: JobStore, job_ids: dict[str, str]) -> dict[str, str]:
    """Idempotency key -> the job's state, read in one pipeline."""
    pipe = jobs.redis.pipeline(transaction=False)
    keys = list(job_ids)
    for key in keys:
        pipe.hget(JobStore.key(job_ids[key]), "state")
    return {key: (raw.decode() if raw else "missing") for key, raw in zip(keys, pipe.execute(),
                                                                          strict=True)}


def audit(planned: list[PlannedJob], job_ids: dict[str, str], job_states: dict[str, str],
          got: dict[str, Counter], disruptions: list[dict]) -> dict:
    not_enqueued = [p.key for p in planned if p.key not in job_ids]
    wrong_state, lost, delivered_invalid, duplicates = [], [], [], []
    by_state: Counter = Counter()
    for p in planned:
        state = job_states.get(p.key, "missing")
        by_state[f"{p.kind}:{state}"] += 1
        arrived = got[where(p)][p.fingerprint]
        if p.expect_success:
            if state != "succeeded":
                wrong_state.append({"key": p.key, "state": state})
            if arrived == 0:
                lost.append(p.key)
            elif arrived > 1:
                duplicates.append((p, arrived))
        else:
            if state != "failed":
                wrong_state.append({"key": p.key, "state": state})
            if arrived:
                delivered_invalid.append(p.key)
    expected = {(where(p), p.fingerprint) for p in planned if p.expect_success}
    received = {(kind, fp) for kind in ("digime", "records", "files") for fp in got[kind]}
    return {
        "enqueued": len(job_ids), "not_enqueued": not_enqueued,
        "lost": len(lost), "lost_jobs": lost[:50],
        "wrong_state": len(wrong_state), "wrong_state_jobs": wrong_state[:50],
        "invalid_delivered": delivered_invalid,
        "received_equals_enqueued": received == expected,
        "unexpected_receipts": len(received - expected),
        "states": dict(sorted(by_state.items())),
        "duplicates": explain(duplicates, job_ids, disruptions),
        "incomplete_files_left_on_pdas": got["incomplete_files"]["count"],
    }


def explain(duplicates: list[tuple[PlannedJob, int]], job_ids: dict[str, str],
            disruptions: list[dict]) -> dict:
    """Attribute each extra copy to the disruption that had its job in flight."""
    in_flight: dict[str, str] = {}
    for event in disruptions:
        for job_id in event.get("in_flight_jobs", []):
            in_flight.setdefault(job_id, f"{event['kind']} at {event['at_s']} s")
    bound = len(in_flight)  # distinct jobs in flight at any disruption
    rows = [{"key": p.key, "kind": p.kind, "copies": n,
             "explained_by": in_flight.get(job_ids[p.key], "unexplained")}
            for p, n in duplicates]
    return {"jobs": len(rows), "extra_copies": sum(r["copies"] - 1 for r in rows),
            "in_flight_at_disruptions": bound,
            "unexplained": sum(r["explained_by"] == "unexplained" for r in rows),
            "within_bound": len(rows) <= bound, "detail": rows[:100]}
