"""digi.me sandbox: the control routes (contracts, users, tokens, stats, deliveries, settings)."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from .test_digime_support import (
    control,
    delivery_for,
    import_write,
    mint,
    postbox_write,
    refresh,
    register,
    rsa_key,
)


def _pem(key) -> str:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


@pytest.mark.parametrize(("body", "text"), [
    ({}, "application_id"),
    ({"application_id": "a", "contract_id": "c"}, "public_key"),
    ({"application_id": "a", "contract_id": "c", "public_key": "nope"}, "PEM"),
    ({"application_id": "a", "contract_id": "c", "public_key": "-----BEGIN PUBLIC KEY-----x"},
     "public_key"),
    ({"application_id": "a", "contract_id": "c", "client_id": "x_y"}, "client_id"),
    ({"application_id": "a", "contract_id": "c", "redirect_uris": "http://x"}, "redirect_uris"),
])
def test_contract_registration_errors(sandbox, body, text):
    if "client_id" in body or "redirect_uris" in body:
        body = {**body, "public_key": _pem(rsa_key())}
    resp = control(sandbox, "POST", "/contracts", json=body)
    assert resp.status_code == 400 and text in resp.json()["error"]


def test_contract_key_must_be_rsa_2048(sandbox):
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    curve = ec.generate_private_key(ec.SECP256R1())
    for key in (small, curve):
        resp = control(sandbox, "POST", "/contracts", json={
            "application_id": "a", "contract_id": "c", "public_key": _pem(key)})
        assert resp.status_code == 400, resp.text


def test_non_json_bodies_are_400(sandbox):
    for path in ("/contracts", "/users", "/tokens", "/tokens/expire", "/tokens/revoke",
                 "/settings"):
        resp = control(sandbox, "POST", path, content=b"{nope")
        assert resp.status_code == 400 and "JSON" in resp.json()["error"]
        resp = control(sandbox, "POST", path, json=[1])
        assert resp.status_code == 400


def test_contracts_are_listed(sandbox):
    contract = register(sandbox, redirect_uris=["https://app.example/cb"])
    listed = {c["client_id"]: c for c in control(sandbox, "GET", "/contracts").json()["contracts"]}
    assert listed[contract.client_id]["redirect_uris"] == ["https://app.example/cb"]


def test_users_and_tokens(sandbox):
    user = control(sandbox, "POST", "/users", json={"user_id": f"u-{id(sandbox)}"}).json()
    assert user["public_key"].startswith("-----BEGIN RSA PUBLIC KEY-----") and user["postbox_id"]
    assert control(sandbox, "POST", "/users", json={"user_id": user["user_id"]}).status_code == 400
    contract = register(sandbox)
    cred = mint(sandbox, contract, user_id=user["user_id"], access_ttl=60)
    assert cred["postbox_id"] == user["postbox_id"] and cred["public_key"] == user["public_key"]
    assert cred["refresh_token"]["expires_on"] > cred["access_token"]["expires_on"]
    resp = control(sandbox, "POST", "/tokens", json={"client_id": contract.client_id,
                                                     "user_id": "ghost"})
    assert resp.status_code == 400 and "POST /users" in resp.json()["error"]
    resp = control(sandbox, "POST", "/tokens", json={"client_id": "nobody_x"})
    assert resp.status_code == 400
    resp = control(sandbox, "POST", "/tokens", json={"client_id": contract.client_id,
                                                     "access_ttl": "soon"})
    assert resp.status_code == 400 and "access_ttl" in resp.json()["error"]
    fixed = mint(sandbox, contract, access_expires_on=2_000_000_000)
    assert fixed["access_token"]["expires_on"] == 2_000_000_000


def test_expire_and_revoke_hooks(sandbox):
    contract = register(sandbox)
    cred = mint(sandbox, contract)
    resp = control(sandbox, "POST", "/tokens/expire", json={"access_token": "nope"})
    assert resp.status_code == 404
    resp = control(sandbox, "POST", "/tokens/expire",
                   json={"access_token": cred["access_token"]["value"]})
    assert resp.status_code == 200
    assert resp.json()["access_token"]["expires_on"] < cred["access_token"]["expires_on"]
    assert control(sandbox, "POST", "/tokens/revoke", json={}).status_code == 400
    assert control(sandbox, "POST", "/tokens/revoke",
                   json={"access_token": "nope"}).status_code == 404
    resp = control(sandbox, "POST", "/tokens/revoke",
                   json={"refresh_token": cred["refresh_token"]["value"]})
    assert resp.status_code == 200
    assert refresh(sandbox, contract, cred["refresh_token"]["value"]).status_code == 401


def test_stats_count_per_client_and_in_total(sandbox):
    contract = register(sandbox)
    cred = mint(sandbox, contract)
    assert import_write(sandbox, contract, cred["access_token"]["value"], b"s1").status_code == 201
    assert postbox_write(sandbox, contract, cred, b"s2").status_code == 200
    control(sandbox, "POST", "/tokens/expire", json={"access_token": cred["access_token"]["value"]})
    assert postbox_write(sandbox, contract, cred, b"s3").json()["status"] == "pending"
    refresh(sandbox, contract, cred["refresh_token"]["value"])
    stats = control(sandbox, "GET", "/stats", params={"client_id": contract.client_id}).json()
    assert stats == {"refresh_calls": 1, "token_calls": 0, "authorize_calls": 0,
                     "postbox_calls": 2, "import_calls": 1, "delivered": 2, "pending": 1}
    total = control(sandbox, "GET", "/stats").json()
    assert all(total[k] >= stats[k] for k in stats)
    unknown = control(sandbox, "GET", "/stats", params={"client_id": "nobody"}).json()
    assert set(unknown.values()) == {0}


def test_deliveries_filters(sandbox):
    contract = register(sandbox)
    cred = mint(sandbox, contract)
    import_write(sandbox, contract, cred["access_token"]["value"], b"f1")
    rows = control(sandbox, "GET", "/deliveries", params={"client_id": contract.client_id}).json()
    (row,) = rows["deliveries"]
    by_user = control(sandbox, "GET", "/deliveries", params={"user_id": cred["user_id"]}).json()
    assert by_user["deliveries"] == [row]
    since = control(sandbox, "GET", "/deliveries", params={"since_id": row["id"]}).json()
    assert all(r["id"] > row["id"] for r in since["deliveries"])
    assert control(sandbox, "GET", "/deliveries", params={"since_id": "x"}).status_code == 400
    assert control(sandbox, "GET", "/deliveries/999999").status_code == 404
    assert control(sandbox, "GET", "/deliveries/abc").status_code == 400
    assert control(sandbox, "GET", "/deliveries/999999/content").status_code == 404


def test_keep_content_off_stores_only_the_record(sandbox):
    contract = register(sandbox)
    cred = mint(sandbox, contract)
    assert control(sandbox, "POST", "/settings", json={"keep_content": False}).status_code == 200
    try:
        data = b"not kept"
        assert import_write(sandbox, contract, cred["access_token"]["value"], data).status_code \
            == 201
    finally:
        control(sandbox, "POST", "/settings", json={"keep_content": True})
    (row,) = delivery_for(sandbox, hashlib.sha256(data).hexdigest())
    assert row["has_content"] is False and row["size"] == len(data)
    assert control(sandbox, "GET", f"/deliveries/{row['id']}/content").status_code == 404


def test_settings_validation(sandbox):
    for body in ({"auto_approve": "yes"}, {"access_token_ttl": 0}, {"access_token_ttl": "1"},
                 {"nonsense": 1}):
        resp = control(sandbox, "POST", "/settings", json=body)
        assert resp.status_code == 400, body
    before = control(sandbox, "GET", "/settings").json()
    resp = control(sandbox, "POST", "/settings", json={"access_token_ttl": 120})
    try:
        assert resp.json()["access_token_ttl"] == 120
        contract = register(sandbox)
        cred = mint(sandbox, contract)
        gap = cred["refresh_token"]["expires_on"] - cred["access_token"]["expires_on"]
        assert gap == before["refresh_token_ttl"] - 120
    finally:
        control(sandbox, "POST", "/settings", json={"access_token_ttl": before["access_token_ttl"]})
