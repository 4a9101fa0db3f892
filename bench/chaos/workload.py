"""The chaos run's writes: which job is which, what each should leave at the sandbox, and a
producer that keeps enqueueing through a Redis restart (idempotency keys make a re-sent
batch safe)."""

from __future__ import annotations

import hashlib
import os
import random
import sys
import threading
import time
from dataclasses import dataclass, field

import redis

from producers import DigimeWrite, PdaFileWrite, PdaRecordWrite
from worker.errors import DatapostError

# Share of the jobs per kind; "invalid" are record writes to a namespace the app was never
# granted, which the PDA refuses with 403 (they must end `failed`, never `succeeded`).
MIX = (("digime_postbox", 0.45), ("digime_import", 0.10), ("pda_record", 0.30),
       ("pda_file", 0.13), ("invalid", 0.02))


@dataclass(frozen=True)
class PlannedJob:
    """One write and the fingerprint it leaves where it lands."""

    key: str            # the idempotency key, also how the audit names the job
    kind: str
    user: str
    fingerprint: str    # sha256 of the bytes (digi.me, files) or the record's `chaos` field
    write: object = field(compare=False, repr=False)

    @property
    def expect_success(self) -> bool:
        return self.kind != "invalid"


def plan(jobs: int, digime_users: list[str], pda_users: list[str], run_id: str,
         rng: random.Random) -> list[PlannedJob]:
    kinds = rng.choices([k for k, _ in MIX], weights=[w for _, w in MIX], k=jobs)
    return [_planned(i, kind, digime_users, pda_users, run_id, rng)
            for i, kind in enumerate(kinds)]


def _planned(i: int, kind: str, digime_users: list[str], pda_users: list[str], run_id: str,
             rng: random.Random) -> PlannedJob:
    key = f"chaos-{run_id}-{i:05d}"
    if kind.startswith("digime"):
        user = rng.choice(digime_users)
        data = os.urandom(rng.randint(256, 4096))
        write = DigimeWrite(user=user, data=data, file_name=f"{key}.bin", idempotency_key=key,
                            mode="import" if kind == "digime_import" else "postbox")
        return PlannedJob(key, kind, user, hashlib.sha256(data).hexdigest(), write)
    user = rng.choice(pda_users)
    if kind == "pda_file":
        data = os.urandom(rng.randint(512, 8192))
        write = PdaFileWrite(user=user, data=data, name=f"{key}.bin", source="chaos",
                             content_type="application/octet-stream", idempotency_key=key)
        return PlannedJob(key, kind, user, hashlib.sha256(data).hexdigest(), write)
    namespace = "forbidden" if kind == "invalid" else "chaos"
    write = PdaRecordWrite(user=user, namespace=namespace, endpoint="events",
                           data={"chaos": key, "n": i, "value": rng.random()}, idempotency_key=key)
    return PlannedJob(key, kind, user, key, write)


class Producer(threading.Thread):
    """Enqueue the planned jobs in paced batches; a batch that meets a Redis outage is sent
    again, whole, until it lands (the idempotency keys turn repeats into the same jobs)."""

    def __init__(self, datapost, planned: list[PlannedJob], *, batch: int, rate: float) -> None:
        super().__init__(name="chaos-producer", daemon=True)
        self.datapost = datapost
        self.planned = planned
        self.batch = batch
        self.interval = batch / rate
        self.job_ids: dict[str, str] = {}
        self.resends = 0
        self.error: BaseException | None = None
        self.finished_at: float | None = None

    def run(self) -> None:
        try:
            for start in range(0, len(self.planned), self.batch):
                chunk = self.planned[start:start + self.batch]
                began = time.monotonic()
                ids = self._send(chunk)
                self.job_ids.update({p.key: job_id for p, job_id in zip(chunk, ids, strict=True)})
                if start // self.batch % 10 == 9:
                    print(f"chaos: enqueued {len(self.job_ids)}/{len(self.planned)}",
                          file=sys.stderr, flush=True)
                time.sleep(max(0.0, self.interval - (time.monotonic() - began)))
        except BaseException as exc:  # reported in the summary, never swallowed
            self.error = exc
        finally:
            self.finished_at = time.monotonic()

    def _send(self, chunk: list[PlannedJob]) -> list[str]:
        deadline = time.monotonic() + 120
        while True:
            try:
                return self.datapost.enqueue_many([p.write for p in chunk])
            except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError,
                    DatapostError) as exc:
                if isinstance(exc, DatapostError) and not _is_outage(exc):
                    raise
                if time.monotonic() > deadline:
                    raise
                self.resends += 1
                time.sleep(0.5)


def _is_outage(exc: BaseException) -> bool:
    """A DatapostError caused by Redis being unreachable (wrapped at the client's edge)."""
    cause = exc.__cause__ or exc.__context__
    return isinstance(cause, redis.RedisError)
