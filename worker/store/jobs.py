"""The job store: one Redis hash per job, an index per state, a capped event stream,
per-attempt history and idempotency keys.

Every state change goes through a Lua script, so the record, its index, the parked set and
the event stream never disagree. What the caller asked to write (file name, descriptor,
record data) is sealed like the payload: a job record holds no user content in clear.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from importlib import resources
from typing import Any, NamedTuple

import redis

from ..errors import JobNotFound

PREFIX = "datapost:"
ATTEMPTS_KEPT = 100  # attempt records kept per job
CREATE_CHUNK = 100  # jobs per create-script call (Redis runs one call at a time)
CREATE_CHUNK_BYTES = 8 * 1024 * 1024


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


class QueuedMessage(NamedTuple):
    """A broker message to push in the same script that creates the job (Redis broker)."""

    queue_key: str
    message_id: str
    data: bytes


class NewJob(NamedTuple):
    """A job to create (`JobStore.create_many`). `payload` is a sealed inline payload to
    store with the job (not stored when the idempotency key is taken); `message` is the
    broker message pushed with it (Redis broker only). A tuple: bulk enqueues make many."""

    job_id: str
    provider: str
    op: str
    user: str
    spec: dict[str, Any]
    payload_fields: Mapping[str, Any]
    idempotency_key: str | None = None
    run_at: float = 0.0
    message: QueuedMessage | None = None
    payload: bytes | None = None


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
    # What `JobStore.claim_and_load` read with the claim: "credential" (the vault's
    # LOAD_FIELDS row of this job's user) and "payload" (the sealed inline payload or None).
    preloaded: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

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


_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}


def new_job_ids(count: int) -> list[str]:
    """`count` ids like `new_job_id()` (random UUID4s, 32 hex digits), from one read of the
    OS random source (uuid4() reads it once per id, which shows in a bulk enqueue)."""
    raw = os.urandom(16 * count).hex()
    return [f"{h[:12]}4{h[13:16]}{_VARIANT[h[16]]}{h[17:]}"
            for h in (raw[i:i + 32] for i in range(0, 32 * count, 32))]


def _script(client: redis.Redis, name: str):
    text = resources.files(__package__).joinpath("lua", name).read_text()
    return client.register_script(text)


_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))  # create-script headers
_SPEC_JSON = json.JSONEncoder(separators=(",", ":"))


def _text(value: Any) -> str:
    """A hash field value as redis-py would send it (str, int, float repr), JSON otherwise."""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value)


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
        `pipe`, queues the script and returns nothing; read the pair from the pipe result
        with `parse_create`."""
        job = NewJob(job_id=job_id, provider=provider, op=op, user=user, spec=spec,
                     payload_fields=payload_fields, idempotency_key=idempotency_key,
                     run_at=run_at, message=message)
        now = time.time() if now is None else now
        args = [*self._create_head(now), self.encode_new(job)]
        result = self._create(args=args, client=pipe if pipe is not None else self.redis)
        if pipe is not None:
            return None
        return parse_create(result)

    def create_many(self, jobs: Sequence[NewJob], *, now: float | None = None,
                    chunk: int = CREATE_CHUNK, chunk_bytes: int = CREATE_CHUNK_BYTES,
                    ) -> list[tuple[bool, str]]:
        """Create many queued jobs in one pipelined round trip. Returns (created, job_id) per
        job, in order; a job whose idempotency key was taken (before, or earlier in `jobs`)
        gives (False, that job's id) and stores nothing.

        One script call per `chunk` jobs (or `chunk_bytes` of arguments) creates each of its
        jobs whole (see create_job.lua). Calls are written to one connection as they are
        encoded and the replies read after the last, so Redis runs the first calls while
        the rest are encoded. Pass jobs that encode (JSON specs, UTF-8 strings): one that
        does not stops the sending there. A failed call (ResponseError) or such a stop is
        raised once every reply was read, with `created` set on the exception to the ids
        of the jobs the other calls created. A connection error is raised at once and never
        retried, since Redis may have run what it received.
        """
        if not jobs:
            return []
        now = time.time() if now is None else now
        head = ["EVAL", self._create.script, 0, *self._create_head(now)]
        pool = self.redis.connection_pool
        conn = pool.get_connection()
        calls, failure = 0, None
        try:
            try:
                for args in self._create_calls(jobs, chunk, chunk_bytes):
                    conn.send_packed_command(conn.pack_command(*head, *args),
                                             check_health=calls == 0)
                    calls += 1
            except (redis.ConnectionError, redis.TimeoutError):
                raise  # redis-py closed the connection
            except BaseException as exc:  # a job that does not encode, or an interrupt
                failure = exc
            try:
                replies = self._read_replies(conn, calls)
            except Exception:
                if failure is None:
                    raise
                replies = []
        finally:
            pool.release(conn)
        out: list[tuple[bool, str]] = []
        for reply in replies:
            if isinstance(reply, Exception):
                failure = failure or reply
            else:
                out += parse_created(reply)
        if failure is not None:
            failure.created = [job_id for created, job_id in out if created]  # type: ignore[attr-defined]
            raise failure
        if len(out) != len(jobs):
            raise RuntimeError(f"job creation answered for {len(out)} of {len(jobs)} jobs")
        return out

    def _create_calls(self, jobs: Sequence[NewJob], chunk: int,
                      chunk_bytes: int) -> Iterator[list[bytes]]:
        args: list[bytes] = []
        size = 0
        for job in jobs:
            encoded = self.encode_new(job)
            args.append(encoded)
            size += len(encoded)
            if len(args) >= chunk or size >= chunk_bytes:
                yield args
                args, size = [], 0
        if args:
            yield args

    @staticmethod
    def _read_replies(conn, count: int) -> list[Any]:
        """Every reply of `count` calls sent on `conn` (errors as values), so the connection
        goes back to the pool in step; on a connection error it is closed."""
        replies: list[Any] = []
        try:
            for _ in range(count):
                try:
                    replies.append(conn.read_response())
                except redis.ResponseError as exc:
                    replies.append(exc)
        except BaseException:
            conn.disconnect()
            raise
        return replies

    def _create_head(self, now: float) -> list[Any]:
        return [PREFIX, repr(float(now)), self.idempotency_ttl, self.events_maxlen]

    def encode_new(self, job: NewJob) -> bytes:
        """One job as the create script's argument (see create_job.lua): a JSON header line,
        then the sealed spec, the sealed inline payload (if any) and the message bytes."""
        job_id = job.job_id
        spec = self.keyring.seal(_SPEC_JSON.encode(job.spec).encode(),
                                 b"jobspec:" + job_id.encode())
        payload = job.payload
        message = job.message
        header = [job_id,
                  self.idempotency_key(job.provider, job.idempotency_key)
                  if job.idempotency_key else "",
                  message.queue_key if message else "", message.message_id if message else "",
                  len(spec), -1 if payload is None else len(payload),
                  job.provider, job.op, job.user, _text(job.run_at), job.idempotency_key or ""]
        for key, value in job.payload_fields.items():
            header += (key, _text(value))
        return b"".join((_JSON.encode(header).encode(), b"\n", spec, payload or b"",
                         message.data if message else b""))

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
        claim = self.claim_and_load(job_id, worker, lease_seconds, now, credential_fields=())
        return claim.claimed, claim.previous, claim.lease_until

    def claim_and_load(self, job_id: str, worker: str, lease_seconds: float,
                       now: float | None = None, *,
                       credential_fields: Sequence[str] = ()) -> Claim:
        """`claim`, and when it succeeds also read, in the same round trip, the job record,
        these fields of its user's credential record and its sealed inline payload (what a
        delivery attempt needs). `Claim.job()` decodes them."""
        now = time.time() if now is None else now
        reply = self._claim(args=[PREFIX, job_id, now, now + lease_seconds, worker,
                                  self.events_maxlen, *credential_fields])
        state = reply[1].decode() if isinstance(reply[1], bytes) else reply[1]
        lease = float(reply[2]) if len(reply) > 2 and reply[2] else 0.0
        claim = Claim(self, job_id, bool(reply[0]), state, lease)
        if claim.claimed and len(reply) > 3:
            flat = reply[3]
            claim.record = (dict(zip(flat[::2], flat[1::2], strict=True))
                            if isinstance(flat, list) else dict(flat))
            claim.credential = [_bulk(v) for v in reply[4]]
            claim.payload = _bulk(reply[5])
        return claim

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
             now: float | None = None, pipe: redis.client.Pipeline | None = None,
             attempt: Mapping[str, Any] | None = None, keep_attempts: int = ATTEMPTS_KEPT,
             delete: Sequence[str] = (), expire: Sequence[str] = ()):
        """Change state if the current one is in `allowed_from`; returns (moved, previous).

        In the same script: `attempt` is appended to the job's attempt history (whether or
        not the move is allowed, as long as the job exists), and after a move the keys in
        `delete` are deleted and those in `expire` get the record's TTL (e.g. its payload)."""
        now = time.time() if now is None else now
        ttl = self.result_ttl if to in TERMINAL else 0
        args = [PREFIX, job_id, str(to), now, ",".join(str(s) for s in allowed_from), worker,
                self.events_maxlen, ttl, note, *_flat(fields or {}),
                json.dumps(attempt, default=str) if attempt is not None else "", keep_attempts,
                len(delete), *delete, len(expire), *expire]
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

    def record_attempt(self, job_id: str, attempt: Mapping[str, Any],
                       keep: int = ATTEMPTS_KEPT) -> None:
        """Append to the attempt history on its own (`move(attempt=...)` does it with the
        state change)."""
        key = f"{self.key(job_id)}:attempts"
        pipe = self.redis.pipeline(transaction=False)
        pipe.rpush(key, json.dumps(attempt, default=str))
        pipe.ltrim(key, -keep, -1)
        pipe.execute()

    def events(self, count: int = 100) -> list[dict[str, str]]:
        entries = self.redis.xrevrange(f"{PREFIX}events", count=count)
        return [{k.decode(): v.decode() for k, v in fields.items()} | {"id": eid.decode()}
                for eid, fields in entries]


