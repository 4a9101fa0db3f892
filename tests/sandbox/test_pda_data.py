"""Data API: create / read (order, skip, take, filter), the PDA-wide duplicate index,
skipErrors, data-batch, update, delete, and both error envelopes (incl. parse-before-auth)."""

from __future__ import annotations

import json

import httpx

from tests.sandbox.test_pda_support import api, auth, mint, new_app, pda, uid

FORBIDDEN = {"error": "Forbidden", "message": "Access Denied"}
DUPLICATE = {"message": "Bad Request", "cause": "Duplicate data - Duplicate data"}


def setup(sandbox, *roles: str) -> tuple[dict, str, str]:
    """(pda, namespace, app token) with write+read on a fresh namespace plus extra roles."""
    p = pda(sandbox)
    ns = f"t{uid()}"
    app = new_app(p, [f"namespacewrite:{ns}", f"namespaceread:{ns}", *roles])
    return p, ns, mint(p, app)


def test_create_object_and_array(sandbox):
    p, ns, token = setup(sandbox)
    one = httpx.post(f"{api(p)}/data/{ns}/a/b", json={"z": 1, "a": "x"}, headers=auth(token))
    assert one.status_code == 201
    rec = one.json()
    assert set(rec) == {"endpoint", "recordId", "data", "links"}
    assert rec["endpoint"] == f"{ns}/a/b" and rec["links"] == []
    assert json.dumps(rec["data"]) == '{"z": 1, "a": "x"}'  # POST echoes what was sent
    many = httpx.post(f"{api(p)}/data/{ns}/a/b", json=[{"n": 1}, {"n": 2}], headers=auth(token))
    assert many.status_code == 201 and [r["data"]["n"] for r in many.json()] == [1, 2]
    scalar = httpx.post(f"{api(p)}/data/{ns}/s", json="just a string", headers=auth(token))
    assert scalar.status_code == 201 and scalar.json()["data"] == "just a string"
    read = httpx.get(f"{api(p)}/data/{ns}/a/b", headers=auth(token)).json()
    assert [r["recordId"] for r in read] == [rec["recordId"]] + [r["recordId"] for r in many.json()]
    assert "links" not in read[0]
    assert list(read[0]["data"]) == ["a", "z"]  # JSONB key order on the way back


def test_order_skip_take_and_nulls_last(sandbox):
    p, ns, token = setup(sandbox)
    values = [{"k": 3, "i": 0}, {"k": 1, "i": 1}, {"i": 2}, {"k": 2, "i": 3}]
    httpx.post(f"{api(p)}/data/{ns}/o", json=values, headers=auth(token))
    url = f"{api(p)}/data/{ns}/o"

    def order(**params):
        resp = httpx.get(url, params=params, headers=auth(token))
        assert resp.status_code == 200
        return [r["data"]["i"] for r in resp.json()]

    assert order() == [0, 1, 2, 3]
    assert order(orderBy="k") == [1, 3, 0, 2]
    assert order(orderBy="k", ordering="descending") == [0, 3, 1, 2]
    assert order(orderBy="k", skip=1, take=2) == [3, 0]
    assert order(take=0) == []
    bad = httpx.get(url, params={"take": "lots"}, headers=auth(token))
    assert bad.status_code == 400 and bad.json()["error"] == "Bad Request"
    assert httpx.get(f"{api(p)}/data/{ns}/none", headers=auth(token)).json() == []


def test_take_defaults_to_1000(sandbox):
    p, ns, token = setup(sandbox)
    created = httpx.post(f"{api(p)}/data/{ns}/bulk", json=[{"n": i, "u": ns} for i in range(1001)],
                         headers=auth(token), timeout=60)
    assert created.status_code == 201 and len(created.json()) == 1001
    assert len(httpx.get(f"{api(p)}/data/{ns}/bulk", headers=auth(token)).json()) == 1000
    assert len(httpx.get(f"{api(p)}/data/{ns}/bulk", params={"take": 2000},
                         headers=auth(token)).json()) == 1001


def test_single_filter_rule(sandbox):
    p, ns, token = setup(sandbox)
    rows = [{"kind": "a", "deep": {"kind": "b"}, "i": 0}, {"kind": "b", "i": 1},
            {"other": {"kind": "a"}, "i": 2}, {"kind": "a", "i": 3}]
    httpx.post(f"{api(p)}/data/{ns}/f", json=rows, headers=auth(token))
    url = f"{api(p)}/data/{ns}/f"

    def ids(params):
        return [r["data"]["i"] for r in httpx.get(url, params=params, headers=auth(token)).json()]

    assert ids({"kind": "a"}) == [0, 2, 3]  # key at any depth
    assert ids({"deep.kind": "b"}) == [0]  # dotted path
    assert ids([("kind", "a"), ("i", "999")]) == [0, 2, 3]  # only the first unknown key
    assert ids({"kind": "a", "take": 2}) == [0]  # filter after skip/take
    in_query = httpx.get(url, params={"X-Auth-Token": token})  # the token becomes a filter
    assert in_query.status_code == 200 and in_query.json() == []


