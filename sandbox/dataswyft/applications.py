"""Applications API (`/api/v2.6/applications...`): the registry as one PDA sees it.

HatApplication = registry description + this PDA's flags (setup, enabled, active,
needsUpdating). `needsUpdating` is true when the registry version moved on since the owner
set the app up; the login flow then asks for consent again.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse, Response

from . import errors
from .errors import ApiError
from .routing import API26, Call, Router
from .state import AppSpec, Pda

AID = r"(?P<app>[^/]+)"


def registry_json(app: AppSpec) -> dict[str, Any]:
    """The registry ("DEX") description of an app, in the HatApplication `application` shape."""
    url = app.valid_redirect_uris[0] if app.valid_redirect_uris else ""
    return {
        "id": app.id,
        "kind": {"kind": app.kind, "url": url},
        "info": {
            "version": app.version, "published": False, "name": app.name or app.id,
            "headline": f"{app.name or app.id} (sandbox app)",
            "description": {"text": f"Registered in the datapost sandbox as {app.id}."},
            "termsUrl": "", "supportContact": "", "dataPreview": [],
            "graphics": {"banner": {"normal": ""}, "logo": {"normal": ""}, "screenshots": []},
        },
        "developer": {"id": "datapost-sandbox", "name": "datapost sandbox", "url": "",
                      "country": ""},
        "permissions": {"rolesGranted": [r.to_json() for r in app.roles]},
        "setup": {"kind": "External", "validRedirectUris": list(app.valid_redirect_uris)},
        "status": {"kind": "Internal", "compatibility": app.version},
    }


def flags(app: AppSpec, pda: Pda) -> dict[str, bool]:
    entry = pda.apps.get(app.id)
    enabled = bool(entry and entry.enabled)
    return {"setup": entry is not None, "enabled": enabled, "active": enabled,
            "needsUpdating": bool(entry and entry.version != app.version)}


def hat_application(app: AppSpec, pda: Pda) -> dict[str, Any]:
    return {"application": registry_json(app), **flags(app, pda)}


def _app(call: Call) -> AppSpec:
    app_id = call.params["app"]
    app = call.state.apps.get(app_id)
    if app is None:
        raise ApiError(errors.controller(
            404, "Application not Found",
            f"Application {app_id} does not appear to be a valid application registered "
            "with the DEX"))
    return app


async def list_apps(call: Call) -> Response:
    if not (call.allowed("owner") or call.allowed("applicationlist")):
        raise ApiError(errors.forbidden(call.request))
    return JSONResponse([hat_application(a, call.pda) for a in call.state.apps.values()])


async def hmi_list(call: Call) -> Response:
    call.require("owner")
    wanted = call.request.query_params.get("applicationId")
    apps = [a for a in call.state.apps.values() if wanted is None or a.id == wanted.lower()]
    return JSONResponse([hat_application(a, call.pda) for a in apps])


async def get_app(call: Call) -> Response:
    call.require("applicationmanage", call.params["app"])
    return JSONResponse(hat_application(_app(call), call.pda))


async def setup(call: Call) -> Response:
    call.require("owner")
    app = _app(call)
    call.pda.enable(app)
    return JSONResponse(hat_application(app, call.pda))


async def disable(call: Call) -> Response:
    call.require("owner")
    app = _app(call)
    call.pda.disable(app.id)
    return JSONResponse(hat_application(app, call.pda))


async def access_token(call: Call) -> Response:
    call.require("retrieveapplicationtoken", call.params["app"])
    app = _app(call)
    token = call.pda.tokens.mint_app(app.id, app.version, int(call.now))
    return JSONResponse({"accessToken": token, "userId": call.pda.user_id})


async def hmi(call: Call) -> Response:
    return JSONResponse(registry_json(_app(call)))


def register(router: Router) -> None:
    apps = f"{API26}/applications"
    router.add("GET", apps, list_apps)
    router.add("GET", f"{apps}/hmi", hmi_list)
    router.add("GET", f"{apps}/{AID}", get_app)
    router.add("GET", f"{apps}/{AID}/setup", setup)
    router.add("GET", f"{apps}/{AID}/disable", disable)
    router.add("GET", f"{apps}/{AID}/access-token", access_token)
    router.add("GET", f"{apps}/{AID}/hmi", hmi, auth="none")
