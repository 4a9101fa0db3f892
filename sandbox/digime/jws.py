"""Compact JWS with PS512 only, written out so the PSS parameters are explicit.

PS512 here is RSASSA-PSS with SHA-512, MGF1-SHA-512 and a salt of exactly 64 bytes (the
digest length), which is what jsonwebtoken/jwa use on both sides (notes §1.1, §10).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

SALT_LENGTH = 64
PSS_512 = padding.PSS(mgf=padding.MGF1(hashes.SHA512()), salt_length=SALT_LENGTH)


class JwsFormatError(ValueError):
    """The string is not a compact JWS with JSON-object header and payload."""


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Strict base64url without padding (RFC 7515 §2); raises JwsFormatError."""
    if not text or any(c not in _B64URL for c in text) or len(text) % 4 == 1:
        raise JwsFormatError("segment is not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise JwsFormatError("segment is not base64url") from None


_B64URL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


@dataclass(frozen=True)
class Jws:
    """A parsed but not yet verified token."""

    header: dict[str, Any]
    payload: dict[str, Any]
    signing_input: bytes
    signature: bytes


def parse(token: str) -> Jws:
    """Split and decode; the signature may be empty (alg none), which `verify` rejects."""
    parts = token.split(".")
    if len(parts) != 3:
        raise JwsFormatError("a JWT has three dot-separated parts")
    header = _json_object(parts[0], "header")
    payload = _json_object(parts[1], "payload")
    signature = b64url_decode(parts[2]) if parts[2] else b""
    return Jws(header, payload, f"{parts[0]}.{parts[1]}".encode("ascii"), signature)


def _json_object(segment: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(b64url_decode(segment))
    except (UnicodeDecodeError, ValueError) as exc:
        if isinstance(exc, JwsFormatError):
            raise JwsFormatError(f"the {what} is not base64url") from None
        raise JwsFormatError(f"the {what} is not JSON") from None
    if not isinstance(value, dict):
        raise JwsFormatError(f"the {what} is not a JSON object")
    return value


def verify(token: Jws, key: rsa.RSAPublicKey) -> bool:
    """True when the PS512 signature (salt 64) verifies with `key`."""
    if not token.signature:
        return False
    try:
        key.verify(token.signature, token.signing_input, PSS_512, hashes.SHA512())
    except (InvalidSignature, ValueError):
        return False
    return True


def sign(header: dict[str, Any], payload: dict[str, Any], key: rsa.RSAPrivateKey) -> str:
    """Compact PS512 JWS; `header` must already name alg PS512."""
    head = b64url_encode(json.dumps(header, separators=(",", ":")).encode())
    body = b64url_encode(json.dumps(payload, separators=(",", ":")).encode())
    signing_input = f"{head}.{body}".encode("ascii")
    signature = key.sign(signing_input, PSS_512, hashes.SHA512())
    return f"{head}.{body}.{b64url_encode(signature)}"
