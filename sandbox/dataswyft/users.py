"""Non-API PDA endpoints: `/publickey`, the password login and the token check.

The password login is the only rate-limited endpoint of the HAT (notes §8): a bucket of 10,
refilled one every 2 s, keyed by the raw X-Forwarded-For value (or the client address),
answering 400 "Request rate exceeded" (not 429) when empty.
"""

from __future__ import annotations

import hmac
from urllib.parse import unquote

from starlette.responses import JSONResponse, Response

from . import errors
from .routing import Call, Router


async def publickey(call: Call) -> Response:
    return Response(call.pda.tokens.public_pem, media_type="text/plain; charset=utf-8")


def client_key(call: Call) -> str:
    forwarded = call.request.headers.get("x-forwarded-for")
    if forwarded:
        return forwarded
    client = call.request.client
    return client.host if client else "unknown"


async def access_token(call: Call) -> Response:
    if not call.state.login_limiter.allow(client_key(call), call.now):
        return errors.controller(400, "Request rate exceeded",
                                 "Rate of requests from your IP exceeded",
                                 details=["Request to /users/access_token"])
    username = unquote(call.request.headers.get("username", ""))
    password = unquote(call.request.headers.get("password", ""))
    pda = call.pda
    if not (username.lower() == pda.owner and password
            and hmac.compare_digest(password.encode(), pda.password.encode())):
        return errors.not_authenticated(call.request)
    token = pda.tokens.mint_owner(int(call.now))
    return JSONResponse({"accessToken": token, "userId": pda.user_id},
                        headers={"X-Auth-Token": token})


async def validate(call: Call) -> Response:
    return JSONResponse({"message": "Authenticated"})


def register(router: Router) -> None:
    router.add("GET", "/publickey", publickey, auth="none")
    router.add("GET", "/users/access_token", access_token, auth="none")
    router.add("GET", "/users/access_token/validate", validate)