def test_duplicates_are_pda_wide_and_reject_whole_arrays(sandbox):
    p, ns, token = setup(sandbox)
    data = {"dup": uid()}
    assert httpx.post(f"{api(p)}/data/{ns}/one", json=data, headers=auth(token)).status_code == 201
    again = httpx.post(f"{api(p)}/data/{ns}/two", json=data, headers=auth(token))
    assert again.status_code == 400 and again.json() == DUPLICATE
    fresh = {"fresh": uid()}
    whole = httpx.post(f"{api(p)}/data/{ns}/arr", json=[fresh, data], headers=auth(token))
    assert whole.status_code == 400 and whole.json() == DUPLICATE
    assert httpx.get(f"{api(p)}/data/{ns}/arr", headers=auth(token)).json() == []
    inner = httpx.post(f"{api(p)}/data/{ns}/arr", json=[fresh, fresh], headers=auth(token))
    assert inner.status_code == 400
    skipped = httpx.post(f"{api(p)}/data/{ns}/arr?skipErrors=true", json=[fresh, data, fresh],
                         headers=auth(token))
    assert skipped.status_code == 201 and [r["data"] for r in skipped.json()] == [fresh]
    other_owner_ns = new_app(p, ["namespacewrite:elsewhere-dup"])
    cross = httpx.post(f"{api(p)}/data/elsewhere-dup/x", json=data,
                       headers=auth(mint(p, other_owner_ns)))
    assert cross.status_code == 400 and cross.json() == DUPLICATE


def test_namespace_rights(sandbox):
    p, ns, _ = setup(sandbox)
    write_only = new_app(p, [f"namespacewrite:{ns}"])
    wt = mint(p, write_only)
    created = httpx.post(f"{api(p)}/data/{ns}/w", json={"w": uid()}, headers=auth(wt))
    assert created.status_code == 201
    read = httpx.get(f"{api(p)}/data/{ns}/w", headers=auth(wt))
    assert read.status_code == 403 and read.json() == FORBIDDEN
    wildcard = mint(p, new_app(p, ["namespacewrite:*"]))  # a granted "*" is not a wildcard
    assert httpx.post(f"{api(p)}/data/{ns}/w", json={"w": uid()},
                      headers=auth(wildcard)).status_code == 403
    owner_role = mint(p, new_app(p, ["owner"], enable=False))  # role owner: even when disabled
    assert httpx.get(f"{api(p)}/data/{ns}/w", headers=auth(owner_role)).status_code == 200
    owner = mint(p)
    assert httpx.get(f"{api(p)}/data/{ns}/w", headers=auth(owner)).status_code == 200


def test_batch_with_links_and_its_errors(sandbox):
    p, ns, token = setup(sandbox)
    body = [{"endpoint": f"{ns}/parent", "data": {"p": uid()},
             "links": [{"endpoint": f"{ns}/child", "data": {"c": uid()}}]}]
    created = httpx.post(f"{api(p)}/data-batch", json=body, headers=auth(token))
    assert created.status_code == 201
    rec = created.json()[0]
    assert rec["endpoint"] == f"{ns}/parent" and rec["links"][0]["endpoint"] == f"{ns}/child"
    dup = httpx.post(f"{api(p)}/data-batch", json=body, headers=auth(token))
    assert dup.status_code == 400
    assert dup.json() == {"message": "Bad Request",
                          "cause": "Could not insert data - Duplicate data"}
    foreign = [{"endpoint": f"{ns}/x", "data": {"f": uid()},
                "links": [{"endpoint": "someone-else/x", "data": {"g": uid()}}]}]
    denied = httpx.post(f"{api(p)}/data-batch", json=foreign, headers=auth(token))
    assert denied.status_code == 403 and denied.headers["x-auth-token"]
    assert denied.json() == {"message": "Forbidden", "cause": "Access Denied - No rights to "
                             "insert some or all of the data in the batch"}
    empty = httpx.post(f"{api(p)}/data-batch", json=[], headers=auth(token))
    assert empty.status_code == 500 and empty.json()["error"] == "Internal Server error"
    assert empty.json()["message"].startswith("Server error occurred: ")
    shape = httpx.post(f"{api(p)}/data-batch", json=[{"data": {}}], headers=auth(token))
    assert shape.status_code == 400
    assert shape.json() == {"error": "Bad Request", "message": {
        "obj[0].endpoint": [{"msg": ["error.path.missing"], "args": []}]}}


