"""Pending sign-ins: single-use, short-lived, sealed, and bound to the browser that started.

A connect link points at the callback receiver (`/connect/<state>`), which binds the state to
that browser with a cookie and sends it on to the provider. When the provider sends the
browser back, the state must match the cookie, and it is taken out of Redis in the same
step it is read (GETDEL), so it works once.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from dataclasses import asdict, dataclass

import redis

from worker.crypto import Keyring

STATE = re.compile(r"^[A-Za-z0-9_-]{32,64}$")


@dataclass
class PendingSignin:
    state: str
    provider: str  # "digime" | "dataswyft"
    user: str
    provider_url: str  # where /connect sends the browser
    created_at: float
    code_verifier: str | None = None  # digi.me PKCE
    pda_domain: str | None = None  # Dataswyft: the PDA the user was sent to
    started: bool = False  # /connect was opened (by one browser)

    def __repr__(self) -> str:
        return f"PendingSignin(provider={self.provider!r}, user={self.user!r}, started={self.started})"


def new_state() -> str:
    return secrets.token_urlsafe(32)


class PendingSignins:
    def __init__(self, client: redis.Redis, keyring: Keyring, ttl: int) -> None:
        self.redis = client
        self.keyring = keyring
        self.ttl = ttl

    @staticmethod
    def key(state: str) -> str:
        return f"datapost:signin:{state}"

    def _seal(self, pending: PendingSignin) -> bytes:
        return self.keyring.seal(json.dumps(asdict(pending)).encode(),
                                 f"signin:{pending.state}".encode())

    def _open(self, state: str, blob: bytes | None) -> PendingSignin | None:
        if blob is None:
            return None
        return PendingSignin(**json.loads(self.keyring.open(blob, f"signin:{state}".encode())))

    def create(self, pending: PendingSignin) -> None:
        self.redis.set(self.key(pending.state), self._seal(pending), ex=self.ttl, nx=True)

    def start(self, state: str) -> tuple[PendingSignin | None, bool]:
        """Mark the link opened. Returns (pending, first_time); (None, False) when unknown or
        expired. A link opened a second time is not bound to a second browser."""
        if not STATE.match(state):
            return None, False
        key = self.key(state)
        with self.redis.pipeline() as pipe:
            try:
                pipe.watch(key)
                pending = self._open(state, pipe.get(key))
                if pending is None:
                    return None, False
                if pending.started:
                    return pending, False
                pending.started = True
                pipe.multi()
                pipe.set(key, self._seal(pending), keepttl=True, xx=True)
                pipe.execute()
                return pending, True
            except redis.WatchError:
                return self._open(state, self.redis.get(key)), False

    def take(self, state: str) -> PendingSignin | None:
        """Read and remove in one step: a state works once."""
        if not STATE.match(state or ""):
            return None
        return self._open(state, self.redis.getdel(self.key(state)))


def now() -> float:
    return time.time()
