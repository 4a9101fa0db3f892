"""Dataswyft delivery: one attempt of a record write, a batch, or a file upload.

Every answer's X-Auth-Token is kept (newest by iat). A file goes upload -> PUT to the
presigned URL (streamed, SSE header) -> complete; the file id is remembered, so a retry after
the PUT only completes, and an expired URL or an incomplete upload starts again from upload.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

from ..dataswyft import (
    DataswyftClient,
    DataswyftError,
    DataswyftHTTPError,
    DataswyftTransportError,
    S3Error,
    validate_pda_domain,
)
from ..errors import DatapostError, PayloadError, PayloadMissing, SealError, ValidationError
from ..store import CredentialVault, DataswyftCredential, PayloadStore
from ..store.jobs import Job, JobStore
from . import inputs
from .dataswyft_tokens import PdaTokenKeeper
from .limits import RateLimiter
from .outcomes import Delivered, DeliveryFailure, Outcome
from .retry import attempt_retrier

MAX_RESTARTS = 2


def classify(exc: DataswyftError) -> DeliveryFailure:
    """Map a Dataswyft client error to exactly one outcome class."""
    if isinstance(exc, DataswyftTransportError):
        return DeliveryFailure(Outcome.TRANSIENT, str(exc), error_class=type(exc).__name__)
    if isinstance(exc, S3Error):
        outcome = Outcome.TRANSIENT if exc.transient else Outcome.PERMANENT
        return DeliveryFailure(outcome, f"file storage: {exc}", status=exc.status, code=exc.code)
    if not isinstance(exc, DataswyftHTTPError):
        return DeliveryFailure(Outcome.TRANSIENT, str(exc), error_class=type(exc).__name__)
    common = {"status": exc.status, "code": exc.title, "retry_after": exc.retry_after}
    text = exc.readable
    if exc.duplicate:
        return DeliveryFailure(Outcome.PERMANENT, text, **common)  # caller may upgrade
    if exc.not_authenticated:
        return DeliveryFailure(Outcome.NEEDS_SIGNIN, f"the PDA refused the token: {text}", **common)
    if exc.hat_unavailable or exc.status >= 500 or exc.status == 408:
        return DeliveryFailure(Outcome.TRANSIENT, text, **common)
    if exc.status in (429, 503):
        return DeliveryFailure(Outcome.THROTTLED, text,
                               **{**common, "retry_after": exc.retry_after or 30.0})
    return DeliveryFailure(Outcome.PERMANENT, text, **common)


class _Session:
    """One attempt's view: the newest credential and whether a request may have landed."""

    def __init__(self, cred: DataswyftCredential, domain: str, maybe_sent: bool) -> None:
        self.cred = cred
        self.domain = domain
        self.maybe_sent = maybe_sent


