"""Dataswyft control routes: per PDA (on its host and via /_control/pdas/{name}/...) and
global (app registry, PDA list, starting a PDA at run time); bad input is a clear 400."""

from __future__ import annotations

import httpx

from tests.sandbox.test_pda_support import CALLBACK, api, auth, claims, mint, new_app, pda, uid


def test_global_app_registry_and_pda_list(sandbox):
    app_id = f"global-{uid()}"
    created = sandbox.control("POST", "/apps", json={
        "id": app_id, "roles": [{"role": "namespacewrite", "detail": "g"}, "managefiles:*"],
        "valid_redirect_uris": [CALLBACK]})
    assert created.status_code == 201
    assert created.json()["roles"] == ["namespacewrite:g", "managefiles:*"]
    listed = sandbox.control("GET", "/apps").json()["apps"]
    assert any(a["id"] == app_id and a["version"] == "1.0.0" for a in listed)
    pdas = sandbox.control("GET", "/pdas").json()["pdas"]
    assert {p["name"] for p in pdas} >= {"alice", "bob"}
    alice = next(x for x in pdas if x["name"] == "alice")
    assert alice["url"] == "http://" + alice["domain"]
    # registered globally but not enabled on alice: its token is refused with 403
    p = pda(sandbox)
    token = mint(p, app_id)
    resp = httpx.post(f"{api(p)}/data/g/x", json={"v": uid()}, headers=auth(token))
    assert resp.status_code == 403
    enabled = sandbox.control("POST", f"/pdas/alice/apps/{app_id}/enable")
    assert enabled.status_code == 200 and enabled.json()["enabled"] is True
    resp = httpx.post(f"{api(p)}/data/g/x", json={"v": uid()}, headers=auth(token))
    assert resp.status_code == 201


def test_bad_control_input_is_400(sandbox):
    p = pda(sandbox)
    for body in ({"id": "Upper Case"}, {"id": "ok-id", "roles": "notalist"},
                 {"id": "ok-id", "kind": "Weird"}, {"id": "ok-id", "roles": [{"detail": "x"}]}):
        resp = httpx.post(p["url"] + "/_control/apps", json=body)
        assert resp.status_code == 400 and resp.json()["error"]
    not_json = httpx.post(p["url"] + "/_control/apps", content=b"{", headers={
        "Content-Type": "application/json"})
    assert not_json.status_code == 400
    bad_time = httpx.post(p["url"] + "/_control/token", json={"iat_offset": "soon"})
    assert bad_time.status_code == 400
    unknown_app = httpx.post(p["url"] + "/_control/apps/never-there/enable")
    assert unknown_app.status_code == 404
    assert sandbox.control("POST", "/pdas", json={}).status_code == 400
    assert sandbox.control("POST", "/pdas", json={"name": "alice"}).status_code == 409
    assert sandbox.control("GET", "/pdas/nobody/info").status_code == 404


def test_token_hook_times(sandbox):
    p = pda(sandbox)
    now = int(httpx.get(sandbox.control_url + "/clock").json()["now"])
    owner = claims(mint(p, iat=now - 100, exp=now + 50))
    assert owner["iat"] == now - 100 and owner["exp"] == now + 50
    assert owner["accessScope"] == "owner" and owner["resource"] == p["domain"]
    offset = claims(mint(p, "some-app", iat_offset=-10, exp_offset=3600))
    assert abs(offset["iat"] - (now - 10)) <= 2 and abs(offset["exp"] - (now + 3600)) <= 2
    assert offset["application"] == "some-app"


def test_records_files_and_info_views(sandbox):
    p = pda(sandbox, "bob")
    ns = f"c{uid()}"
    app = new_app(p, [f"namespacewrite:{ns}"])
    httpx.post(f"{api(p)}/data/{ns}/e", json=[{"a": ns}, {"b": ns}], headers=auth(mint(p, app)))
    records = httpx.get(p["url"] + "/_control/records", params={"namespace": ns}).json()["records"]
    assert [r["data"] for r in records] == [{"a": ns}, {"b": ns}]
    assert records[0]["endpoint"] == f"{ns}/e"
    via_main = sandbox.control("GET", "/pdas/bob/records", params={"endpoint": f"{ns}/e"})
    assert len(via_main.json()["records"]) == 2
    info = httpx.get(p["url"] + "/_control/info").json()
    assert info["name"] == "bob" and info["domain"] == p["domain"] and info["owner"] == "bob"
    assert info["password"] == "sandbox-password"
    assert "files" in httpx.get(p["url"] + "/_control/files").json()


def test_start_a_pda_at_run_time(sandbox_factory):
    box = sandbox_factory()
    resp = box.control("POST", "/pdas", json={"name": "dave", "password": "s3cret"})
    assert resp.status_code == 201
    dave = resp.json()
    assert dave["name"] == "dave" and dave["url"] == "http://" + dave["domain"]
    assert httpx.get(dave["url"] + "/publickey").status_code == 200
    login = httpx.get(dave["url"] + "/users/access_token",
                      headers={"username": "dave", "password": "s3cret"})
    assert login.status_code == 200
    assert claims(login.json()["accessToken"])["iss"] == dave["domain"]
