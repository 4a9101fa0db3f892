"""Verifying the client assertion that authenticates every API call (notes §1.1).

`Authorization: Bearer <JWT>`, header alg PS512 (nothing else), no kid: the key is the
contract's public key found by the `client_id` claim. Freshness comes from `nonce`
(32 of [a-zA-Z0-9], single use per client) and `timestamp` (ms, within the window).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from . import jws
from .errors import INVALID_CLIENT, NONCE_REUSED, ApiError, invalid_request, shorten, validation
from .state import Contract, DigimeState

NONCE = re.compile(r"[A-Za-z0-9]{32}")


@dataclass(frozen=True)
class ClientCall:
    """An authenticated request: whose contract, and the verified claims."""

    contract: Contract
    claims: dict[str, Any]

    @property
    def client_id(self) -> str:
        return self.contract.client_id


def bearer(request: Request) -> str:
    """The JWT from `Authorization: Bearer …`; else 406 ValidationErrors (as the v-next mock)."""
    value = request.headers.get("authorization", "")
    scheme, _, token = value.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise validation("an 'Authorization: Bearer <JWT>' header is required", status=406)
    return token


def _invalid_client(client_id: object, why: str = "") -> ApiError:
    message = INVALID_CLIENT.format(shorten(client_id if client_id is not None else "undefined"))
    return ApiError(401, "InvalidClient", f"{message}: {why}" if why else message)


def authenticate(state: DigimeState, request: Request, counter: str | None = None) -> ClientCall:
    """Full check of the client assertion; counts the call under `counter` once it passes."""
    try:
        unverified = jws.parse(bearer(request))
    except jws.JwsFormatError as exc:
        raise validation(f"the bearer token is not a JWT ({exc})", status=406) from None
    client_id = unverified.payload.get("client_id")
    alg = unverified.header.get("alg")
    if alg != "PS512":
        raise _invalid_client(client_id, f"the JWT must be signed with PS512, not {shorten(alg)}")
    contract = state.contract(client_id)
    if contract is None:
        raise _invalid_client(client_id)
    if not jws.verify(unverified, contract.public_key):
        raise _invalid_client(
            client_id, "the JWT signature does not verify with the contract public key "
                       "(PS512: RSASSA-PSS, SHA-512, MGF1-SHA-512, salt 64)")
    claims = unverified.payload
    nonce = claims.get("nonce")
    if not isinstance(nonce, str) or not NONCE.fullmatch(nonce):
        raise invalid_request(
            "The nonce in the JWT payload must be 32 characters from [a-zA-Z0-9]")
    issued_at = _check_timestamp(state, claims.get("timestamp"))
    if not state.use_nonce(contract.client_id, nonce, issued_at):
        raise invalid_request(NONCE_REUSED.format(nonce))
    if counter:
        state.count(contract.client_id, counter)
    return ClientCall(contract, claims)


def _check_timestamp(state: DigimeState, value: object) -> float:
    """The JWT time in epoch seconds, if fresh.

    Fresh means within the window of the sandbox clock. When a test has shifted that clock,
    the real wall clock is accepted too: clients (the SDK, datapost) stamp real time, and a
    clock jump meant to expire tokens must not turn every call into a stale-timestamp error.
    """
    if not isinstance(value, int) or isinstance(value, bool):
        raise invalid_request(
            "The timestamp in the JWT payload must be an integer: milliseconds since the epoch")
    window = int(state.world.settings.timestamp_window)
    at = value / 1000
    skew = at - state.now()
    if abs(skew) > window and abs(at - time.time()) > window:
        raise invalid_request(
            f"The timestamp in the JWT payload ({value}) is {abs(skew):.0f} s "
            f"{'ahead of' if skew > 0 else 'behind'} the server clock; it must be milliseconds "
            f"since the epoch within ±{window} s")
    return at


def file_descriptor(call: ClientCall, request: Request) -> Any:
    """The `metadata` claim of the `FileDescriptor` header JWT, signed by the same contract."""
    token = request.headers.get("filedescriptor")
    if token is None or not token.strip():
        raise validation(
            "the FileDescriptor header (a PS512 JWT with claim 'metadata') is required")
    try:
        parsed = jws.parse(token.strip())
    except jws.JwsFormatError as exc:
        raise invalid_request(f"The FileDescriptor header is not a JWT ({exc})") from None
    alg = parsed.header.get("alg")
    if alg != "PS512":
        raise invalid_request(f"The FileDescriptor JWT must be PS512-signed, not {shorten(alg)}")
    if not jws.verify(parsed, call.contract.public_key):
        raise invalid_request(
            "The FileDescriptor JWT signature does not verify with the contract public key")
    extra = sorted(set(parsed.payload) - {"metadata"})
    if extra:
        raise invalid_request(
            "The FileDescriptor JWT must carry only the claim 'metadata' "
            f"(found {', '.join(extra)})")
    if "metadata" not in parsed.payload:
        raise validation("the FileDescriptor JWT has no 'metadata' claim")
    return parsed.payload["metadata"]
