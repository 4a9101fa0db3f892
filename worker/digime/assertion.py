"""Client assertions: the PS512 JWT that authenticates every digi.me API call (§1.1).

No iat/exp/aud: freshness is a single-use `nonce` plus a millisecond `timestamp`, so a new
assertion is built for every attempt (the SDK does this since v13.1; the server rejects a
reused nonce).
"""

from __future__ import annotations

import secrets
import string
import time
from collections.abc import Callable
from typing import Any, Protocol

NONCE_ALPHABET = string.ascii_letters + string.digits
NONCE_LENGTH = 32
RESERVED = frozenset({"client_id", "nonce", "timestamp"})


class Signer(Protocol):
    @property
    def client_id(self) -> str: ...

    def sign(self, claims: dict[str, Any]) -> str: ...


_ALPHABET_BYTES = NONCE_ALPHABET.encode("ascii")
_UNBIASED = 256 - 256 % len(NONCE_ALPHABET)  # bytes at or above this would favour some letters


def new_nonce() -> str:
    """32 characters from [A-Za-z0-9], drawn from the OS CSPRNG, each uniformly (random
    bytes below the largest multiple of 62 are mapped; the few above it are dropped). One
    read of the random source instead of 32 `secrets.choice` calls: this runs per request."""
    out = bytearray()
    while len(out) < NONCE_LENGTH:
        out += bytes(_ALPHABET_BYTES[b % len(_ALPHABET_BYTES)]
                     for b in secrets.token_bytes(NONCE_LENGTH + 8) if b < _UNBIASED)
    return out[:NONCE_LENGTH].decode("ascii")


def timestamp_ms(clock: Callable[[], float] = time.time) -> int:
    return int(clock() * 1000)


def build_assertion(signer: Signer, extra: dict[str, Any], *,
                    clock: Callable[[], float] = time.time) -> str:
    """Sign `extra` plus client_id, nonce and timestamp. None values are left out (the SDK's
    undefined claims); claims go out in name order, as the SDK sends them."""
    clash = RESERVED.intersection(extra)
    if clash:
        raise ValueError(f"claims {sorted(clash)} are set by the assertion itself")
    claims = {k: v for k, v in extra.items() if v is not None}
    claims.update(client_id=signer.client_id, nonce=new_nonce(), timestamp=timestamp_ms(clock))
    return signer.sign(dict(sorted(claims.items())))
