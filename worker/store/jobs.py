"""The job store: one Redis hash per job, an index per state, a capped event stream,
per-attempt history and idempotency keys.

Every state change goes through a Lua script, so the record, its index, the parked set and
the event stream never disagree. What the caller asked to write (file name, descriptor,
record data) is sealed like the payload: a job record holds no user content in clear.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from importlib import resources
from typing import Any

import redis

from ..errors import JobNotFound

PREFIX = "datapost:"


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    RETRYING = "retrying"
    SUCCEEDED = "succeeded"
    PARKED = "parked"
    FAILED = "failed"
    DEAD = "dead"
    CANCELLED = "cancelled"


TERMINAL = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.DEAD, JobState.CANCELLED})
REPLAYABLE = frozenset({JobState.FAILED, JobState.DEAD, JobState.PARKED})
CANCELLABLE = frozenset({JobState.QUEUED, JobState.RETRYING, JobState.PARKED})


@dataclass(frozen=True)
class QueuedMessage:
    """A broker message to push in the same script that creates the job (Redis broker)."""

    queue_key: str
    message_id: str
    data: bytes


@dataclass
class Job:
    id: str
    provider: str
    op: str
    user: str
    state: JobState
    created_at: float
    updated_at: float
    spec: dict[str, Any] = field(repr=False)
    payload_kind: str = ""
    payload_size: int = 0
    attempts: int = 0
    throttles: int = 0
    runs: int = 0
    run_at: float = 0.0
    lease_until: float = 0.0
    worker: str = ""
    idempotency_key: str = ""
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL

    def summary(self) -> dict[str, Any]:
        """What status lookups and the CLI show: everything but the sealed request."""
        return {
            "id": self.id, "provider": self.provider, "op": self.op, "user": self.user,
            "state": str(self.state), "created_at": self.created_at, "updated_at": self.updated_at,
            "attempts": self.attempts, "throttles": self.throttles, "runs": self.runs,
            "run_at": self.run_at or None, "payload_size": self.payload_size,
            "idempotency_key": self.idempotency_key or None,
            "result": self.result, "error": self.error,
        }


def new_job_id() -> str:
    return uuid.uuid4().hex


def _script(client: redis.Redis, name: str):
    text = resources.files(__package__).joinpath("lua", name).read_text()
    return client.register_script(text)


def _flat(fields: Mapping[str, Any]) -> list[Any]:
    out: list[Any] = [len(fields)]
    for key, value in fields.items():
        out += [key, value if isinstance(value, bytes | str | int | float) else json.dumps(value)]
    return out


class JobStore:
    """Reads and changes job records. `keyring` seals each job's spec (see module doc)."""

    def __init__(self, client: redis.Redis, keyring, *, events_maxlen: int = 100_000,
                 result_ttl: int = 30 * 86400, idempotency_ttl: int = 86400) -> None:
        self.redis = client
        self.keyring = keyring
        self.events_maxlen = events_maxlen
        self.result_ttl = result_ttl
        self.idempotency_ttl = idempotency_ttl
        self._create = _script(client, "create_job.lua")
        self._claim = _script(client, "claim_job.lua")
        self._move = _script(client, "move_job.lua")

    # -- keys --------------------------------------------------------------------------
    @staticmethod
    def key(job_id: str) -> str:
        return f"{PREFIX}job:{job_id}"

    @staticmethod
    def idempotency_key(provider: str, key: str) -> str:
        return f"{PREFIX}idem:{provider}:{key}"

    # -- create ------------------------------------------------------------------------
    def create(self, *, job_id: str, provider: str, op: str, user: str, spec: dict[str, Any],
               payload_fields: Mapping[str, Any], idempotency_key: str | None = None,
               run_at: float = 0.0, message: QueuedMessage | None = None,
               pipe: redis.client.Pipeline | None = None, now: float | None = None):
        """Create a queued job (and push its message). Returns (created, job_id) — or, with
        `pipe`, queues the script and returns nothing; read the pair from the pipe result."""
        now = time.time() if now is None else now
        fields = {
            "id": job_id, "provider": provider, "op": op, "user": user,
            "spec": self.keyring.seal(json.dumps(spec).encode(), f"jobspec:{job_id}".encode()),
            "attempts": 0, "throttles": 0, "runs": 0, "run_at": run_at,
            "idempotency_key": idempotency_key or "", **payload_fields,
        }
        args = [
            PREFIX, job_id, now,
            self.idempotency_key(provider, idempotency_key) if idempotency_key else "",
            self.idempotency_ttl, self.events_maxlen,
            message.queue_key if message else "", message.message_id if message else "",
            message.data if message else b"", *_flat(fields),
        ]
        result = self._create(args=args, client=pipe or self.redis)
        if pipe is not None:
            return None
        return parse_create(result)

    def find_idempotent(self, provider: str, keys: Sequence[str]) -> list[str | None]:
        """Job ids already created for these idempotency keys (one round trip)."""
        if not keys:
            return []
        found = self.redis.mget([self.idempotency_key(provider, k) for k in keys])
        return [v.decode() if v else None for v in found]

    # -- read --------------------------------------------------------------------------
    def get(self, job_id: str) -> Job | None:
        raw = self.redis.hgetall(self.key(job_id))
        return self._decode(raw) if raw else None

    def require(self, job_id: str) -> Job:
        job = self.get(job_id)
        if job is None:
            raise JobNotFound(f"no job {job_id!r} (never created, or expired after its "
                              "result TTL)")
        return job

    def _decode(self, raw: Mapping[bytes, bytes]) -> Job:
        d = {k.decode(): v for k, v in raw.items()}
        job_id = d["id"].decode()
        spec = json.loads(self.keyring.open(d["spec"], f"jobspec:{job_id}".encode()))

        def text(name: str) -> str:
            return d[name].decode() if name in d else ""

        def number(name: str, kind=float):
            return kind(d[name]) if d.get(name) else kind(0)

        def obj(name: str):
            return json.loads(d[name]) if d.get(name) else None

        return Job(
            id=job_id, provider=text("provider"), op=text("op"), user=text("user"),
            state=JobState(text("state")), created_at=number("created_at"),
            updated_at=number("updated_at"), spec=spec, payload_kind=text("payload_kind"),
            payload_size=number("payload_size", int), attempts=number("attempts", int),
            throttles=number("throttles", int), runs=number("runs", int),
            run_at=number("run_at"), lease_until=number("lease_until"), worker=text("worker"),
            idempotency_key=text("idempotency_key"), result=obj("result"), error=obj("error"),
        )

    def attempts(self, job_id: str) -> list[dict[str, Any]]:
        return [json.loads(a) for a in self.redis.lrange(f"{self.key(job_id)}:attempts", 0, -1)]

    def counts(self) -> dict[str, int]:
        pipe = self.redis.pipeline(transaction=False)
        for state in JobState:
            pipe.zcard(f"{PREFIX}jobs:{state}")
        return {str(s): n for s, n in zip(JobState, pipe.execute(), strict=True)}

    def ids_in_state(self, state: JobState, *, since: float = 0, until: float = float("inf"),
                     limit: int | None = None) -> list[str]:
        ids = self.redis.zrangebyscore(f"{PREFIX}jobs:{state}", since, until,
                                       start=0 if limit else None, num=limit)
        return [i.decode() for i in ids]

    def prune_expired(self, now: float | None = None) -> int:
        """Drop index entries of finished jobs whose records expired (result TTL), so counts
        and metrics stay true."""
        cutoff = (time.time() if now is None else now) - self.result_ttl
        pipe = self.redis.pipeline(transaction=False)
        for state in TERMINAL:
            pipe.zremrangebyscore(f"{PREFIX}jobs:{state}", 0, cutoff)
        return sum(pipe.execute())

    def overdue(self, before: float, limit: int = 500) -> list[str]:
        """Queued or retrying jobs whose run time passed before `before` (sweeper input)."""
        ids = self.redis.zrangebyscore(f"{PREFIX}due", 0, before, start=0, num=limit)
        return [i.decode() for i in ids]

    def postpone_due(self, job_id: str, at: float) -> None:
        self.redis.zadd(f"{PREFIX}due", {job_id: at}, xx=True)

    def parked_ids(self, provider: str, user: str) -> list[str]:
        return [i.decode() for i in self.redis.smembers(f"{PREFIX}parked:{provider}:{user}")]

    # -- change ------------------------------------------------------------------------
    def claim(self, job_id: str, worker: str, lease_seconds: float,
              now: float | None = None) -> tuple[bool, str, float]:
        """Take a job for one attempt. Returns (claimed, previous_state, lease_until); the
        lease is only reported when another worker holds the job."""
        now = time.time() if now is None else now
        reply = self._claim(args=[PREFIX, job_id, now, now + lease_seconds, worker,
                                  self.events_maxlen])
        state = reply[1].decode() if isinstance(reply[1], bytes) else reply[1]
        lease = float(reply[2]) if len(reply) > 2 else 0.0
        return bool(reply[0]), state, lease

    def extend_lease(self, job_id: str, worker: str, lease_seconds: float) -> bool:
        """Push the lease forward while a long upload runs (only by the holder)."""
        key = self.key(job_id)
        with self.redis.pipeline() as pipe:
            try:
                pipe.watch(key)
                if pipe.hget(key, "worker") != worker.encode() or \
                        pipe.hget(key, "state") != b"running":
                    return False
                pipe.multi()
                pipe.hset(key, "lease_until", time.time() + lease_seconds)
                pipe.execute()
                return True
            except redis.WatchError:
                return False

    def move(self, job_id: str, to: JobState, *, allowed_from: Iterable[JobState],
             fields: Mapping[str, Any] | None = None, worker: str = "", note: str = "",
             now: float | None = None, pipe: redis.client.Pipeline | None = None):
        """Change state if the current one is in `allowed_from`; returns (moved, previous)."""
        now = time.time() if now is None else now
        ttl = self.result_ttl if to in TERMINAL else 0
        args = [PREFIX, job_id, str(to), now, ",".join(str(s) for s in allowed_from), worker,
                self.events_maxlen, ttl, note, *_flat(fields or {})]
        result = self._move(args=args, client=pipe or self.redis)
        if pipe is not None:
            return None
        ok, state = result
        return bool(ok), state.decode() if isinstance(state, bytes) else state

    def set_progress(self, job_id: str, progress: Mapping[str, Any]) -> None:
        """Where a multi-step delivery got to (e.g. a PDA file id), so a retry resumes at the
        right step. Only non-secret values belong here."""
        self.redis.hset(self.key(job_id), "progress", json.dumps(progress))

    def progress(self, job_id: str) -> dict[str, Any]:
        raw = self.redis.hget(self.key(job_id), "progress")
        return json.loads(raw) if raw else {}

    def record_attempt(self, job_id: str, attempt: Mapping[str, Any], keep: int = 100) -> None:
        key = f"{self.key(job_id)}:attempts"
        pipe = self.redis.pipeline(transaction=False)
        pipe.rpush(key, json.dumps(attempt, default=str))
        pipe.ltrim(key, -keep, -1)
        pipe.execute()

    def events(self, count: int = 100) -> list[dict[str, str]]:
        entries = self.redis.xrevrange(f"{PREFIX}events", count=count)
        return [{k.decode(): v.decode() for k, v in fields.items()} | {"id": eid.decode()}
                for eid, fields in entries]


def parse_create(result) -> tuple[bool, str]:
    created, job_id = result
    return bool(created), job_id.decode() if isinstance(job_id, bytes) else job_id
