"""One delivery attempt for one job id: claim, run the provider, classify, record, reschedule.

The engine never raises into dramatiq: every outcome, including a bug in our own code, ends
in a recorded attempt and a state (retrying for the unexpected), so a worker never crashes on
a bad job and never loses one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import redis
from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_exponential

from ..config import DeliverySettings
from ..errors import DatapostError
from ..logging import get_logger
from ..queue import Publisher
from ..store.jobs import TERMINAL, Job, JobState, JobStore
from ..store.vault import LOAD_FIELDS as CREDENTIAL_FIELDS
from .outcomes import Delivered, DeliveryFailure, Outcome
from .retry import RetryPolicy

LEASE_SECONDS = 30.0
MAX_THROTTLE_DELAY = 86400.0
SWEEP_GRACE = 1800.0
ORPHAN_GRACE = 4 * LEASE_SECONDS  # a running job whose lease ran out this long ago is orphaned
STORE_OUTAGE_SECONDS = 60.0
STORE_OUTAGE = (redis.ConnectionError, redis.TimeoutError)  # BusyLoadingError included
T = TypeVar("T")

log = get_logger("datapost.delivery")


def outcome_label(decision: str) -> str:
    """The metric label for an attempt's decision."""
    for prefix, label in (("succeeded (deduplicated)", "deduplicated"), ("succeeded", "succeeded"),
                          ("throttled", "throttled"), ("retry", "retrying"), ("failed", "failed"),
                          ("parked", "parked"), ("dead", "dead")):
        if decision.startswith(prefix):
            return label
    return "unknown"


def retry_on_store_outage(retries: int, exc: BaseException) -> bool:
    """dramatiq's `retry_when` for the actor: a message whose run met a Redis outage (claim or
    bookkeeping failed) is sent again after a backoff instead of going to the dead-letter
    queue, where nothing would pick its job up for half an hour."""
    return isinstance(exc, STORE_OUTAGE) and retries < 1000


_OUTAGE_RETRYING = Retrying(retry=retry_if_exception_type(STORE_OUTAGE), reraise=True,
                            wait=wait_exponential(multiplier=0.25, max=5),
                            stop=stop_after_delay(STORE_OUTAGE_SECONDS))


def through_outage(call: Callable[[], T]) -> T:
    """Run a store write that carries an outcome, waiting out a short Redis outage (a
    restart): dropping it would deliver an already-landed job a second time.

    Tries again after 0.25 s, 0.5 s, 1 s, ... (at most 5 s apart) until STORE_OUTAGE_SECONDS
    have passed, then raises the last error; other errors are raised at once. One shared
    `Retrying` (its per-call state is thread-local): building one per call showed in the
    worker's profile."""
    return _OUTAGE_RETRYING(call)


@dataclass(frozen=True)
class _Step:
    """The state change an attempt ends with; `retry_in` seconds: send the message again."""

    state: JobState
    fields: dict[str, Any]
    retry_in: float | None = None


class ProviderDelivery(Protocol):
    """A platform's delivery: one attempt for one job, raising DeliveryFailure on failure."""

    def attempt(self, job: Job, trail: list[dict[str, Any]]) -> Delivered: ...


