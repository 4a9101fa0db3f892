"""oauth/authorize, oauth/token and jwks/oauth (notes §3, §5, §6, §10)."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .client_jwt import ClientCall, authenticate
from .errors import (
    INVALID_REDIRECT,
    ApiError,
    api_endpoint,
    invalid_request,
    invalid_token,
    shorten,
)
from .errors import validation as validation_error
from .state import SESSION_TTL, AccessToken, Contract, DigimeState, RefreshToken
from .tokens import jku_for
from .wire import check_accept_json, read_json_object, require_empty_body

CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")
VERIFIER = re.compile(r"[A-Za-z0-9._~-]{43,128}")


def redirect_problem(uri: object, contract: Contract) -> str | None:
    """Why `uri` may not receive the user (None when it may)."""
    if not isinstance(uri, str) or not uri:
        return "missing"
    if contract.redirect_uris:
        return None if uri in contract.redirect_uris else "not registered for this contract"
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return "not an absolute http(s) URL"
    if parts.fragment or uri.endswith("#"):
        return "has a fragment"
    return None


def _redirect_uri(call: ClientCall) -> str:
    uri = call.claims.get("redirect_uri")
    if uri is None and call.contract.redirect_uris:
        return call.contract.redirect_uris[0]  # v8 made redirectUri optional: use the registered
    problem = redirect_problem(uri, call.contract)
    if problem:
        shown = shorten(uri if uri is not None else "undefined")
        raise ApiError(400, "InvalidRedirectUri", f"{INVALID_REDIRECT.format(shown)} ({problem})")
    return uri  # type: ignore[return-value]


def _check_claim(claims: dict[str, Any], name: str, expected: str) -> None:
    if claims.get(name) != expected:
        raise invalid_request(
            f"The {name} claim must be {expected!r} (got {shorten(claims.get(name, 'undefined'))})")


def token_payload(access: AccessToken, refresh: RefreshToken) -> dict[str, Any]:
    """The claims of a token response (§5.2, plus the v-next `identifier` and `token_type`)."""
    return {
        "access_token": {"value": access.value, "expires_on": access.expires_on},
        "refresh_token": {"value": refresh.value, "expires_on": refresh.expires_on},
        "sub": access.user_id,
        "consentid": access.consent_id,
        "identifier": {"id": access.user_id},
        "token_type": "Bearer",
    }


def pkce_matches(verifier: str, challenge: str) -> bool:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    computed = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
    return secrets.compare_digest(computed, challenge)


def oauth_endpoints(state: DigimeState) -> dict[str, Any]:
    """The three handlers, closed over the state."""

    @api_endpoint
    async def jwks(request: Request) -> Response:
        return JSONResponse(state.signer.jwks())

    @api_endpoint
    async def authorize(request: Request) -> Response:
        call = authenticate(state, request, counter="authorize_calls")
        check_accept_json(request)
        body = await read_json_object(request, what="oauth/authorize")
        if "actions" in body and not isinstance(body["actions"], dict | None):
            raise validation_error("actions must be an object")
        claims = call.claims
        _check_claim(claims, "code_challenge_method", "S256")
        challenge = claims.get("code_challenge")
        if not isinstance(challenge, str) or not CHALLENGE.fullmatch(challenge):
            raise invalid_request(
                "The code_challenge claim must be base64url(SHA-256(code_verifier)): 43 characters")
        _check_claim(claims, "response_type", "code")
        _check_claim(claims, "response_mode", "query")
        redirect_uri = _redirect_uri(call)
        st = claims.get("state")
        if st is not None and not isinstance(st, str):
            raise invalid_request("The state claim must be a string")
        user_id = None
        if "access_token" in claims:
            # Any contract's token names the library (notes §3.3: "from this or another contract").
            token, status = state.access_status(claims["access_token"], None)
            if status != "valid":
                raise invalid_token("access_token", expired=status == "expired")
            user_id = token.user_id  # type: ignore[union-attr]
        pre = state.new_preauth(call.client_id, redirect_uri, st, challenge, user_id)
        token = state.signer.sign({"preauthorization_code": pre.code}, jku_for(request))
        session = {"key": secrets.token_hex(16), "expiry": int((state.now() + SESSION_TTL) * 1000)}
        return JSONResponse({"token": token, "session": session})

    @api_endpoint
    async def token(request: Request) -> Response:
        # Authenticate first so a bad grant is still attributed and counted to its client.
        call = authenticate(state, request)
        grant = call.claims.get("grant_type")
        if grant == "authorization_code":
            state.count(call.client_id, "token_calls")
        elif grant == "refresh_token":
            state.count(call.client_id, "refresh_calls")
        else:
            raise validation_error(
                "grant_type must be 'authorization_code' or 'refresh_token' "
                f"(got {shorten(grant)})")
        check_accept_json(request)
        await require_empty_body(request, what="oauth/token")
        if grant == "authorization_code":
            access, refresh = _exchange_code(state, call)
        else:
            access, refresh = _refresh(state, call)
        return JSONResponse({"token": state.signer.sign(token_payload(access, refresh),
                                                         jku_for(request))})

    return {"jwks": jwks, "authorize": authorize, "token": token}


def _exchange_code(state: DigimeState, call: ClientCall) -> tuple[AccessToken, RefreshToken]:
    code, verifier = call.claims.get("code"), call.claims.get("code_verifier")
    if not isinstance(code, str) or not code:
        raise validation_error("the code claim is required for grant_type authorization_code")
    if not isinstance(verifier, str) or not VERIFIER.fullmatch(verifier):
        raise validation_error(
            "the code_verifier claim must be 43-128 characters from [A-Za-z0-9-._~]")
    found, expired = state.take_auth_code(code, call.client_id)  # consumed, whatever follows
    if found is None or expired:
        raise invalid_token("authorization_code", expired=expired)
    if not pkce_matches(verifier, found.code_challenge):
        raise invalid_request(
            "The code_verifier does not match the code_challenge "
            "(base64url(SHA-256(ascii(code_verifier)))); the authorization code is now used up")
    return state.issue_tokens(call.client_id, found.user_id, found.consent_id)


def _refresh(state: DigimeState, call: ClientCall) -> tuple[AccessToken, RefreshToken]:
    value = call.claims.get("refresh_token")
    if not isinstance(value, str) or not value:
        raise validation_error("the refresh_token claim is required for grant_type refresh_token")
    pair, status = state.rotate(value, call.client_id)
    if pair is None:
        raise invalid_token("refresh_token", expired=status == "expired")
    return pair
