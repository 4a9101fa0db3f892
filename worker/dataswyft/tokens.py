"""Dataswyft application tokens: reading claims, and verifying a token from the sign-in flow.

Two trust levels. A token the PDA just handed back over TLS (`X-Auth-Token` renewal) is read
with `decode_claims`, unverified, to learn its `iat`/`exp`. A token arriving through the
browser (the `/#/hatlogin` redirect) is attacker-controlled until `verify_token` passes: its
`iss` must equal the PDA the user was sent to *before* any key is fetched (so a forged `iss`
cannot make us call an arbitrary host), the algorithm is fixed to RS256, and the key is the
PDA's own `/publickey` PEM.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from .domains import DomainPolicy, normalise_pda_domain
from .errors import TokenError, http_error, transport_error

IDLE_TIMEOUT = 72 * 3600
MAX_TOKEN = 16 * 1024
MAX_PEM = 16 * 1024
MIN_RSA_BITS = 2048
REQUIRED_CLAIMS = ("iss", "sub", "iat", "exp", "jti", "application")
_B64URL = re.compile(r"[A-Za-z0-9_-]*")


@dataclass(frozen=True)
class TokenClaims:
    """What datapost needs from a token; `jti_prefix` (8 characters) is enough to tell
    renewals of one token from another in logs without exposing it."""

    iss: str
    iat: int
    exp: int
    application: str | None
    application_version: str | None
    jti_prefix: str | None


def _b64url(segment: str, what: str) -> bytes:
    if not _B64URL.fullmatch(segment) or len(segment) % 4 == 1:
        raise TokenError(f"token {what} is not base64url")
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        raise TokenError(f"token {what} is not base64url") from None


def _json_object(segment: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(_b64url(segment, what))
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise TokenError(f"token {what} is not JSON") from None
    if not isinstance(value, dict):
        raise TokenError(f"token {what} is not a JSON object")
    return value


def _split(token: object) -> tuple[dict[str, Any], dict[str, Any], bytes, str]:
    """(header, payload, signing input, signature segment) of a compact JWS."""
    if not isinstance(token, str) or not token:
        raise TokenError("token must be a non-empty string")
    if len(token) > MAX_TOKEN:
        raise TokenError(f"token is longer than {MAX_TOKEN} characters")
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenError("token is not a JWT (three dot-separated parts)")
    header = _json_object(parts[0], "header")
    payload = _json_object(parts[1], "payload")
    return header, payload, f"{parts[0]}.{parts[1]}".encode("ascii"), parts[2]


def _seconds(payload: dict[str, Any], name: str) -> int:
    value = payload.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise TokenError(f"token claim {name} is missing or not a number")
    return int(value)


def _optional_str(payload: dict[str, Any], name: str) -> str | None:
    value = payload.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise TokenError(f"token claim {name} is not a string")
    return value


def _claims(payload: dict[str, Any]) -> TokenClaims:
    iss = payload.get("iss")
    if not isinstance(iss, str) or not iss:
        raise TokenError("token claim iss is missing or not a string")
    jti = _optional_str(payload, "jti")
    return TokenClaims(iss=iss.lower(), iat=_seconds(payload, "iat"), exp=_seconds(payload, "exp"),
                       application=_optional_str(payload, "application"),
                       application_version=_optional_str(payload, "applicationVersion"),
                       jti_prefix=jti[:8] if jti else None)


def decode_claims(token: str) -> TokenClaims:
    """Claims of a token without checking its signature: only for tokens received from the
    PDA itself (a renewal over TLS). Malformed → TokenError."""
    _, payload, _, _ = _split(token)
    return _claims(payload)


def idle_expires_at(claims: TokenClaims, idle: int = IDLE_TIMEOUT) -> int:
    """When the PDA stops accepting this token for idleness (`iat` + 72 h); renewal moves it."""
    return claims.iat + idle


def usable_until(claims: TokenClaims, idle: int = IDLE_TIMEOUT) -> int:
    """The earlier of the idle limit and `exp` (which renewal never moves)."""
    return min(idle_expires_at(claims, idle), claims.exp)


class PublicKeyCache:
    """Each PDA's RSA public key from `<scheme>://<domain>/publickey` (text/plain SPKI PEM),
    cached per domain. Without a `policy` only the domain's syntax is checked (verify_token
    fetches for the expected domain, which the sign-in start validated).

    There is no rotation protocol: `refetch` after a signature failure, at most once per
    `min_refetch_interval` seconds per domain (a stream of forged tokens must not turn into a
    stream of requests to the PDA). Safe to share between threads."""

    def __init__(self, http: httpx.Client, scheme: str = "https", *,
                 policy: DomainPolicy | None = None, min_refetch_interval: float = 10.0) -> None:
        if scheme not in ("https", "http"):
            raise ValueError("scheme must be 'https' or 'http'")
        self.http = http
        self.scheme = scheme
        self.policy = policy
        self.min_refetch_interval = min_refetch_interval
        self._keys: dict[str, tuple[rsa.RSAPublicKey, float]] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"PublicKeyCache(scheme={self.scheme!r}, domains={len(self._keys)})"

    def _domain(self, domain: str) -> str:
        return self.policy.check(domain) if self.policy else normalise_pda_domain(domain)

    def get(self, domain: str) -> rsa.RSAPublicKey:
        domain = self._domain(domain)
        with self._lock:
            cached = self._keys.get(domain)
        return cached[0] if cached else self._fetch(domain)

    def refetch(self, domain: str) -> rsa.RSAPublicKey:
        domain = self._domain(domain)
        with self._lock:
            cached = self._keys.get(domain)
        if cached and time.monotonic() - cached[1] < self.min_refetch_interval:
            return cached[0]
        return self._fetch(domain)

    def _fetch(self, domain: str) -> rsa.RSAPublicKey:
        url = f"{self.scheme}://{domain}/publickey"
        try:
            response = self.http.get(url, headers={"Accept": "text/plain"}, follow_redirects=False)
        except httpx.TransportError as exc:
            raise transport_error(exc, operation="public key fetch") from None
        if not response.is_success:
            raise http_error(response, operation="public key fetch")
        key = _load_public_key(response.content)
        with self._lock:
            self._keys[domain] = (key, time.monotonic())
        return key


def _load_public_key(pem: bytes) -> rsa.RSAPublicKey:
    if len(pem) > MAX_PEM or b"-----BEGIN PUBLIC KEY-----" not in pem:
        raise TokenError("the PDA's /publickey is not a PEM public key")
    try:
        key = serialization.load_pem_public_key(pem.strip() + b"\n")
    except (ValueError, UnsupportedAlgorithm):
        raise TokenError("the PDA's /publickey PEM could not be parsed") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise TokenError("the PDA's /publickey is not an RSA key")
    if key.key_size < MIN_RSA_BITS:
        raise TokenError(f"the PDA's RSA key has {key.key_size} bits; at least {MIN_RSA_BITS} "
                         "are required")
    return key


def _signature_ok(key: rsa.RSAPublicKey, signing_input: bytes, signature: bytes) -> bool:
    try:
        key.verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())
        return True
    except InvalidSignature:
        return False


def verify_token(token: str, *, expected_domain: str, app_id: str, keys: PublicKeyCache,
                 now: float | None = None, skew: float = 60) -> TokenClaims:
    """Verify an application token from the sign-in redirect; TokenError says which check
    failed. Order matters: structure and `iss` first (no network), then the signature against
    the expected PDA's key, then application and times."""
    header, payload, signing_input, signature_b64 = _split(token)
    if header.get("alg") != "RS256":
        raise TokenError("token algorithm must be RS256 (got "
                         f"{str(header.get('alg'))[:20]!r})")
    if "crit" in header:
        raise TokenError("token header has critical extensions, which are not supported")
    expected = expected_domain.strip().lower() if isinstance(expected_domain, str) else ""
    if not expected:
        raise TokenError("expected PDA domain is empty")
    claims = _claims(payload)
    if claims.iss != expected:
        raise TokenError("token was issued by another PDA than the one the user signed in at")
    for name in REQUIRED_CLAIMS:
        if payload.get(name) in (None, ""):
            raise TokenError(f"token claim {name} is missing")
    _optional_str(payload, "sub")
    signature = _b64url(signature_b64, "signature")
    if not _signature_ok(keys.get(expected), signing_input, signature) and \
            not _signature_ok(keys.refetch(expected), signing_input, signature):
        raise TokenError("token signature does not verify against the PDA's public key")
    if claims.application != app_id:
        raise TokenError("token was issued to another application")
    now = time.time() if now is None else now
    if claims.exp <= now - skew:
        raise TokenError("token has expired (exp is past)")
    if idle_expires_at(claims) <= now - skew:
        raise TokenError("token is idle-expired (issued or renewed more than 72 hours ago)")
    if claims.iat > now + skew:
        raise TokenError("token is issued in the future (iat is ahead of this clock)")
    return claims
