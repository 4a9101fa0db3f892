"""digi.me delivery: one attempt of a postbox write or an import push for one job.

Token handling follows the official SDK, more carefully: refresh proactively when the token
expires within the skew; on `{"status":"pending"}` (postbox) or 401 (import) refresh once
and redo the upload once. A second `pending` means the file waits in the user's postbox
until they open digi.me: the job succeeded with delivery status `pending`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

from ..digime import (
    DigimeClient,
    DigimeError,
    DigimeHTTPError,
    DigimeTransportError,
    InvalidPublicKey,
    is_invalid_token,
)
from ..errors import DatapostError, PayloadError, PayloadMissing, SealError
from ..store import CredentialVault, DigimeCredential
from ..store.jobs import Job
from ..store.payloads import PayloadStore
from . import inputs
from .digime_tokens import DigimeTokenKeeper
from .limits import RateLimiter
from .outcomes import Delivered, DeliveryFailure, Outcome
from .retry import attempt_retrier

PERMANENT_STATUSES = {400, 403, 404, 405, 406, 409, 410, 413, 415, 422}


def classify(exc: DigimeError) -> DeliveryFailure:
    """Map a digi.me client error to exactly one outcome class."""
    if isinstance(exc, DigimeTransportError):
        return DeliveryFailure(Outcome.TRANSIENT, str(exc), error_class=type(exc).__name__)
    if isinstance(exc, InvalidPublicKey):
        return DeliveryFailure(Outcome.PERMANENT, f"postbox public key unusable: {exc}")
    if isinstance(exc, DigimeHTTPError):
        text = f"{exc.code}: {exc.message}" if exc.code else exc.message
        common = {"status": exc.status, "code": exc.code, "retry_after": exc.retry_after}
        if exc.status == 401 and is_invalid_token(exc):
            return DeliveryFailure(Outcome.TOKEN_EXPIRED, text, **common)
        if exc.status in (429, 503) and exc.retry_after is not None:
            return DeliveryFailure(Outcome.THROTTLED, text, **common)
        if exc.status == 429:
            return DeliveryFailure(Outcome.THROTTLED, text, **{**common, "retry_after": 30.0})
        if exc.status >= 500 or exc.status == 408:
            return DeliveryFailure(Outcome.TRANSIENT, text, **common)
        return DeliveryFailure(Outcome.PERMANENT, text, **common)
    return DeliveryFailure(Outcome.TRANSIENT, str(exc), error_class=type(exc).__name__)


class DigimeDelivery:
    def __init__(self, *, vault: CredentialVault, payloads: PayloadStore,
                 client: Callable[[], DigimeClient], keeper: DigimeTokenKeeper,
                 tries: int, max_wait: float, sleep: Callable[[float], None] = time.sleep,
                 limiter: RateLimiter | None = None,
                 on_upload: Callable[[int], None] | None = None) -> None:
        self.limiter = limiter
        self.vault = vault
        self.payloads = payloads
        self.client = client
        self.keeper = keeper
        self.retrier = attempt_retrier(tries=tries, max_wait=max_wait, sleep=sleep)
        self.on_upload = on_upload

    def attempt(self, job: Job, trail: list[dict[str, Any]]) -> Delivered:
        cred = self._credential(job)
        payload = self._payload(job)
        mode = job.spec["mode"]
        cred = self.keeper.fresh(cred)
        if mode == "import":
            return self._import(job, cred, payload, trail)
        return self._postbox(job, cred, payload, trail)

    # -- inputs ------------------------------------------------------------------------
    def _credential(self, job: Job) -> DigimeCredential:
        try:
            cred = inputs.credential(self.vault, "digime", job)
        except DatapostError as exc:
            raise DeliveryFailure(Outcome.TRANSIENT, f"credential unreadable: {exc}") from None
        if cred is None:
            raise DeliveryFailure(Outcome.PERMANENT, "no digi.me credential stored for this user")
        if cred.status != "active":
            raise DeliveryFailure(Outcome.NEEDS_SIGNIN,
                                  f"the user must connect digi.me again (credential {cred.status})")
        if job.spec["mode"] == "postbox" and not (cred.postbox_id and cred.postbox_public_key):
            raise DeliveryFailure(Outcome.PERMANENT, "the credential has no postbox")
        return cred

    def _payload(self, job: Job):
        try:
            return inputs.payload(self.payloads, job)
        except PayloadMissing as exc:
            raise DeliveryFailure(Outcome.PERMANENT, f"payload missing: {exc}") from None
        except SealError as exc:
            raise DeliveryFailure(Outcome.PERMANENT, f"payload unreadable: {exc}") from None

    # -- one upload with quick retries ---------------------------------------------------
    def _call(self, trail: list[dict[str, Any]], step: str, fn: Callable[[], Any]) -> Any:
        def once() -> Any:
            started = time.monotonic()
            try:
                with self.limiter.acquire("digime") if self.limiter else nullcontext():
                    result = fn()
            except (PayloadError, SealError) as exc:  # the stored payload is corrupt
                trail.append({"step": step, "class": "permanent", "error": type(exc).__name__})
                raise DeliveryFailure(Outcome.PERMANENT, f"payload unreadable: {exc}",
                                      error_class=type(exc).__name__) from None
            except DigimeError as exc:
                failure = classify(exc)
                trail.append({"step": step, "status": failure.status, "code": failure.code,
                              "class": str(failure.outcome),
                              "ms": round((time.monotonic() - started) * 1000, 1)})
                raise failure from None
            trail.append({"step": step, "status": 200,
                          "ms": round((time.monotonic() - started) * 1000, 1)})
            return result

        return self.retrier(once)

    def _postbox(self, job: Job, cred: DigimeCredential, payload, trail) -> Delivered:
        def upload(c: DigimeCredential):
            return self._call(trail, "postbox", lambda: self.client().write_postbox(
                access_token=c.access_token, postbox_id=c.postbox_id,
                public_key_pem=c.postbox_public_key, file_name=job.spec["file_name"],
                descriptor=job.spec["descriptor"], payload=payload))

        result = upload(cred)
        refreshed = False
        if result.status == "pending":
            trail.append({"step": "refresh", "reason": "postbox answered pending"})
            cred = self.keeper.after_rejection(cred)
            refreshed = True
            result = upload(cred)
        self._uploaded(payload.size)
        return Delivered({"mode": "postbox", "delivery_status": result.status,
                          "expires": result.expires, "refreshed": refreshed,
                          "bytes": payload.size}, status=200)

    def _import(self, job: Job, cred: DigimeCredential, payload, trail) -> Delivered:
        def push(c: DigimeCredential) -> None:
            self._call(trail, "import", lambda: self.client().push_import(
                access_token=c.access_token, descriptor=job.spec["descriptor"], payload=payload))

        refreshed = False
        try:
            push(cred)
        except DeliveryFailure as failure:
            if failure.outcome is not Outcome.TOKEN_EXPIRED:
                raise
            trail.append({"step": "refresh", "reason": "import answered 401"})
            cred = self.keeper.after_rejection(cred)
            refreshed = True
            try:
                push(cred)
            except DeliveryFailure as again:
                if again.outcome is Outcome.TOKEN_EXPIRED:
                    raise DeliveryFailure(Outcome.NEEDS_SIGNIN, "access token rejected after a "
                                          f"refresh: {again.message}", status=again.status,
                                          code=again.code) from None
                raise
        self._uploaded(payload.size)
        return Delivered({"mode": "import", "delivery_status": "delivered",
                          "refreshed": refreshed, "bytes": payload.size}, status=201)

    def _uploaded(self, size: int) -> None:
        if self.on_upload is not None:
            self.on_upload(size)
