"""The global control API: clock, fault injection (status, Retry-After, delay, drop;
next N or probability), request log, and clear errors for malformed control calls."""

from __future__ import annotations

import time

import httpx
import pytest


@pytest.fixture
def clean(sandbox):
    sandbox.control("DELETE", "/faults")
    yield sandbox
    sandbox.control("DELETE", "/faults")
    sandbox.control("POST", "/clock", json={"offset_seconds": 0})


def test_index_lists_every_url(sandbox):
    urls = sandbox.control("GET", "/").json()
    assert urls["digime_api_url"].endswith("/v1.7/")
    assert urls["onboard_url"].endswith("/apps/saas/")
    assert {p["name"] for p in urls["pdas"]} == {"alice", "bob"}
    for pda in urls["pdas"]:
        assert pda["domain"].startswith("localhost:") and pda["url"] == "http://" + pda["domain"]


def test_clock_shift_and_reset(clean):
    before = clean.control("GET", "/clock").json()
    shifted = clean.control("POST", "/clock", json={"shift_seconds": 5 * 86400}).json()
    assert shifted["offset_seconds"] == before["offset_seconds"] + 5 * 86400
    assert shifted["now"] - time.time() == pytest.approx(5 * 86400, abs=5)
    reset = clean.control("POST", "/clock", json={"offset_seconds": 0}).json()
    assert reset["offset_seconds"] == 0


def test_status_fault_for_next_n_requests_with_retry_after(clean):
    rule = clean.control("POST", "/faults", json={
        "target": "digime", "path": "jwks/oauth$", "status": 503, "retry_after": "7", "times": 2,
    })
    assert rule.status_code == 201
    url = clean.digime_api_url + "jwks/oauth"
    first, second, third = (httpx.get(url) for _ in range(3))
    for resp in (first, second):
        assert resp.status_code == 503 and resp.headers["retry-after"] == "7"
        body = resp.json()["error"]
        assert body["code"] == "ServiceUnavailable" and body["reference"]
        assert resp.headers["x-error-code"] == "ServiceUnavailable"
    assert third.status_code == 200 and third.json()["keys"]
    listed = clean.control("GET", "/faults").json()["faults"]
    assert listed[0]["fired"] == 2


def test_pda_faults_use_the_pda_error_envelope_and_match_the_host(clean):
    alice, bob = clean.pda("alice"), clean.pda("bob")
    clean.control("POST", "/faults", json={"target": "pda", "host": alice["domain"],
                                           "path": "^/publickey$", "status": 404, "times": 1})
    assert httpx.get(bob["url"] + "/publickey").status_code == 200  # other host untouched
    resp = httpx.get(alice["url"] + "/publickey")
    assert resp.status_code == 404
    assert resp.json() == {"error": "Not Found", "message": "HAT unavailable"}
    assert httpx.get(alice["url"] + "/publickey").status_code == 200


def test_dropped_connection(clean):
    clean.control("POST", "/faults", json={"path": "jwks", "drop": True, "times": 1})
    with pytest.raises(httpx.TransportError):
        httpx.get(clean.digime_api_url + "jwks/oauth")
    assert httpx.get(clean.digime_api_url + "jwks/oauth").status_code == 200


def test_delay_then_pass_through(clean):
    clean.control("POST", "/faults", json={"path": "jwks", "delay_ms": 400, "times": 1})
    started = time.monotonic()
    resp = httpx.get(clean.digime_api_url + "jwks/oauth")
    assert resp.status_code == 200
    assert time.monotonic() - started >= 0.4  # the fault delayed a real answer


def test_probability_one_fires_every_time_and_rules_can_be_deleted(clean):
    rule = clean.control("POST", "/faults", json={"path": "jwks", "status": 500,
                                                  "probability": 1.0}).json()
    assert all(httpx.get(clean.digime_api_url + "jwks/oauth").status_code == 500
               for _ in range(5))
    assert clean.control("DELETE", f"/faults/{rule['id']}").status_code == 200
    assert httpx.get(clean.digime_api_url + "jwks/oauth").status_code == 200
    assert clean.control("DELETE", f"/faults/{rule['id']}").status_code == 404


def test_control_paths_are_never_faulted(clean):
    clean.control("POST", "/faults", json={"path": ".*", "status": 500, "probability": 1.0})
    assert clean.control("GET", "/clock").status_code == 200
    assert clean.control("DELETE", "/faults").status_code == 200


@pytest.mark.parametrize(("rule", "message"), [
    ({"path": "x", "status": 503}, "give times"),
    ({"path": "x", "times": 1}, "at least one of status, drop or delay_ms"),
    ({"path": "(", "status": 500, "times": 1}, "not a valid regular expression"),
    ({"path": "x", "status": 99, "times": 1}, "status must be"),
    ({"path": "x", "status": 500, "probability": 2}, "probability must be"),
    ({"path": "x", "status": 500, "times": 0}, "times must be"),
    ({"target": "ftp", "status": 500, "times": 1}, "target must be"),
    ({"path": "x", "status": 500, "times": 1, "colour": "red"}, "unknown field(s): colour"),
])
def test_malformed_fault_rules_get_a_clear_400(clean, rule, message):
    resp = clean.control("POST", "/faults", json=rule)
    assert resp.status_code == 400 and message in resp.json()["error"]


def test_malformed_control_bodies(clean):
    resp = clean.control("POST", "/faults", content=b"{not json",
                         headers={"content-type": "application/json"})
    assert resp.status_code == 400 and "not valid JSON" in resp.json()["error"]
    resp = clean.control("POST", "/clock", json={"shift_seconds": "soon"})
    assert resp.status_code == 400 and "shift_seconds must be a number" in resp.json()["error"]
    resp = clean.control("POST", "/clock", json=[1])
    assert resp.status_code == 400


def test_request_log_records_status_host_and_fault(clean):
    clean.control("DELETE", "/requests")
    clean.control("POST", "/faults", json={"path": "jwks", "status": 502, "times": 1})
    httpx.get(clean.digime_api_url + "jwks/oauth", headers={"Authorization": "Bearer secret-xyz"})
    httpx.get(clean.pda("bob")["url"] + "/publickey")
    log = clean.control("GET", "/requests").json()["requests"]
    digime = [r for r in log if r["target"] == "digime" and r["path"].endswith("jwks/oauth")]
    assert digime[0]["status"] == 502 and digime[0]["fault"]
    assert "authorization" in digime[0]["headers"]  # header names only
    assert "secret-xyz" not in str(log)
    pda = clean.control("GET", "/requests", params={"target": "pda"}).json()["requests"]
    assert pda[-1]["host"] == clean.pda("bob")["domain"] and pda[-1]["status"] == 200


def test_after_faults_let_the_request_land_then_lose_the_answer(clean):
    alice = clean.pda("alice")
    clean.control("POST", "/faults", json={"target": "pda", "host": alice["domain"],
                                           "path": "^/publickey$", "drop": True, "after": True,
                                           "times": 1})
    with pytest.raises(httpx.TransportError):
        httpx.get(alice["url"] + "/publickey")
    log = clean.control("GET", "/requests", params={"target": "pda"}).json()["requests"]
    assert log[-1]["fault"].endswith("(after)") and log[-1]["status"] is None
    resp = clean.control("POST", "/faults", json={"path": "x", "status": 500, "after": True,
                                                  "times": 1})
    assert resp.status_code == 400 and "not to status" in resp.json()["error"]
