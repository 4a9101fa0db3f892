"""digi.me knobs for tests, benchmarks and the interop drivers (mounted under /_control).

JSON in, JSON out; malformed input gets 400 `{"error": "<what was wrong>"}`, never a 500.
"""

from __future__ import annotations

import functools
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from .state import DigimeState

log = logging.getLogger("sandbox.digime")


class BadInput(ValueError):
    """The control request is malformed; the message is returned as `{"error": …}`."""


class NotFound(LookupError):
    """The named object does not exist (404)."""


def _handler(fn: Callable[[Request], Awaitable[Response]]):
    @functools.wraps(fn)
    async def wrapper(request: Request) -> Response:
        try:
            return await fn(request)
        except BadInput as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        except NotFound as exc:
            return JSONResponse({"error": str(exc)}, status_code=404)
        except Exception as exc:  # a control call must answer, whatever happened
            log.exception("digi.me control %s failed", request.url.path)
            return JSONResponse({"error": f"internal error: {type(exc).__name__}"}, status_code=500)
    return wrapper


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        raise BadInput("body is not valid JSON") from None
    if not isinstance(data, dict):
        raise BadInput("body must be a JSON object")
    return data


def _str(data: dict[str, Any], key: str, *, required: bool = True) -> str | None:
    value = data.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise BadInput(f"{key} must be a non-empty string")
    return value


def _int(data: dict[str, Any], key: str, *, minimum: int | None = None) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise BadInput(f"{key} must be an integer")
    if minimum is not None and value < minimum:
        raise BadInput(f"{key} must be at least {minimum}")
    return value


def _query_int(request: Request, key: str) -> int | None:
    raw = request.query_params.get(key)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise BadInput(f"{key} must be an integer") from None


