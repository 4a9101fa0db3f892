"""Helpers for the PDA tests: built by hand on httpx + PyJWT, not on sandbox code.

Every test registers its own app (unique id) and writes unique data, because the session
sandbox, its app registry and each PDA's duplicate index are shared by all tests.
"""

from __future__ import annotations

import uuid

import httpx
import jwt

CALLBACK = "http://127.0.0.1:9/pda/callback"


def uid() -> str:
    return uuid.uuid4().hex[:10]


def api(pda: dict) -> str:
    return pda["url"] + "/api/v2.6"


def new_app(pda: dict, roles: list[str], *, redirects: list[str] | None = None,
            version: str = "1.0.0", enable: bool = True, app_id: str | None = None) -> str:
    """Register an app (and enable it on `pda` through the PDA's control hook)."""
    app_id = app_id or f"test-{uid()}"
    spec = {"id": app_id, "version": version, "roles": roles,
            "validRedirectUris": redirects if redirects is not None else [CALLBACK]}
    if enable:
        resp = httpx.post(pda["url"] + "/_control/apps", json=spec)
    else:
        resp = httpx.post(pda["control"] + "/apps", json=spec)
    assert resp.status_code == 201, resp.text
    return app_id


def mint(pda: dict, application: str | None = None, **times: float) -> str:
    """A token from the control hook: owner token when `application` is None."""
    body: dict = dict(times)
    if application is not None:
        body["application"] = application
    resp = httpx.post(pda["url"] + "/_control/token", json=body)
    assert resp.status_code == 200, resp.text
    return resp.json()["token"]


def claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def header(token: str) -> dict:
    return jwt.get_unverified_header(token)


def auth(token: str) -> dict[str, str]:
    return {"X-Auth-Token": token}


def pda(sandbox, name: str = "alice") -> dict:
    """The PDA's {name, domain, url} plus the global control URL."""
    return {**sandbox.pda(name), "control": sandbox.control_url}


def shift_clock(sandbox, seconds: float) -> None:
    resp = sandbox.control("POST", "/clock", json={"shift_seconds": seconds})
    assert resp.status_code == 200, resp.text


def reset_clock(sandbox) -> None:
    sandbox.control("POST", "/clock", json={"offset_seconds": 0})
