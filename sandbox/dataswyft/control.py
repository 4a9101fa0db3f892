"""Sandbox control API for the Dataswyft side (never part of the real protocol).

Per PDA (on each PDA host under `/_control/...`, and on the main port under
`/_control/pdas/{name}/...`): register/enable apps, mint tokens with chosen times, and look
at what the PDA stored. Global (main port, `/_control/...`): the app registry and the PDA
list. JSON in, JSON out; bad input is a 400 with {"error": "..."}, never a 500.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from .applications import flags
from .state import DataswyftState, Pda

MAX_CONTROL_BODY = 1024 * 1024


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


class BadInput(ValueError):
    pass


async def _json(request: Request, *, required: bool = True) -> dict[str, Any]:
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_CONTROL_BODY:
            raise BadInput("body too large (1 MiB at most)")
    if not raw.strip():
        if required:
            raise BadInput("a JSON object body is required")
        return {}
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise BadInput(f"invalid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise BadInput("the body must be a JSON object")
    return data


def _number(body: dict, key: str) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadInput(f"{key} must be a number of seconds")
    return float(value)


def _state(world: Any) -> DataswyftState:
    state = getattr(world, "dataswyft", None)
    if state is None:
        raise LookupError("the Dataswyft sandbox is not set up")
    return state


async def _register_and_enable(state: DataswyftState, pda: Pda, request: Request) -> Response:
    app = state.register(await _json(request))
    pda.enable(app)
    return JSONResponse({**app.to_json(), "pda": pda.name, **flags(app, pda)}, status_code=201)


async def _set_enabled(state: DataswyftState, pda: Pda, app_id: str, on: bool) -> Response:
    app = state.apps.get(app_id)
    if app is None:
        return _error(404, f"unknown app {app_id!r}")
    if on:
        pda.enable(app)
    else:
        pda.disable(app_id)
    return JSONResponse({**app.to_json(), "pda": pda.name, **flags(app, pda)})


async def _token(state: DataswyftState, pda: Pda, request: Request) -> Response:
    """{application?, version?, iat?, exp?, iat_offset?, exp_offset?} -> {"token"}."""
    body = await _json(request, required=False)
    now = state.now()
    iat_abs, exp_abs = _number(body, "iat"), _number(body, "exp")
    iat_off, exp_off = _number(body, "iat_offset"), _number(body, "exp_offset")
    iat = int(iat_abs if iat_abs is not None else now + (iat_off or 0))
    exp = int(exp_abs) if exp_abs is not None else None
    if exp is None and exp_off is not None:
        exp = int(now + exp_off)
    app_id = body.get("application")
    if app_id is None:
        return JSONResponse({"token": pda.tokens.mint_owner(iat, exp)})
    if not isinstance(app_id, str) or not app_id:
        raise BadInput("application must be a non-empty string (omit it for an owner token)")
    app = state.apps.get(app_id)
    version = body.get("version", app.version if app else "1.0.0")
    if not isinstance(version, str):
        raise BadInput("version must be a string")
    return JSONResponse({"token": pda.tokens.mint_app(app_id, version, iat, exp)})


def _records(pda: Pda, request: Request) -> Response:
    ns = request.query_params.get("namespace") or None
    ep = request.query_params.get("endpoint") or None
    out = []
    for rec in sorted(pda.records.records.values(), key=lambda r: r.seq):
        rec_ns, _, rec_ep = rec.endpoint.partition("/")
        if ns and rec_ns != ns:
            continue
        if ep and ep not in (rec_ep, rec.endpoint):
            continue
        out.append({**rec.to_json(as_stored=False), "links": list(rec.links),
                    "writtenAt": int(rec.written_at * 1000)})
    return JSONResponse({"records": out})


def _files(state: DataswyftState, pda: Pda) -> Response:
    out = []
    for f in pda.files.files.values():
        obj = state.objects.head(f"{pda.domain}/{f.file_id}")
        out.append({**f.to_json(owner_view=True), "sha256": obj.sha256 if obj else None,
                    "size": obj.size if obj else None})
    return JSONResponse({"files": out})


def _file_content(state: DataswyftState, pda: Pda, file_id: str) -> Response:
    obj = state.objects.head(f"{pda.domain}/{file_id}") if pda.files.get(file_id) else None
    if obj is None:
        return _error(404, f"no content for file {file_id!r}")
    if obj.path is None or not obj.path.exists():
        return _error(404, "content was not kept (keep_content is off)")
    return FileResponse(obj.path, media_type=obj.content_type or "application/octet-stream")


def _info(pda: Pda) -> Response:
    return JSONResponse({**pda.to_json(), "owner": pda.owner, "password": pda.password,
                         "userId": pda.user_id,
                         "apps": {k: {"version": v.version, "enabled": v.enabled}
                                  for k, v in pda.apps.items()}})


async def pda_control(state: DataswyftState, pda: Pda, request: Request, sub: str) -> Response:
    """Dispatch `/_control/<sub>` for one PDA."""
    parts = [p for p in sub.split("/") if p]
    method = request.method
    try:
        if method == "POST" and parts == ["apps"]:
            return await _register_and_enable(state, pda, request)
        if (method == "POST" and len(parts) == 3 and parts[0] == "apps"
                and parts[2] in ("enable", "disable")):
            return await _set_enabled(state, pda, parts[1], parts[2] == "enable")
        if method == "POST" and parts == ["token"]:
            return await _token(state, pda, request)
        if method == "GET" and parts == ["records"]:
            return _records(pda, request)
        if method == "GET" and parts == ["files"]:
            return _files(state, pda)
        if method == "GET" and len(parts) == 3 and parts[0] == "files" and parts[2] == "content":
            return _file_content(state, pda, parts[1])
        if method == "GET" and parts == ["info"]:
            return _info(pda)
    except (BadInput, ValueError) as exc:
        return _error(400, str(exc))
    return _error(404, f"no control route {method} /{'/'.join(parts)}")


def dataswyft_control_routes(world: Any) -> list[BaseRoute]:
    """Routes the server mounts under `/_control` on the main port."""

    async def post_apps(request: Request) -> Response:
        try:
            app = _state(world).register(await _json(request))
        except (BadInput, ValueError) as exc:
            return _error(400, str(exc))
        return JSONResponse(app.to_json(), status_code=201)

    async def get_apps(request: Request) -> Response:
        return JSONResponse({"apps": [a.to_json() for a in _state(world).apps.values()]})

    async def get_pdas(request: Request) -> Response:
        return JSONResponse({"pdas": [p.to_json() for p in _state(world).pdas.values()]})

    async def post_pdas(request: Request) -> Response:
        try:
            body = await _json(request)
            name, password = body.get("name"), body.get("password")
            if not isinstance(name, str) or not name:
                raise BadInput("name is required")
            if password is not None and (not isinstance(password, str) or not password):
                raise BadInput("password must be a non-empty string")
            if name in _state(world).pdas:
                return _error(409, f"PDA {name!r} already exists")
            launcher = getattr(world, "pda_launcher", None)
            if launcher is None:
                return _error(503, "this sandbox cannot start PDAs at run time")
            pda = await launcher(name, password)
        except (BadInput, ValueError) as exc:
            return _error(400, str(exc))
        return JSONResponse(pda.to_json(), status_code=201)

    async def per_pda(request: Request) -> Response:
        state = _state(world)
        pda = state.pdas.get(request.path_params["name"])
        if pda is None:
            return _error(404, f"unknown PDA {request.path_params['name']!r}")
        return await pda_control(state, pda, request, request.path_params["rest"])

    return [
        Route("/apps", post_apps, methods=["POST"]),
        Route("/apps", get_apps, methods=["GET"]),
        Route("/pdas", get_pdas, methods=["GET"]),
        Route("/pdas", post_pdas, methods=["POST"]),
        Route("/pdas/{name}/{rest:path}", per_pda, methods=["GET", "POST"]),
    ]
