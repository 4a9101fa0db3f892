"""PDA tokens: RS256 JWTs signed with each PDA's own key, with the HAT's lifetime rules.

Signing is done by hand (not via a JWT library) so the header is exactly
`{"typ":"JWT","alg":"RS256"}` in that order, as the HAT emits it; verification uses PyJWT.
Time decisions always use the sandbox clock, so tests can shift it.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

EXPIRY_SECONDS = 30 * 86400  # authenticatorExpiry: exp = first iat + 30 days
IDLE_SECONDS = 72 * 3600  # authenticatorIdleTimeout, measured from iat
_HEADER = {"typ": "JWT", "alg": "RS256"}


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def new_private_key() -> rsa.RSAPrivateKey:
    """A fresh RSA-2048 key, generated at run time (no key material on disk or in git)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_pem(key: rsa.RSAPrivateKey) -> str:
    """SubjectPublicKeyInfo PEM with 64-character lines, as `GET /publickey` serves it."""
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def sign(claims: dict[str, Any], key: rsa.RSAPrivateKey) -> str:
    """Serialise and RS256-sign `claims` with the HAT's header."""
    head = _b64url(json.dumps(_HEADER, separators=(",", ":")).encode())
    body = _b64url(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = f"{head}.{body}".encode("ascii")
    signature = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    return f"{head}.{body}.{_b64url(signature)}"


class SubjectCrypter:
    """The opaque `sub`: "1-" + base64(IV ‖ AES-CTR(login-info JSON)), like the HAT's."""

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key or os.urandom(32)

    def encrypt(self, provider_id: str, provider_key: str) -> str:
        iv = os.urandom(16)
        plain = json.dumps({"providerID": provider_id, "providerKey": provider_key},
                           separators=(",", ":")).encode()
        enc = Cipher(algorithms.AES(self._key), modes.CTR(iv)).encryptor()
        return "1-" + base64.b64encode(iv + enc.update(plain) + enc.finalize()).decode("ascii")

    def decrypt(self, sub: str) -> dict[str, Any] | None:
        """The login info, or None when `sub` is not one of ours."""
        if not isinstance(sub, str) or not sub.startswith("1-"):
            return None
        try:
            raw = base64.b64decode(sub[2:], validate=True)
            if len(raw) <= 16:
                return None
            dec = Cipher(algorithms.AES(self._key), modes.CTR(raw[:16])).decryptor()
            info = json.loads(dec.update(raw[16:]) + dec.finalize())
        except (ValueError, UnicodeDecodeError):
            return None
        return info if isinstance(info, dict) else None


@dataclass(frozen=True)
class Verified:
    """A token that passed signature, issuer, subject and both time checks."""

    token: str
    claims: dict[str, Any]

    @property
    def is_owner(self) -> bool:
        return self.claims.get("accessScope") == "owner" and "application" not in self.claims

    @property
    def application(self) -> str | None:
        app = self.claims.get("application")
        return app if isinstance(app, str) else None


class TokenService:
    """Mints, verifies and renews the tokens of one PDA."""

    def __init__(self, domain: str, owner: str, key: rsa.RSAPrivateKey,
                 crypter: SubjectCrypter) -> None:
        self.domain = domain
        self.owner = owner
        self.key = key
        self.crypter = crypter
        self.public_pem = public_pem(key)

    def _base(self, iat: int, exp: int | None) -> dict[str, Any]:
        return {
            "iss": self.domain,
            "sub": self.crypter.encrypt(self.domain, self.owner),
            "iat": iat,
            "exp": iat + EXPIRY_SECONDS if exp is None else exp,
            "jti": secrets.token_hex(128),
        }

    def mint_app(self, app_id: str, version: str, iat: int, exp: int | None = None) -> str:
        """An application token (what /hatlogin and /applications/{id}/access-token hand out)."""
        claims = self._base(iat, exp)
        claims.update(application=app_id, applicationVersion=version)
        return sign(claims, self.key)

    def mint_owner(self, iat: int, exp: int | None = None) -> str:
        """An owner token (password login); accessScope/resource instead of application."""
        claims = self._base(iat, exp)
        claims.update(accessScope="owner", resource=self.domain)
        return sign(claims, self.key)

    def verify(self, token: str, now: float) -> Verified | None:
        """The verified token, or None for anything the HAT would answer with 401."""
        if not token or len(token) > 16384:
            return None
        try:
            claims = jwt.decode(
                token, self.key.public_key(), algorithms=["RS256"],
                options={"verify_exp": False, "verify_iat": False, "verify_nbf": False,
                         "verify_aud": False, "verify_iss": False},
            )
        except jwt.PyJWTError:
            return None
        iat, exp = claims.get("iat"), claims.get("exp")
        if not _is_number(iat) or not _is_number(exp):
            return None
        if claims.get("iss") != self.domain:
            return None
        info = self.crypter.decrypt(claims.get("sub", ""))
        if (not info or info.get("providerID") != self.domain
                or info.get("providerKey") != self.owner):
            return None  # "user gone" or a token from elsewhere
        if not (now < exp and now < iat + IDLE_SECONDS):
            return None
        return Verified(token, claims)

    def renew(self, verified: Verified, now: float) -> str:
        """Re-sign with iat = now; jti, exp and every other claim stay as they were."""
        claims = dict(verified.claims)
        claims["iat"] = int(now)
        return sign(claims, self.key)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


__all__ = ["EXPIRY_SECONDS", "IDLE_SECONDS", "SubjectCrypter", "TokenService", "Verified",
           "new_private_key", "public_pem", "sign"]
