"""digi.me access tokens that stay valid: proactive and reactive refresh, single-flight.

One refresh per credential at a time across every worker (a Redis lock whose TTL outlasts
the slowest token call). After taking the lock the credential is read again: if another
worker already refreshed, its tokens are used and no call is made. The rotated refresh
token is persisted (compare-and-set) before anything uses it.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import redis

from ..digime import DigimeClient, DigimeHTTPError, DigimeTransportError
from ..logging import Redactor, get_logger
from ..store import CredentialVault, DigimeCredential
from .locks import LockTimeout, RedisLock
from .outcomes import DeliveryFailure, Outcome

log = get_logger("datapost.tokens")


class DigimeTokenKeeper:
    def __init__(self, *, vault: CredentialVault, client: Callable[[], DigimeClient],
                 redis_client: redis.Redis, skew: float, lock_ttl: float,
                 redactor: Redactor | None = None, clock: Callable[[], float] = time.time,
                 on_refresh: Callable[[bool], None] | None = None) -> None:
        self.vault = vault
        self.client = client
        self.redis = redis_client
        self.skew = skew
        self.lock_ttl = lock_ttl
        self.redactor = redactor
        self.clock = clock
        self.on_refresh = on_refresh

    def expiring(self, cred: DigimeCredential) -> bool:
        return cred.access_expires_at - self.skew <= self.clock()

    def fresh(self, cred: DigimeCredential) -> DigimeCredential:
        """The credential with an access token that will not expire within the skew."""
        return self._refresh(cred, force=False) if self.expiring(cred) else cred

    def after_rejection(self, cred: DigimeCredential) -> DigimeCredential:
        """The provider rejected `cred`'s access token: refresh unless someone already did."""
        return self._refresh(cred, force=True)

    def _refresh(self, seen: DigimeCredential, force: bool) -> DigimeCredential:
        lock = RedisLock(self.redis, f"datapost:lock:refresh:digime:{seen.user}", self.lock_ttl)
        try:
            with lock.held(wait=self.lock_ttl):
                return self._refresh_locked(seen, force)
        except LockTimeout as exc:
            raise DeliveryFailure(Outcome.TRANSIENT, f"token refresh for this user is stuck: {exc}",
                                  error_class="LockTimeout") from None

    def _refresh_locked(self, seen: DigimeCredential, force: bool) -> DigimeCredential:
        current = self.vault.load("digime", seen.user)
        if current is None:
            raise DeliveryFailure(Outcome.PERMANENT, "the digi.me credential was deleted")
        if current.status != "active":
            raise DeliveryFailure(Outcome.NEEDS_SIGNIN, "the user must connect digi.me again "
                                  f"(credential {current.status})")
        if current.version != seen.version or (not force and not self.expiring(current)):
            return current  # another worker refreshed while we waited
        try:
            tokens = self.client().refresh(current.refresh_token)
        except DigimeHTTPError as exc:
            self._count(False)
            if exc.status in (400, 401):
                self.vault.set_status("digime", current.user, "needs_signin")
                raise DeliveryFailure(
                    Outcome.NEEDS_SIGNIN, f"refresh token rejected: {exc.code or exc.status} "
                    f"{exc.message}".strip(), status=exc.status, code=exc.code) from None
            outcome = Outcome.THROTTLED if exc.retry_after is not None else Outcome.TRANSIENT
            raise DeliveryFailure(outcome, f"token refresh failed: {exc.status} {exc.message}",
                                  status=exc.status, code=exc.code,
                                  retry_after=exc.retry_after) from None
        except DigimeTransportError as exc:
            self._count(False)
            raise DeliveryFailure(Outcome.TRANSIENT, f"token refresh failed: {exc}") from None
        if self.redactor is not None:
            self.redactor.remember(tokens.access_token)
            self.redactor.remember(tokens.refresh_token)
        updated = dataclasses.replace(
            current, access_token=tokens.access_token, access_expires_at=tokens.access_expires_at,
            refresh_token=tokens.refresh_token, refresh_expires_at=tokens.refresh_expires_at)
        if not self.vault.replace_tokens(updated, expected_version=current.version):
            log.warning("credential changed during refresh; using the stored one", user=seen.user)
        self._count(True)
        log.info("digi.me token refreshed", user=seen.user, forced=force)
        stored = self.vault.load("digime", seen.user)
        return stored if stored is not None else updated

    def _count(self, ok: bool) -> None:
        if self.on_refresh is not None:
            self.on_refresh(ok)
