"""Operations for people running datapost: find and inspect jobs, replay or cancel them,
list and revoke credentials, and the numbers that say whether delivery is healthy.

Everything here reads the same records the workers write (the job hashes, the per-state
indexes, the attempt lists, the `datapost:events` stream, the credential metadata and the
broker's queues) and shows only what `Job.summary()` and `CredentialInfo` already expose:
never a job's sealed request, a payload byte, a token or a key.

Choices (README, "Operator commands"):

* **Replay** (`failed`, `dead`, `parked` → `queued`): the job keeps its id, its attempt
  history and its last error; `attempts` goes back to 0, so the retry budget starts again;
  `run_at` is cleared, the payload's expiry (failed and dead jobs keep theirs for the result
  TTL) is removed, and a new message is published. A parked job is replayed as it is: if
  its credential still needs a sign-in, the first attempt parks it again. The job's age
  (`DATAPOST_JOB_MAX_AGE`, counted from its creation) is not reset.
* **Cancel** (`queued`, `retrying`, `parked` → `cancelled`): its payload is deleted at once;
  a message still in the queue finds a non-runnable job and is dropped by the worker.
  A running job cannot be cancelled (its attempt is already under way).
* **Revoke** a credential: its tokens are deleted (the sealed record is removed) and a
  `revoked` entry stays in the listing (`CredentialVault.revoke`). Queued and retrying jobs
  for that user then fail permanently at their next attempt ("no credential stored"),
  replayable once the user connects again; parked jobs stay parked and resume on their own
  when the user connects again; new enqueues are refused. Jobs are not cancelled.
"""

from __future__ import annotations

import heapq
import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict
from typing import Any

from worker.errors import CredentialNotFound, JobNotFound, ValidationError
from worker.store import keys
from worker.store.credentials import check_provider, check_user
from worker.store.jobs import CANCELLABLE, PREFIX, REPLAYABLE, JobState
from worker.store.payloads import check_job_id

from .client import Datapost
from .ops_input import check_state, parse_duration, parse_time, window_label
from .ops_stats import DEFAULT_WINDOWS, HealthNumbers

__all__ = ["HealthNumbers", "Operations", "check_state", "parse_duration", "parse_time",
           "window_label"]

MAX_LIST = 10_000
PAGE = 500
EVENT_PAGE = 2000
CLOCK_SKEW = 300.0
_LIST_FIELDS = ("id", "state", "provider", "op", "user", "created_at", "updated_at", "attempts",
                "runs", "throttles", "run_at", "error")

Progress = Callable[[int, int, str], None]


def _check_ids(job_ids: Sequence[str]) -> list[str]:
    if not job_ids:
        raise ValidationError("no job id given")
    out: list[str] = []
    for job_id in job_ids:
        try:
            check_job_id(job_id)
        except ValidationError:
            raise ValidationError(f"{job_id!r} is not a job id (letters, digits, '-', '_')") from None
        if job_id not in out:
            out.append(job_id)
    return out


def _text(value: bytes | None) -> str:
    return value.decode() if value is not None else ""


def _number(value: bytes | None, kind=float):
    try:
        return kind(value) if value else kind(0)
    except ValueError:
        return kind(0)