def test_body_is_parsed_before_authentication(sandbox):
    p = pda(sandbox)
    url = f"{api(p)}/data/anything/x"
    bad_json = httpx.post(url, content=b"{not json", headers={"Content-Type": "application/json"})
    assert bad_json.status_code == 400 and bad_json.json()["error"] == "Bad Request"
    assert bad_json.json()["message"].startswith("Invalid Json: ")
    assert "x-auth-token" not in bad_json.headers
    form = httpx.post(url, content=b"a=1", headers={"Content-Type": "text/plain"})
    assert form.status_code == 415 and form.headers["content-type"].startswith("text/html")
    big = b'{"x":"' + b"a" * (10 * 1024 * 1024) + b'"}'
    too_big = httpx.post(url, content=big, headers={"Content-Type": "application/json"},
                         timeout=60)
    assert too_big.status_code == 413 and too_big.headers["content-type"].startswith("text/html")
    with_token = httpx.post(url, content=b"[1,", headers={"Content-Type": "text/json",
                                                          **auth(mint(p))})
    assert with_token.status_code == 400 and "x-auth-token" not in with_token.headers
    assert httpx.post(url, json={"ok": uid()}).status_code == 401  # valid body, no token


def test_unmatched_routes(sandbox):
    p = pda(sandbox)
    token = mint(p)
    post = httpx.post(f"{api(p)}/data/Bad_NS/x", json={"a": 1}, headers=auth(token))
    assert post.status_code == 404
    assert post.json() == {"error": "Handler Not Found",
                           "message": "Request handler at POST:/api/v2.6/data/Bad_NS/x "
                                      "does not exist"}
    get = httpx.get(f"{api(p)}/data/Bad_NS/x", headers=auth(token))
    assert get.status_code == 200 and get.headers["content-type"].startswith("text/html")


def test_update_delete_and_lookup(sandbox):
    p, ns, token = setup(sandbox)
    url = f"{api(p)}/data/{ns}/u"
    a, _ = httpx.post(url, json=[{"v": "a" + ns}, {"v": "b" + ns}], headers=auth(token)).json()
    upd = httpx.put(f"{api(p)}/data", headers=auth(token),
                    json=[{"endpoint": f"{ns}/u", "recordId": a["recordId"],
                           "data": {"v": "a2" + ns}}])
    assert upd.status_code == 201 and upd.json()[0]["data"] == {"v": "a2" + ns}
    assert [r["data"]["v"] for r in httpx.get(url, headers=auth(token)).json()] == \
        ["b" + ns, "a2" + ns]  # PUT resets the write time
    ghost = "00000000-0000-4000-8000-000000000000"
    missing = httpx.put(f"{api(p)}/data", headers=auth(token),
                        json=[{"endpoint": f"{ns}/u", "recordId": ghost, "data": {"x": 1}}])
    assert missing.status_code == 400 and missing.json() == {
        "message": "Data Missing",
        "cause": "Could not update records: Records missing for updating"}
    one = httpx.get(f"{api(p)}/data-record/{a['recordId']}", headers=auth(token))
    assert one.status_code == 200 and one.json()["recordId"] == a["recordId"]
    assert httpx.get(f"{api(p)}/data-record/{ghost}", headers=auth(token)).status_code == 400
    outsider = mint(p, new_app(p, ["namespacewrite:other-ns"]))
    denied = httpx.delete(f"{api(p)}/data", params={"records": a["recordId"]},
                          headers=auth(outsider))
    assert denied.status_code == 403 and denied.json()["message"] == "Forbidden"
    gone = httpx.delete(f"{api(p)}/data", params=[("records", a["recordId"]), ("records", ghost)],
                        headers=auth(token))
    assert gone.status_code == 400 and gone.json()["message"] == "Data Missing"
    deleted = httpx.delete(f"{api(p)}/data", params={"records": a["recordId"]},
                           headers=auth(token))
    assert deleted.status_code == 200 and deleted.json() == {"message": "All records deleted"}
    assert httpx.delete(url, headers=auth(token)).json() == {"message": "All records deleted"}
    assert httpx.get(url, headers=auth(token)).json() == []


def test_sources_and_old_prefixes(sandbox):
    p, ns, token = setup(sandbox)
    for prefix in ("/api/v2", "/api/v2.0"):
        resp = httpx.post(f"{p['url']}{prefix}/data/{ns}/legacy", json={"p": prefix + ns},
                          headers=auth(token))
        assert resp.status_code == 201
    assert httpx.get(f"{api(p)}/data/sources", headers=auth(token)).status_code == 403
    sources = httpx.get(f"{api(p)}/data/sources", headers=auth(mint(p))).json()
    assert sources[ns] == ["legacy"]
