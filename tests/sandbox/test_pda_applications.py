"""Applications API: HatApplication shape, hmi list, setup/disable (owner), access-token
(owner or retrieveapplicationtoken:{id}), the public hmi, and 404 for unknown apps."""

from __future__ import annotations

import httpx

from tests.sandbox.test_pda_support import CALLBACK, api, auth, claims, mint, new_app, pda, uid

FORBIDDEN = {"error": "Forbidden", "message": "Access Denied"}


def test_hat_application_shape_and_setup_disable(sandbox):
    p = pda(sandbox)
    app = new_app(p, ["namespacewrite:apps", "managefiles:*"], version="3.1.0", enable=False)
    owner = mint(p)
    got = httpx.get(f"{api(p)}/applications/{app}", headers=auth(owner))
    assert got.status_code == 200 and got.headers["x-auth-token"]
    body = got.json()
    assert {"application", "setup", "enabled", "active", "needsUpdating"} <= set(body)
    assert body["setup"] is False and body["enabled"] is False
    a = body["application"]
    assert a["id"] == app and a["kind"]["kind"] == "App" and a["info"]["version"] == "3.1.0"
    assert a["setup"]["validRedirectUris"] == [CALLBACK]
    assert a["permissions"]["rolesGranted"] == [{"role": "namespacewrite", "detail": "apps"},
                                                {"role": "managefiles", "detail": "*"}]
    on = httpx.get(f"{api(p)}/applications/{app}/setup", headers=auth(owner)).json()
    assert on["setup"] is True and on["enabled"] is True and on["needsUpdating"] is False
    off = httpx.get(f"{api(p)}/applications/{app}/disable", headers=auth(owner)).json()
    assert off["enabled"] is False
    hmi = httpx.get(f"{api(p)}/applications/hmi", params={"applicationId": app.upper()},
                    headers=auth(owner))
    assert [x["application"]["id"] for x in hmi.json()] == [app]
    public = httpx.get(f"{api(p)}/applications/{app}/hmi")
    assert public.status_code == 200 and public.json()["id"] == app


def test_unknown_app_is_404_application_not_found(sandbox):
    p = pda(sandbox)
    missing = f"missing-{uid()}"
    resp = httpx.get(f"{api(p)}/applications/{missing}", headers=auth(mint(p)))
    assert resp.status_code == 404
    assert resp.json() == {"message": "Application not Found", "cause": f"Application {missing} "
                           "does not appear to be a valid application registered with the DEX"}
    assert httpx.get(f"{api(p)}/applications/{missing}/hmi").status_code == 404


def test_access_token_for_owner_and_for_retrieveapplicationtoken(sandbox):
    p = pda(sandbox)
    target = new_app(p, ["namespaceread:at"], version="1.4.0")
    owner = mint(p)
    resp = httpx.get(f"{api(p)}/applications/{target}/access-token", headers=auth(owner))
    assert resp.status_code == 200
    body = resp.json()
    assert set(body) == {"accessToken", "userId"}
    minted = claims(body["accessToken"])
    assert minted["application"] == target and minted["applicationVersion"] == "1.4.0"
    assert claims(resp.headers["x-auth-token"])["accessScope"] == "owner"  # caller's token renewed
    plain = mint(p, target)
    denied = httpx.get(f"{api(p)}/applications/{target}/access-token", headers=auth(plain))
    assert denied.status_code == 403 and denied.json() == FORBIDDEN
    helper = mint(p, new_app(p, [f"retrieveapplicationtoken:{target}"]))
    ok = httpx.get(f"{api(p)}/applications/{target}/access-token", headers=auth(helper))
    assert ok.status_code == 200 and claims(ok.json()["accessToken"])["application"] == target
    as_owner_role = mint(p, new_app(p, ["owner"]))  # owner role never covers this one
    refused = httpx.get(f"{api(p)}/applications/{target}/access-token", headers=auth(as_owner_role))
    assert refused.status_code == 403


def test_app_tokens_cannot_manage_apps(sandbox):
    p = pda(sandbox)
    app = new_app(p, ["namespaceread:x"])
    token = mint(p, app)
    for path in (f"/applications/{app}", f"/applications/{app}/setup", "/applications/hmi",
                 "/applications"):
        resp = httpx.get(api(p) + path, headers=auth(token))
        assert resp.status_code == 403, path
    assert httpx.get(api(p) + "/applications", headers=auth(mint(p))).status_code == 200


def test_head_is_answered_like_get_without_a_body(sandbox):
    p = pda(sandbox)
    resp = httpx.head(p["url"] + "/publickey")
    assert resp.status_code == 200 and resp.content == b""
    assert resp.headers["content-type"] == "text/plain; charset=utf-8"