class Operations:
    """Operator actions on one datapost installation (the producer API's Redis and broker)."""

    def __init__(self, datapost: Datapost, *, clock: Callable[[], float] = time.time) -> None:
        self.datapost = datapost
        self.stores = datapost.stores
        self.jobs = datapost.stores.jobs
        self.redis = datapost.stores.redis
        self.clock = clock

    # -- listing -------------------------------------------------------------------------
    def list_jobs(self, state: str | None = None, provider: str | None = None,
                  user: str | None = None, since: float | None = None,
                  until: float | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Jobs newest first (by when they entered their current state), from the per-state
        indexes; provider and user are matched against each record."""
        if not 1 <= limit <= MAX_LIST:
            raise ValidationError(f"limit must be from 1 to {MAX_LIST}")
        states = [check_state(state)] if state else list(JobState)
        return list(self._matching(states, provider, user, since, until, limit))

    def matching_ids(self, state: str, provider: str | None = None, user: str | None = None,
                     since: float | None = None, until: float | None = None) -> list[str]:
        """Every replayable job of `state` that matches the filters (for a bulk replay)."""
        wanted = check_state(state, sorted(REPLAYABLE), what="state to replay")
        return [row["id"] for row in self._matching([wanted], provider, user, since, until, None)]

    def _matching(self, states: Sequence[JobState], provider: str | None, user: str | None,
                  since: float | None, until: float | None,
                  limit: int | None) -> Iterator[dict[str, Any]]:
        if provider is not None:
            check_provider(provider)
        if since is not None and until is not None and since > until:
            raise ValidationError("--since is later than --until")
        low = "-inf" if since is None else since
        high = "+inf" if until is None else until
        merged = heapq.merge(*(self._index(s, low, high) for s in states), key=lambda r: -r[1])
        found = 0
        while limit is None or found < limit:
            batch = [job_id for job_id, _ in _take(merged, 200)]
            if not batch:
                return
            for row in self._rows(batch):
                if row is None or (provider and row["provider"] != provider) or \
                        (user is not None and row["user"] != user):
                    continue
                yield row
                found += 1
                if limit is not None and found >= limit:
                    return

    def _index(self, state: JobState, low, high) -> Iterator[tuple[str, float]]:
        offset = 0
        while True:
            page = self.redis.zrevrangebyscore(f"{PREFIX}jobs:{state}", high, low, start=offset,
                                               num=PAGE, withscores=True)
            for job_id, score in page:
                yield job_id.decode(), score
            if len(page) < PAGE:
                return
            offset += PAGE

    def _rows(self, job_ids: Sequence[str]) -> list[dict[str, Any] | None]:
        """List rows straight from the hashes (no unsealing): None for an expired record."""
        pipe = self.redis.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.hmget(self.jobs.key(job_id), _LIST_FIELDS)
        rows: list[dict[str, Any] | None] = []
        for values in pipe.execute():
            if values[0] is None:
                rows.append(None)
                continue
            d = dict(zip(_LIST_FIELDS, values, strict=True))
            error = None
            if d["error"]:
                try:
                    error = json.loads(d["error"])
                except ValueError:
                    error = None
            rows.append({
                "id": _text(d["id"]), "state": _text(d["state"]), "provider": _text(d["provider"]),
                "op": _text(d["op"]), "user": _text(d["user"]),
                "created_at": _number(d["created_at"]), "updated_at": _number(d["updated_at"]),
                "attempts": _number(d["attempts"], int), "runs": _number(d["runs"], int),
                "throttles": _number(d["throttles"], int),
                "run_at": _number(d["run_at"]) or None, "error": error or None,
            })
        return rows

    # -- one job -------------------------------------------------------------------------
    def show_job(self, job_id: str) -> dict[str, Any]:
        """The job's summary, every attempt (newest last) and its events from the stream."""
        [job_id] = _check_ids([job_id])
        job = self.jobs.require(job_id)
        events, complete = self._job_events(job_id, job.created_at)
        return {"job": job.summary(), "attempts": self.jobs.attempts(job_id), "events": events,
                "events_complete": complete}

    def _job_events(self, job_id: str, created_at: float) -> tuple[list[dict[str, Any]], bool]:
        """Scan the stream from the job's creation on. The stream is capped, so an old job's
        first events may be gone: `complete` says whether its creation is still there."""
        stream = f"{PREFIX}events"
        # Stream ids carry the Redis server's clock; allow for skew against the job's time.
        start = f"{max(0, int((created_at - CLOCK_SKEW) * 1000))}-0"
        events: list[dict[str, Any]] = []
        scanned, limit = 0, max(2 * self.jobs.events_maxlen, 10_000)
        while scanned < limit:
            page = self.redis.xrange(stream, min=start, max="+", count=EVENT_PAGE)
            if not page:
                break
            for _entry_id, raw in page:
                fields = {k.decode(): v.decode() for k, v in raw.items()}
                if fields.get("job") == job_id:
                    events.append({"at": _number(fields.get("at", "").encode()),
                                   "from": fields.get("from") or None, "to": fields.get("to"),
                                   "worker": fields.get("worker") or None,
                                   "note": fields.get("note") or None})
            scanned += len(page)
            if len(page) < EVENT_PAGE:
                break
            start = "(" + page[-1][0].decode()
        complete = bool(events) and events[0]["from"] is None and events[0]["to"] == "queued"
        return events, complete

    # -- replay and cancel -----------------------------------------------------------------
    def replay(self, job_ids: Sequence[str], *, progress: Progress | None = None,
               note: str = "replayed by an operator") -> list[dict[str, Any]]:
        """Queue failed, dead or parked jobs again. Every id is checked first: an unknown id
        or a job in another state changes nothing (JobNotFound / ValidationError)."""
        ids = self._require_in(job_ids, REPLAYABLE, "replayed")
        return self._replay_each(ids, progress, note)

    def replay_matching(self, state: str, provider: str | None = None, user: str | None = None,
                        since: float | None = None, until: float | None = None, *,
                        progress: Progress | None = None,
                        confirm: Callable[[int], bool] | None = None) -> dict[str, Any]:
        """Replay every job in `state` (failed, dead or parked) that matches the filters.
        `confirm(n)` may refuse once the number is known."""
        ids = self.matching_ids(state, provider, user, since, until)
        if ids and confirm is not None and not confirm(len(ids)):
            return {"matched": len(ids), "replayed": 0, "confirmed": False, "jobs": []}
        results = self._replay_each(ids, progress, f"replayed by an operator (bulk, {state})")
        return {"matched": len(ids), "replayed": sum(r["replayed"] for r in results),
                "confirmed": True, "jobs": results}

    def _replay_each(self, ids: Sequence[str], progress: Progress | None,
                     note: str) -> list[dict[str, Any]]:
        results = []
        for n, job_id in enumerate(ids, 1):
            result = self._replay_one(job_id, note)
            results.append(result)
            if progress is not None:
                progress(n, len(ids), f"{job_id} " + (f"{result['from']} -> queued"
                                                      if result["replayed"]
                                                      else f"skipped: {result['reason']}"))
        return results

    def _replay_one(self, job_id: str, note: str) -> dict[str, Any]:
        kind = _text(self.redis.hget(self.jobs.key(job_id), "payload_kind"))
        if not self._payload_present(job_id, kind):
            return {"id": job_id, "replayed": False, "from": None,
                    "reason": "its payload is gone (expired or deleted); enqueue it again"}
        moved, previous = self.jobs.move(
            job_id, JobState.QUEUED, allowed_from=REPLAYABLE, note=note, now=self.clock(),
            fields={"attempts": 0, "run_at": 0, "lease_until": 0})
        if not moved:
            return {"id": job_id, "replayed": False, "from": previous or None,
                    "reason": f"it is {previous} now" if previous else "it no longer exists"}
        if kind == "inline":
            self.redis.persist(keys.payload(job_id))
        self.datapost.publisher.publish(job_id)
        return {"id": job_id, "replayed": True, "from": previous, "reason": None}

    def _payload_present(self, job_id: str, kind: str) -> bool:
        if kind == "inline":
            return bool(self.redis.exists(keys.payload(job_id)))
        if kind == "file":
            payloads = self.stores.payloads
            # Without the shared payload volume on this machine we cannot tell: let it run.
            return not payloads.directory.is_dir() or payloads.path(job_id).is_file()
        return True

    def cancel(self, job_ids: Sequence[str]) -> list[dict[str, Any]]:
        """Cancel queued, retrying or parked jobs and delete their payloads. Every id is
        checked first, like `replay`."""
        from worker.store.payloads import PayloadRef

        ids = self._require_in(job_ids, CANCELLABLE, "cancelled")
        results = []
        for job_id in ids:
            record = self.redis.hmget(self.jobs.key(job_id), ["payload_kind", "payload_size"])
            moved, previous = self.jobs.move(job_id, JobState.CANCELLED, allowed_from=CANCELLABLE,
                                             note="cancelled by an operator", now=self.clock())
            if moved and _text(record[0]) in ("inline", "file"):
                self.stores.payloads.delete(job_id, PayloadRef(_text(record[0]),  # type: ignore[arg-type]
                                                               _number(record[1], int)))
            results.append({"id": job_id, "cancelled": moved, "from": previous or None,
                            "reason": None if moved else
                            (f"it is {previous} now" if previous else "it no longer exists")})
        return results

    def _require_in(self, job_ids: Sequence[str], allowed: frozenset[JobState],
                    verb: str) -> list[str]:
        ids = _check_ids(job_ids)
        pipe = self.redis.pipeline(transaction=False)
        for job_id in ids:
            pipe.hget(self.jobs.key(job_id), "state")
        states = [_text(s) for s in pipe.execute()]
        missing = [i for i, s in zip(ids, states, strict=True) if not s]
        if missing:
            raise JobNotFound(f"no job {missing[0]!r} (never created, or expired after its "
                              f"result TTL)" + (f"; {len(missing) - 1} more unknown"
                                                if len(missing) > 1 else ""))
        names = ", ".join(sorted(str(s) for s in allowed))
        wrong = [(i, s) for i, s in zip(ids, states, strict=True) if s not in allowed]
        if wrong:
            job_id, state = wrong[0]
            raise ValidationError(f"job {job_id} is {state}: only {names} jobs can be {verb}"
                                  + (f" ({len(wrong) - 1} more)" if len(wrong) > 1 else "")
                                  + "; nothing was changed")
        return ids

    # -- credentials -----------------------------------------------------------------------
    def credentials(self, provider: str | None = None) -> list[dict[str, Any]]:
        """Metadata of every stored credential (status, version, key id, expiry, PDA domain):
        nothing is unsealed."""
        return [asdict(info) for info in self.stores.vault.list(provider)]

    def revoke_credential(self, provider: str, user: str) -> dict[str, Any]:
        """Delete the user's tokens and mark the credential revoked (see the module doc for
        what happens to their jobs)."""
        check_provider(provider)
        check_user(user)
        if not self.stores.vault.revoke(provider, user):
            raise CredentialNotFound(f"no {provider} credential for user {user!r}")
        parked = self.jobs.parked_ids(provider, user)
        return {"provider": provider, "user": user, "status": "revoked", "tokens_deleted": True,
                "parked_jobs": len(parked)}

    # -- numbers ---------------------------------------------------------------------------
    def stats(self, windows: Sequence[int] = DEFAULT_WINDOWS) -> dict[str, Any]:
        """Queue depth, jobs in flight, jobs by state and the success rate by provider."""
        return HealthNumbers(self.datapost, clock=self.clock).stats(windows)


def _take(iterator: Iterator, n: int) -> list:
    out = []
    for item in iterator:
        out.append(item)
        if len(out) >= n:
            break
    return out
