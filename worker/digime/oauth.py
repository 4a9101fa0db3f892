"""OAuth pieces of the digi.me flow: PKCE, the authorize call's claims, the onboarding URL
and the two oauth/token grants (§3, §5, §6). Pure functions; `client.py` does the HTTP."""

from __future__ import annotations

import base64
import hashlib
import platform
import re
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from ..errors import ValidationError
from .assertion import NONCE_ALPHABET
from .errors import DigimeProtocolError

_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")
_VERIFIER = re.compile(r"[A-Za-z0-9._~-]{43,128}")
SOURCE_TYPES = ("pull", "push")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def code_challenge(verifier: str) -> str:
    """base64url(SHA-256(ascii(verifier))), no padding: S256."""
    return _b64url(hashlib.sha256(verifier.encode("ascii")).digest())


def pkce_pair() -> tuple[str, str]:
    """(code_verifier, code_challenge) as the SDK makes them: 32 random [A-Za-z0-9] characters,
    base64url without padding (43 characters), then S256 of that."""
    raw = "".join(secrets.choice(NONCE_ALPHABET) for _ in range(32))
    verifier = _b64url(raw.encode("ascii"))
    return verifier, code_challenge(verifier)


def default_agent(version: str = "0.1.0") -> dict[str, Any]:
    """The `agent` object the SDK puts in JSON bodies; ours names datapost and Python."""
    return {"sdk": {"name": "datapost", "version": version,
                    "meta": {"python": platform.python_version()}}}


@dataclass(frozen=True)
class AuthorizeResult:
    """From oauth/authorize: the preauthorization code for the onboarding URL, and the
    session (key and expiry in epoch ms, None when the response carried no session)."""

    preauthorization_code: str
    session_key: str | None
    session_expiry_ms: int | float | None

    def __repr__(self) -> str:
        return (f"AuthorizeResult(preauthorization_code='***', session_key="
                f"{'***' if self.session_key else None!r}, session_expiry_ms={self.session_expiry_ms!r})")


def authorize_claims(*, redirect_uri: str, state: str, code_challenge: str,
                     access_token: str | None) -> dict[str, Any]:
    if not isinstance(redirect_uri, str) or not redirect_uri:
        raise ValidationError("redirect_uri must be a non-empty string")
    if not isinstance(state, str):
        raise ValidationError("state must be a string")
    if not isinstance(code_challenge, str) or not _CHALLENGE.fullmatch(code_challenge):
        raise ValidationError("code_challenge must be 43 base64url characters (S256 of the verifier)")
    if access_token is not None and (not isinstance(access_token, str) or not access_token):
        raise ValidationError("access_token, when given, must be a non-empty string")
    return {"access_token": access_token, "code_challenge": code_challenge,
            "code_challenge_method": "S256", "redirect_uri": redirect_uri,
            "response_mode": "query", "response_type": "code", "state": state}


def authorize_result(body: Any, payload: dict[str, Any]) -> AuthorizeResult:
    """`payload` is the verified token's; `body` the whole JSON answer (for `session`)."""
    code = payload.get("preauthorization_code")
    if not isinstance(code, str) or not code:
        raise DigimeProtocolError("the authorize token carries no preauthorization_code")
    session = body.get("session") or {}
    if not isinstance(session, dict):
        raise DigimeProtocolError("the authorize answer's session is not an object")
    key, expiry = session.get("key"), session.get("expiry")
    if key is not None and not isinstance(key, str):
        raise DigimeProtocolError("the authorize answer's session.key is not a string")
    if expiry is not None and (isinstance(expiry, bool) or not isinstance(expiry, int | float)):
        raise DigimeProtocolError("the authorize answer's session.expiry is not a number")
    return AuthorizeResult(code, key, expiry)


def onboarding_url(onboard_url: str, preauthorization_code: str, source_type: str = "push") -> str:
    """`{onboard_url}authorize?code=…&sourceType=…` for the user's browser."""
    if source_type not in SOURCE_TYPES:
        raise ValidationError(f"source_type must be one of {', '.join(SOURCE_TYPES)}")
    if not isinstance(preauthorization_code, str) or not preauthorization_code:
        raise ValidationError("preauthorization_code must be a non-empty string")
    base = onboard_url if onboard_url.endswith("/") else onboard_url + "/"
    query = urlencode([("code", preauthorization_code), ("sourceType", source_type)], quote_via=quote)
    return f"{base}authorize?{query}"


def exchange_claims(code: str, code_verifier: str) -> dict[str, Any]:
    if not isinstance(code, str) or not code:
        raise ValidationError("the authorization code must be a non-empty string")
    if not isinstance(code_verifier, str) or not _VERIFIER.fullmatch(code_verifier):
        raise ValidationError("code_verifier must be 43-128 characters from [A-Za-z0-9-._~]")
    return {"code": code, "code_verifier": code_verifier, "grant_type": "authorization_code"}


def refresh_claims(refresh_token: str) -> dict[str, Any]:
    if not isinstance(refresh_token, str) or not refresh_token:
        raise ValidationError("refresh_token must be a non-empty string")
    return {"grant_type": "refresh_token", "refresh_token": refresh_token}
