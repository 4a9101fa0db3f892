"""digi.me's own signing key: response tokens and the JWKS that lets clients check them.

One RSA-2048 key per sandbox run (generated at start, never written anywhere). Every token
response is `{"token": <JWT>}` with header `{alg: PS512, typ: JWT, jku, kid}` (notes §1.3, §10).
The `jku` is built from the request, so it always points back at this very server.
"""

from __future__ import annotations

import uuid
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.requests import Request

from . import jws
from .crypto import new_rsa_key, spki_pem


def _uint_b64(value: int) -> str:
    return jws.b64url_encode(value.to_bytes((value.bit_length() + 7) // 8, "big"))


class ServerSigner:
    """Signs PS512 (salt 64) and publishes the public half as JWKS (JWK fields + `pem`)."""

    def __init__(self) -> None:
        self._key: rsa.RSAPrivateKey = new_rsa_key()
        self.kid = str(uuid.uuid4())

    def jwks(self) -> dict[str, Any]:
        public = self._key.public_key()
        numbers = public.public_numbers()
        return {"keys": [{
            "kty": "RSA",
            "n": _uint_b64(numbers.n),
            "e": _uint_b64(numbers.e),
            "kid": self.kid,
            "alg": "PS512",
            "use": "sig",
            "pem": spki_pem(public),
        }]}

    def sign(self, payload: dict[str, Any], jku: str) -> str:
        # No iat/exp/nbf: the SDK would enforce them against its own clock, and tests move ours.
        header = {"alg": "PS512", "typ": "JWT", "jku": jku, "kid": self.kid}
        return jws.sign(header, payload, self._key)


def jku_for(request: Request) -> str:
    """`{scheme}://{Host}{mount prefix}/jwks/oauth`: the same mount (/v1.7 or /v1.6) as the call."""
    host = request.headers.get("host") or f"{request.url.hostname}:{request.url.port}"
    root = request.scope.get("root_path", "").rstrip("/")
    return f"{request.url.scheme}://{host}{root}/jwks/oauth"
