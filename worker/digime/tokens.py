"""Verifying digi.me's response tokens, and reading the token set out of one.

The SDK fetches whatever `jku` a token names, on every call. Here the JWKS URL is pinned to
`<api_url>jwks/oauth` (a token pointing elsewhere is rejected without any request), the
JWKS is cached, and an unknown `kid` triggers at most one refetch per interval.
"""

from __future__ import annotations

import base64
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from .errors import DigimeProtocolError, TokenVerificationError, http_error, transport_error

MIN_KEY_BITS = 2048
_DEFAULT_PORTS = {"http": 80, "https": 443}


class TokenVerifier:
    """Checks PS512 (PSS salt 64) tokens against the pinned, cached JWKS. Thread-safe; one
    per process, shared by every client, passed in by the caller."""

    def __init__(self, http: httpx.Client, api_url: str, *, min_refetch_interval: float = 60.0,
                 leeway: float = 0.0, clock: Callable[[], float] = time.monotonic) -> None:
        if not api_url.endswith("/"):
            api_url += "/"
        self.jwks_url = api_url + "jwks/oauth"
        self._pinned = _canonical(self.jwks_url)
        self._http = http
        self._min_interval = min_refetch_interval
        self._leeway = leeway
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: dict[str, rsa.RSAPublicKey] = {}
        self._fetched_at: float | None = None
        self.fetch_count = 0

    def verify(self, token: object) -> dict[str, Any]:
        """The verified payload, or TokenVerificationError. A JWKS that cannot be fetched
        raises DigimeTransportError/DigimeHTTPError (transient, unlike a bad token)."""
        if not isinstance(token, str) or token.count(".") != 2:
            raise TokenVerificationError("the response token is not a compact JWS")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TokenVerificationError("the response token header is unreadable") from None
        jku, kid = header.get("jku"), header.get("kid")
        if not isinstance(jku, str) or not isinstance(kid, str) or not jku or not kid:
            raise TokenVerificationError("Unexpected JWT payload in token. No jku or kid found.")
        if _canonical(jku) != self._pinned:
            raise TokenVerificationError(
                f"the response token names a JWKS at {_display(jku)}, not the pinned "
                f"{self.jwks_url}; refusing to fetch it")
        if header.get("alg") != "PS512":
            raise TokenVerificationError(
                f"the response token is signed with {str(header.get('alg'))[:20]!r}; only PS512 "
                "is accepted")
        key = self._key_for(kid)
        try:
            return jwt.decode(
                token, key, algorithms=["PS512"], leeway=self._leeway,
                options={"verify_aud": False, "verify_iss": False, "verify_iat": False,
                         "verify_sub": False, "verify_jti": False})
        except jwt.ExpiredSignatureError:
            raise TokenVerificationError("the response token has expired (exp)") from None
        except jwt.ImmatureSignatureError:
            raise TokenVerificationError("the response token is not valid yet (nbf)") from None
        except jwt.InvalidSignatureError:
            raise TokenVerificationError(
                "the response token signature does not verify (PS512, PSS salt 64)") from None
        except jwt.PyJWTError as exc:
            raise TokenVerificationError(
                f"the response token is invalid ({type(exc).__name__})") from None

    def _key_for(self, kid: str) -> rsa.RSAPublicKey:
        with self._lock:
            key = self._keys.get(kid)
            if key is not None:
                return key
            now = self._clock()
            if self._fetched_at is None or now - self._fetched_at >= self._min_interval:
                self._keys = self._fetch()
                self._fetched_at = now
                key = self._keys.get(kid)
        if key is None:
            raise TokenVerificationError(f"the response token's kid {kid[:64]!r} is not in the "
                                         "digi.me JWKS")
        return key

    def _fetch(self) -> dict[str, rsa.RSAPublicKey]:
        operation = "GET jwks/oauth"
        try:
            response = self._http.get(self.jwks_url, headers={"Accept": "application/json"},
                                      follow_redirects=False)
        except httpx.TransportError as exc:
            raise transport_error(exc, operation=operation) from None
        self.fetch_count += 1
        if not response.is_success:
            raise http_error(response, operation=operation)
        try:
            document = response.json()
        except ValueError:
            raise DigimeProtocolError("the digi.me JWKS is not JSON") from None
        entries = document.get("keys") if isinstance(document, dict) else None
        if not isinstance(entries, list):
            raise DigimeProtocolError("the digi.me JWKS has no 'keys' array")
        keys: dict[str, rsa.RSAPublicKey] = {}
        for entry in entries:
            if isinstance(entry, dict) and isinstance(entry.get("kid"), str):
                key = jwk_public_key(entry)
                if key is not None:
                    keys[entry["kid"]] = key
        return keys