def digime_control_routes(world) -> list[BaseRoute]:
    state: DigimeState = world.digime

    @_handler
    async def contracts(request: Request) -> Response:
        if request.method == "GET":
            return JSONResponse({"contracts": [c.to_json() for c in state.contracts.values()]})
        data = await _body(request)
        app_id, contract_id = _str(data, "application_id"), _str(data, "contract_id")
        public_key = _str(data, "public_key")
        client_id = _str(data, "client_id", required=False)
        if client_id is not None and client_id != f"{app_id}_{contract_id}":
            raise BadInput(
                f"client_id must be '<application_id>_<contract_id>' ({app_id}_{contract_id})")
        uris = data.get("redirect_uris")
        if uris is not None and not isinstance(uris, list):
            raise BadInput("redirect_uris must be a list of URLs")
        try:
            cid = state.register_contract(app_id, contract_id, public_key, uris)  # type: ignore[arg-type]
        except ValueError as exc:
            raise BadInput(str(exc)) from None
        return JSONResponse({"client_id": cid}, status_code=201)

    @_handler
    async def users(request: Request) -> Response:
        data = await _body(request)
        user_id = _str(data, "user_id", required=False)
        try:
            user = await run_in_threadpool(state.create_user, user_id)
        except ValueError as exc:
            raise BadInput(str(exc)) from None
        box = state.postbox_of(user)
        return JSONResponse({"user_id": user.id, "postbox_id": box.id, "public_key": box.public_pem,
                             "account_reference": user.account_reference}, status_code=201)

    @_handler
    async def tokens(request: Request) -> Response:
        data = await _body(request)
        client_id = _str(data, "client_id")
        if state.contract(client_id) is None:
            raise BadInput(f"unknown client_id {client_id}; register it with POST /contracts")
        user_id = _str(data, "user_id", required=False)
        if user_id is None:
            user = await run_in_threadpool(state.create_user)
        elif (user := state.users.get(user_id)) is None:
            raise BadInput(f"unknown user_id {user_id}; create it with POST /users")
        access, refresh = state.issue_tokens(
            client_id, user.id, str(uuid.uuid4()),  # type: ignore[arg-type]
            access_ttl=_int(data, "access_ttl"), refresh_ttl=_int(data, "refresh_ttl"),
            access_expires_on=_int(data, "access_expires_on"))
        box = state.postbox_of(user)
        return JSONResponse({
            "access_token": {"value": access.value, "expires_on": access.expires_on},
            "refresh_token": {"value": refresh.value, "expires_on": refresh.expires_on},
            "user_id": user.id, "postbox_id": box.id, "public_key": box.public_pem,
            "consentid": access.consent_id,
        }, status_code=201)

    @_handler
    async def expire(request: Request) -> Response:
        value = _str(await _body(request), "access_token")
        with state.lock:
            token = state.access_tokens.get(value)  # type: ignore[arg-type]
            if token is None:
                raise NotFound("unknown access_token")
            token.expires_on = min(token.expires_on, int(state.now()) - 1)
        return JSONResponse({"access_token": {"value": token.value,
                                              "expires_on": token.expires_on}})

    @_handler
    async def revoke(request: Request) -> Response:
        data = await _body(request)
        refresh = _str(data, "refresh_token", required=False)
        access = _str(data, "access_token", required=False)
        if refresh is None and access is None:
            raise BadInput("give refresh_token and/or access_token")
        with state.lock:
            found_r = state.refresh_tokens.get(refresh) if refresh else None
            found_a = state.access_tokens.get(access) if access else None
            if (refresh and found_r is None) or (access and found_a is None):
                raise NotFound("unknown " + ("refresh_token" if refresh and not found_r
                                             else "access_token"))
            for tok in (found_r, found_a):
                if tok is not None:
                    tok.revoked = True
        return JSONResponse({"revoked": [k for k, v in (("refresh_token", refresh),
                                                        ("access_token", access)) if v]})

    @_handler
    async def stats(request: Request) -> Response:
        return JSONResponse(state.stats(request.query_params.get("client_id") or None))

    @_handler
    async def deliveries(request: Request) -> Response:
        q = request.query_params
        since = _query_int(request, "since_id") or 0
        with state.lock:
            rows = [d.to_json() for d in state.deliveries[max(0, since):]
                    if (not q.get("client_id") or d.client_id == q["client_id"])
                    and (not q.get("user_id") or d.user_id == q["user_id"])
                    and (not q.get("status") or d.status == q["status"])
                    and (not q.get("mode") or d.mode == q["mode"])]
        return JSONResponse({"deliveries": rows})

    def _delivery(request: Request):
        try:
            delivery_id = int(request.path_params["delivery_id"])
        except ValueError:
            raise BadInput("delivery id must be an integer") from None
        found = state.delivery(delivery_id)
        if found is None:
            raise NotFound(f"no delivery {delivery_id}")
        return found

    @_handler
    async def delivery(request: Request) -> Response:
        return JSONResponse(_delivery(request).to_json())

    @_handler
    async def content(request: Request) -> Response:
        found = _delivery(request)
        if found.content_path is None or not found.content_path.exists():
            raise NotFound(f"the content of delivery {found.id} was not kept (keep_content off)")
        return FileResponse(found.content_path, media_type="application/octet-stream",
                            headers={"X-Content-SHA256": found.sha256})

    @_handler
    async def settings(request: Request) -> Response:
        s = world.settings
        if request.method == "POST":
            data = await _body(request)
            unknown = sorted(set(data) - {"auto_approve", "access_token_ttl", "refresh_token_ttl",
                                          "timestamp_window", "keep_content"})
            if unknown:
                raise BadInput(f"unknown digi.me settings: {', '.join(unknown)}")
            for key in ("auto_approve", "keep_content"):
                if key in data and not isinstance(data[key], bool):
                    raise BadInput(f"{key} must be true or false")
            ints = {k: _int(data, k, minimum=1) for k in
                    ("access_token_ttl", "refresh_token_ttl", "timestamp_window") if k in data}
            for key in ("auto_approve", "keep_content"):
                if key in data:
                    setattr(s, key, data[key])
            for key, value in ints.items():
                setattr(s, key, value)
        return JSONResponse({
            "auto_approve": s.auto_approve, "access_token_ttl": s.access_token_ttl,
            "refresh_token_ttl": s.refresh_token_ttl, "timestamp_window": s.timestamp_window,
            "keep_content": s.keep_content})

    return [
        Route("/contracts", contracts, methods=["GET", "POST"]),
        Route("/users", users, methods=["POST"]),
        Route("/tokens", tokens, methods=["POST"]),
        Route("/tokens/expire", expire, methods=["POST"]),
        Route("/tokens/revoke", revoke, methods=["POST"]),
        Route("/stats", stats, methods=["GET"]),
        Route("/deliveries", deliveries, methods=["GET"]),
        Route("/deliveries/{delivery_id}", delivery, methods=["GET"]),
        Route("/deliveries/{delivery_id}/content", content, methods=["GET"]),
        Route("/settings", settings, methods=["GET", "POST"]),
    ]
