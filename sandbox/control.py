"""The global control API (`/_control` on the main port): clock, faults, request log.

Platform-specific knobs (contracts, tokens, deliveries, apps, PDAs) come from the
platform packages and are mounted beside these routes by `sandbox.server`.
"""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from .faults import FaultRuleError
from .world import World


class ControlError(ValueError):
    """A control-API request is malformed."""


async def read_json(request: Request) -> dict:
    raw = await request.body()
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise ControlError(f"body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ControlError("body must be a JSON object")
    return data


def bad_request(message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=400)


def control_routes(world: World, urls: callable) -> list[BaseRoute]:
    """Routes for the knobs every test needs, whatever the platform."""

    async def index(request: Request) -> Response:
        return JSONResponse(urls())

    async def clock(request: Request) -> Response:
        if request.method == "POST":
            try:
                data = await read_json(request)
                if "shift_seconds" in data:
                    shift = data["shift_seconds"]
                    if not isinstance(shift, int | float) or isinstance(shift, bool):
                        raise ControlError("shift_seconds must be a number")
                    world.clock.shift(float(shift))
                elif "offset_seconds" in data:
                    offset = data["offset_seconds"]
                    if not isinstance(offset, int | float) or isinstance(offset, bool):
                        raise ControlError("offset_seconds must be a number")
                    world.clock.set_offset(float(offset))
                else:
                    raise ControlError("give shift_seconds (relative) or offset_seconds (absolute)")
            except ControlError as exc:
                return bad_request(str(exc))
        return JSONResponse({"now": world.clock.now(), "offset_seconds": world.clock.offset})

    async def faults(request: Request) -> Response:
        if request.method == "POST":
            try:
                rule = world.faults.add(await read_json(request))
            except (ControlError, FaultRuleError) as exc:
                return bad_request(str(exc))
            return JSONResponse(rule.to_json(), status_code=201)
        if request.method == "DELETE":
            world.faults.clear()
            return JSONResponse({"cleared": True})
        return JSONResponse({"faults": [r.to_json() for r in world.faults.rules()]})

    async def fault(request: Request) -> Response:
        try:
            rule_id = int(request.path_params["rule_id"])
        except ValueError:
            return bad_request("fault id must be an integer")
        if not world.faults.remove(rule_id):
            return JSONResponse({"error": f"no fault rule {rule_id}"}, status_code=404)
        return JSONResponse({"deleted": rule_id})

    async def requests(request: Request) -> Response:
        if request.method == "DELETE":
            world.requests.clear()
            return JSONResponse({"cleared": True})
        q = request.query_params
        try:
            limit = int(q.get("limit", "1000"))
        except ValueError:
            return bad_request("limit must be an integer")
        items = world.requests.list(target=q.get("target"), host=q.get("host"),
                                    path_contains=q.get("path"), limit=max(1, limit))
        return JSONResponse({"requests": [r.to_json() for r in items]})

    return [
        Route("/", index, methods=["GET"]),
        Route("/clock", clock, methods=["GET", "POST"]),
        Route("/faults", faults, methods=["GET", "POST", "DELETE"]),
        Route("/faults/{rule_id}", fault, methods=["DELETE"]),
        Route("/requests", requests, methods=["GET", "DELETE"]),
    ]