def jwk_public_key(entry: dict[str, Any]) -> rsa.RSAPublicKey | None:
    """The RSA key of a JWKS entry: its `pem` (what the SDK uses) or else `n`/`e`. None for
    anything unusable (not RSA, too small, unreadable)."""
    key: object = None
    pem = entry.get("pem")
    try:
        if isinstance(pem, str) and pem.strip():
            key = serialization.load_pem_public_key(pem.encode())
        elif entry.get("kty") == "RSA" and isinstance(entry.get("n"), str) \
                and isinstance(entry.get("e"), str):
            key = rsa.RSAPublicNumbers(_b64uint(entry["e"]), _b64uint(entry["n"])).public_key()
    except (ValueError, TypeError):
        return None
    if not isinstance(key, rsa.RSAPublicKey) or key.key_size < MIN_KEY_BITS:
        return None
    return key


def _b64uint(text: str) -> int:
    return int.from_bytes(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)), "big")


def _canonical(url: str) -> tuple[str, str, int | None, str] | None:
    """Scheme, host, port (defaults filled in), path; None for anything with userinfo, a
    query or a fragment, which a JWKS URL has no business carrying."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.username or parts.password or parts.query or parts.fragment or not parts.hostname:
        return None
    scheme = parts.scheme.lower()
    return scheme, parts.hostname.lower(), port or _DEFAULT_PORTS.get(scheme), parts.path


def _display(url: str) -> str:
    """Enough of a foreign jku to diagnose, without its query."""
    try:
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.hostname or ''}{':' + str(parts.port) if parts.port else ''}" \
               f"{parts.path}"[:120]
    except ValueError:
        return "an unparseable URL"


# -- the token set ---------------------------------------------------------------------------

@dataclass(frozen=True)
class TokenSet:
    """The user's tokens from oauth/token (expiries in epoch seconds). repr hides the values."""

    access_token: str
    access_expires_at: int | float
    refresh_token: str
    refresh_expires_at: int | float
    user_id: str | None
    consent_id: str | None

    def __repr__(self) -> str:
        return (f"TokenSet(access_token='***', access_expires_at={self.access_expires_at!r}, "
                f"refresh_token='***', refresh_expires_at={self.refresh_expires_at!r}, "
                f"user_id={self.user_id!r}, consent_id={self.consent_id!r})")

    __str__ = __repr__


def token_set_from_payload(payload: dict[str, Any]) -> TokenSet:
    """§5.2: access_token/refresh_token `{value, expires_on (s)}`, `sub`, `consentid`."""
    access_value, access_exp = _token_claim(payload, "access_token")
    refresh_value, refresh_exp = _token_claim(payload, "refresh_token")
    sub, consent = payload.get("sub"), payload.get("consentid")
    for name, value in (("sub", sub), ("consentid", consent)):
        if value is not None and not isinstance(value, str):
            raise DigimeProtocolError(f"the token response claim {name} is not a string")
    return TokenSet(access_value, access_exp, refresh_value, refresh_exp, sub or None, consent or None)


def _token_claim(payload: dict[str, Any], name: str) -> tuple[str, int | float]:
    claim = payload.get(name)
    if not isinstance(claim, dict):
        raise DigimeProtocolError(f"the token response has no {name} object")
    value, expires = claim.get("value"), claim.get("expires_on")
    if not isinstance(value, str) or not value:
        raise DigimeProtocolError(f"the token response {name}.value is not a non-empty string")
    if isinstance(expires, bool) or not isinstance(expires, int | float) or not math.isfinite(expires):
        raise DigimeProtocolError(f"the token response {name}.expires_on is not a number (epoch s)")
    return value, expires