class DeliveryEngine:
    def __init__(self, *, jobs: JobStore, publisher: Publisher, policy: RetryPolicy,
                 providers: Mapping[str, ProviderDelivery], settings: DeliverySettings,
                 worker_id: str, on_finished: Callable[[Job, JobState], None] | None = None,
                 on_outcome: Callable[[str, str, float], None] | None = None,
                 finish_keys: Callable[[Job, JobState], tuple[Sequence[str], Sequence[str]]]
                 | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.jobs = jobs
        self.publisher = publisher
        self.policy = policy
        self.providers = providers
        self.settings = settings
        self.worker_id = worker_id
        self.on_finished = on_finished
        self.on_outcome = on_outcome
        self.finish_keys = finish_keys  # (delete, expire) keys of a job moving to a state
        self.clock = clock
        self._inflight: set[str] = set()
        self._lock = threading.Lock()

    # -- the actor body ----------------------------------------------------------------
    def run(self, job_id: str) -> None:
        # One round trip: the claim, the job record, its user's credential record and its
        # inline payload (the providers use the last two from `job.preloaded`).
        claim = self.jobs.claim_and_load(job_id, self.worker_id, LEASE_SECONDS, self.clock(),
                                         credential_fields=CREDENTIAL_FIELDS)
        if not claim.claimed:
            self._not_claimed(job_id, claim.previous, claim.lease_until)
            return
        with self._lock:
            self._inflight.add(job_id)
        try:
            try:
                job = claim.job()
            except DatapostError as exc:  # e.g. sealed under a master key no longer held
                self._unreadable(job_id, exc)
                return
            self._attempt(job)
        finally:
            with self._lock:
                self._inflight.discard(job_id)

    def _not_claimed(self, job_id: str, state: str, lease_until: float) -> None:
        if state == JobState.RUNNING:
            # Another worker holds a live lease (a duplicate message, or the message of a
            # worker that just died). Look again just after the lease would run out.
            wait = max(1.0, lease_until - self.clock() + 1.0)
            self.publisher.publish(job_id, delay_ms=int(wait * 1000))
            log.info("job held by another worker", job_id=job_id)
        elif state:
            log.info("job not runnable, message dropped", job_id=job_id, state=state)
        else:
            log.warning("message for an unknown job dropped", job_id=job_id)

    def _attempt(self, job: Job) -> None:
        started = self.clock()
        trail: list[dict[str, Any]] = []
        record: dict[str, Any] = {"run": job.runs, "started_at": started, "worker": self.worker_id}
        step: _Step | None = None
        try:
            provider = self.providers.get(job.provider)
            if provider is None:
                raise DeliveryFailure(Outcome.PERMANENT, f"no delivery for provider {job.provider!r}")
            delivered = provider.attempt(job, trail)
            record |= {"status": delivered.status, "decision": "succeeded"}
            step = _Step(JobState.SUCCEEDED, {"result": delivered.result, "error": ""})
        except DeliveryFailure as failure:
            record |= {"status": failure.status, "code": failure.code,
                       "error_class": str(failure.outcome), "message": failure.message}
            record["decision"], step = self._decide(job, failure)
        except Exception as exc:  # our bug: keep the job, retry it, say what happened
            log.exception("delivery crashed", job_id=job.id)
            failure = DeliveryFailure(Outcome.TRANSIENT, f"internal error: {type(exc).__name__}",
                                      error_class=type(exc).__name__)
            record |= {"error_class": "internal", "message": failure.message}
            record["decision"], step = self._decide(job, failure)
        finally:
            seconds = self.clock() - started
            record["duration_ms"] = round(seconds * 1000, 1)
            record["steps"] = trail
            if step is not None:  # the attempt record goes in with the state change
                self._apply(job, step, record)
            else:  # interrupted before an outcome (time limit, shutdown): history only
                through_outage(lambda: self.jobs.record_attempt(job.id, record))
            if self.on_outcome is not None:
                self.on_outcome(job.provider, outcome_label(record.get("decision", "")), seconds)

    def _unreadable(self, job_id: str, exc: DatapostError) -> None:
        log.error("job record unreadable", job_id=job_id, error=str(exc))
        self.jobs.move(job_id, JobState.FAILED, allowed_from=[JobState.RUNNING],
                       worker=self.worker_id, now=self.clock(),
                       fields={"error": {"class": "permanent", "error": type(exc).__name__,
                                         "message": f"job record unreadable: {exc}"}})

    # -- decisions ---------------------------------------------------------------------
    def _decide(self, job: Job, failure: DeliveryFailure) -> tuple[str, _Step]:
        """The attempt's decision (as recorded) and the state change that carries it out."""
        outcome = failure.outcome
        error = failure.to_record()
        if outcome is Outcome.ALREADY_STORED:
            return "succeeded (deduplicated)", _Step(JobState.SUCCEEDED, {"result": {
                "deduplicated": True, "message": failure.message}})
        if outcome is Outcome.PERMANENT:
            return "failed", _Step(JobState.FAILED, {"error": error})
        if outcome in (Outcome.NEEDS_SIGNIN, Outcome.TOKEN_EXPIRED):
            return "parked", _Step(JobState.PARKED, {"error": error})
        too_old = self.clock() - job.created_at > self.settings.job_max_age
        if outcome is Outcome.THROTTLED and not too_old:
            delay = min(MAX_THROTTLE_DELAY, max(1.0, failure.retry_after or 30.0))
            return (f"throttled: retry in {delay:.0f} s (budget kept)",
                    self._retry_later(delay, error, throttles=job.throttles + 1))
        failures = job.attempts + 1
        if too_old or self.policy.exhausted(failures):
            return "dead", _Step(JobState.DEAD, {"error": error, "attempts": failures})
        delay = self.policy.delay(job.attempts)
        return (f"retry {failures} in {delay:.1f} s",
                self._retry_later(delay, error, attempts=failures))

    def _retry_later(self, delay: float, error: dict, **counters: int) -> _Step:
        return _Step(JobState.RETRYING, {"error": error, "run_at": self.clock() + delay,
                                         **counters}, retry_in=delay)

    def _apply(self, job: Job, step: _Step, record: dict[str, Any]) -> None:
        """One script: the attempt record, the state change and (for a finished job) its
        inline leftovers; then the retry's message, or the rest of the cleanup."""
        delete, expire = self.finish_keys(job, step.state) if self.finish_keys else ((), ())
        moved, current = through_outage(lambda: self.jobs.move(
            job.id, step.state, allowed_from=[JobState.RUNNING], worker=self.worker_id,
            fields=step.fields, now=self.clock(), attempt=record, delete=delete, expire=expire))
        if not moved:
            log.warning("job changed under us; result not written", job_id=job.id,
                        wanted=str(step.state), current=current)
            return
        if step.retry_in is not None:
            through_outage(lambda: self.publisher.publish(job.id,
                                                          delay_ms=int(step.retry_in * 1000)))
            return
        log.info("job finished", job_id=job.id, provider=job.provider, state=str(step.state))
        if self.on_finished is not None and step.state in TERMINAL | {JobState.PARKED}:
            self.on_finished(job, step.state)

    # -- housekeeping (called from the recovery thread) --------------------------------
    def extend_leases(self) -> None:
        with self._lock:
            inflight = list(self._inflight)
        for job_id in inflight:
            self.jobs.extend_lease(job_id, self.worker_id, LEASE_SECONDS)

    def sweep(self, grace: float = SWEEP_GRACE) -> int:
        """Re-send messages for queued/retrying jobs long past their run time (a message
        lost between a state change and its publish, or with a Redis restart), and for
        running jobs whose lease ran out minutes ago (their worker and message are gone)."""
        now = self.clock()
        self.jobs.prune_expired(now)
        ids = self.jobs.overdue(now - grace)
        orphan_grace = min(grace, ORPHAN_GRACE)
        ids += [job_id for job_id in self.jobs.ids_in_state(JobState.RUNNING,
                                                             until=now - orphan_grace)
                if (job := self.jobs.get(job_id)) and job.lease_until < now - orphan_grace]
        for job_id in ids:
            self.publisher.publish(job_id)
            self.jobs.postpone_due(job_id, now)
        if ids:
            log.warning("re-sent overdue jobs", count=len(ids))
        return len(ids)