def _bulk(value: Any) -> bytes | None:
    """A value a Lua script returned: bytes, or None for a missing one (nil, or false,
    which a RESP3 connection reads as a boolean)."""
    return value if isinstance(value, bytes) else None


class Claim:
    """What `JobStore.claim_and_load` got: whether the job was claimed (and if not, its
    state and, when another worker holds it, that lease), and the records read with it."""

    def __init__(self, store: JobStore, job_id: str, claimed: bool, previous: str,
                 lease_until: float) -> None:
        self.store = store
        self.job_id = job_id
        self.claimed = claimed
        self.previous = previous
        self.lease_until = lease_until
        self.record: dict[bytes, bytes] | None = None
        self.credential: list[bytes | None] | None = None
        self.payload: bytes | None = None

    def __repr__(self) -> str:
        return (f"Claim(job_id={self.job_id!r}, claimed={self.claimed}, "
                f"previous={self.previous!r})")

    def job(self) -> Job:
        """The claimed job with what was read beside it in `Job.preloaded` (JobNotFound,
        or the unsealing error of a damaged record, as `JobStore.require` raises them)."""
        if self.record is None:
            return self.store.require(self.job_id)
        if not self.record:
            raise JobNotFound(f"no job {self.job_id!r}")
        job = self.store._decode(self.record)
        job.preloaded = {"credential": self.credential, "payload": self.payload}
        return job


def parse_created(result: bytes | str) -> list[tuple[bool, str]]:
    """The create script's answer: (created, job_id) per job."""
    text = result.decode() if isinstance(result, bytes) else result
    return [(True, entry[1:]) if entry[:1] == "+" else (False, entry)
            for entry in text.split(",")]


def parse_create(result: bytes | str) -> tuple[bool, str]:
    """(created, job_id) of a one-job `create` read from a pipeline's results."""
    (only,) = parse_created(result)
    return only