class DataswyftDelivery:
    def __init__(self, *, vault: CredentialVault, payloads: PayloadStore, jobs: JobStore,
                 client: DataswyftClient, keeper: PdaTokenKeeper,
                 allowed_suffixes: tuple[str, ...], sandbox_mode: bool, tries: int,
                 max_wait: float, sleep: Callable[[float], None] = time.sleep,
                 limiter: RateLimiter | None = None,
                 on_upload: Callable[[int], None] | None = None) -> None:
        self.limiter = limiter
        self.vault = vault
        self.payloads = payloads
        self.jobs = jobs
        self.client = client
        self.keeper = keeper
        self.allowed_suffixes = allowed_suffixes
        self.sandbox_mode = sandbox_mode
        self.retrier = attempt_retrier(tries=tries, max_wait=max_wait, sleep=sleep)
        self.on_upload = on_upload

    def attempt(self, job: Job, trail: list[dict[str, Any]]) -> Delivered:
        session = self._session(job)
        payload = self._payload(job)
        if job.op == "file":
            return self._file(job, session, payload, trail)
        body = json.loads(payload.read())
        if job.op == "batch":
            result = self._call(session, trail, "batch", lambda t: self.client.create_batch(
                session.domain, t, body))
        else:
            spec = job.spec
            result = self._call(session, trail, "records", lambda t: self.client.create_records(
                session.domain, t, spec["namespace"], spec["endpoint"], body,
                skip_errors=spec.get("skip_errors", False)))
        ids = [r.get("recordId") for r in result.records]
        return Delivered({"op": job.op, "recordIds": ids, "count": len(ids)}, status=201)

    # -- inputs ------------------------------------------------------------------------
    def _session(self, job: Job) -> _Session:
        try:
            cred = inputs.credential(self.vault, "dataswyft", job)
        except DatapostError as exc:
            raise DeliveryFailure(Outcome.TRANSIENT, f"credential unreadable: {exc}") from None
        if not isinstance(cred, DataswyftCredential):
            raise DeliveryFailure(Outcome.PERMANENT, "no Dataswyft credential stored for this user")
        if cred.status != "active":
            raise DeliveryFailure(Outcome.NEEDS_SIGNIN,
                                  f"the user must sign in to their PDA again ({cred.status})")
        reason = self.keeper.usable(cred)
        if reason is not None:
            self.keeper.needs_signin(cred)
            raise DeliveryFailure(Outcome.NEEDS_SIGNIN, reason)
        try:
            domain = validate_pda_domain(cred.pda_domain, allowed_suffixes=self.allowed_suffixes,
                                         sandbox_mode=self.sandbox_mode)
        except ValidationError as exc:
            raise DeliveryFailure(Outcome.PERMANENT, f"PDA domain refused: {exc}") from None
        return _Session(cred, domain, maybe_sent=job.runs > 1)

    def _payload(self, job: Job):
        try:
            return inputs.payload(self.payloads, job)
        except (PayloadMissing, SealError) as exc:
            raise DeliveryFailure(Outcome.PERMANENT, f"payload unreadable: {exc}") from None

    # -- one call with quick retries and token bookkeeping -------------------------------
    def _call(self, session: _Session, trail: list, step: str, fn: Callable[[str], Any]) -> Any:
        def once() -> Any:
            started = time.monotonic()
            slot = (self.limiter.acquire("dataswyft", session.domain) if self.limiter
                    else nullcontext())
            try:
                with slot:
                    result = fn(session.cred.token)
            except DataswyftError as exc:
                self._keep_token(session, getattr(exc, "new_token", None))
                failure = self._failure(session, exc)
                trail.append({"step": step, "status": failure.status, "code": failure.code,
                              "class": str(failure.outcome),
                              "ms": round((time.monotonic() - started) * 1000, 1)})
                raise failure from None
            except (PayloadError, SealError) as exc:
                raise DeliveryFailure(Outcome.PERMANENT, f"payload unreadable: {exc}") from None
            self._keep_token(session, getattr(result, "new_token", None))
            trail.append({"step": step, "status": 200,
                          "ms": round((time.monotonic() - started) * 1000, 1)})
            return result

        return self.retrier(once)

    def _failure(self, session: _Session, exc: DataswyftError) -> DeliveryFailure:
        failure = classify(exc)
        if isinstance(exc, DataswyftHTTPError) and exc.duplicate and session.maybe_sent:
            return DeliveryFailure(Outcome.ALREADY_STORED, "the PDA already holds this data "
                                   "(an earlier try landed)", status=exc.status, code=exc.title)
        if failure.outcome is Outcome.NEEDS_SIGNIN:
            self.keeper.needs_signin(session.cred)
        if failure.outcome is Outcome.TRANSIENT:
            session.maybe_sent = True
        return failure

    def _keep_token(self, session: _Session, token: str | None) -> None:
        session.cred = self.keeper.renewed(session.cred, token)

    # -- files -------------------------------------------------------------------------
    def _file(self, job: Job, session: _Session, payload, trail: list) -> Delivered:
        meta = job.spec["metadata"]
        progress = self.jobs.progress(job.id)
        for _ in range(MAX_RESTARTS + 1):
            if progress.get("stage") != "uploaded":
                ticket = self._call(session, trail, "file-upload",
                                    lambda t: self.client.start_upload(session.domain, t, meta))
                progress = {"file_id": ticket.file_id, "stage": "started"}
                self.jobs.set_progress(job.id, progress)
                try:
                    self._call(session, trail, "file-put", lambda _t, url=ticket.content_url:
                               self.client.put_content(url, payload, meta.get("contentType")))
                except DeliveryFailure as failure:
                    if failure.status == 403:  # the presigned URL expired: ask for a new one
                        trail.append({"step": "restart", "reason": "presigned URL refused"})
                        continue
                    raise
                progress = {"file_id": ticket.file_id, "stage": "uploaded"}
                self.jobs.set_progress(job.id, progress)
            file_id = progress["file_id"]
            try:
                done = self._call(session, trail, "file-complete",
                                  lambda t, f=file_id: self.client.complete_upload(
                                      session.domain, t, f))
            except DeliveryFailure as failure:
                if failure.status == 400 and "File not available" in failure.message:
                    trail.append({"step": "restart", "reason": "upload incomplete"})
                    progress = {}
                    continue
                raise
            if self.on_upload is not None:
                self.on_upload(payload.size)
            status = done.metadata.get("status", {})
            return Delivered({"op": "file", "fileId": file_id,
                              "size": status.get("size", payload.size),
                              "status": status.get("status")}, status=200)
        raise DeliveryFailure(Outcome.TRANSIENT, "file upload restarted too often")
