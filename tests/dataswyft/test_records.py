"""Data API over real HTTP against a sandbox PDA: records, batches, token renewal on every
authenticated answer (4xx included), and the error properties the delivery layer relies on."""

from __future__ import annotations

import httpx
import pytest

from worker.dataswyft import (
    DataswyftClient,
    DataswyftHTTPError,
    DomainPolicy,
    decode_claims,
)
from worker.errors import ValidationError

from .conftest import unique

IDLE = 72 * 3600


def test_create_object_and_read_back(client, alice, mint, pda_app):
    data = unique(kind="object", n=1, nested={"a": [1, 2.5, None, True]})
    result = client.create_records(alice["domain"], mint(), pda_app.namespace, "things", data)
    assert len(result.records) == 1
    record = result.records[0]
    assert record["endpoint"] == f"{pda_app.namespace}/things"
    assert record["data"] == data and record["links"] == []
    assert result.record_ids == [record["recordId"]]

    read = client.read_records(alice["domain"], result.new_token, pda_app.namespace, "things")
    assert record["recordId"] in read.record_ids
    assert next(r for r in read.records if r["recordId"] == record["recordId"])["data"] == data


def test_create_array_makes_one_record_per_element(client, alice, mint, pda_app, sandbox):
    data = [unique(i=i) for i in range(3)]
    result = client.create_records(alice["domain"], mint(), pda_app.namespace, "many/nested", data)
    assert [r["data"] for r in result.records] == data
    stored = httpx.get(alice["url"] + "/_control/records", timeout=30, params={
        "namespace": pda_app.namespace, "endpoint": "many/nested"}).json()["records"]
    assert {r["recordId"] for r in stored} >= set(result.record_ids)


def test_every_call_renews_the_token(client, alice, mint, pda_app):
    token = mint(iat_offset=-3600)
    first = decode_claims(token)
    new = client.validate(alice["domain"], token)
    renewed = decode_claims(new)
    assert renewed.iat > first.iat
    assert (renewed.exp, renewed.jti_prefix, renewed.iss) == (first.exp, first.jti_prefix, first.iss)
    assert renewed.application == pda_app.id

    created = client.create_records(alice["domain"], token, pda_app.namespace, "renew", unique())
    read = client.read_records(alice["domain"], token, pda_app.namespace, "renew", take=1)
    for result in (created, read):
        claims = decode_claims(result.new_token)
        assert claims.iat > first.iat and claims.jti_prefix == first.jti_prefix
    assert len(read.records) == 1


def test_duplicate_data_is_flagged_and_carries_the_renewed_token(client, alice, mint, pda_app):
    data = unique(dup=True)
    token = mint(iat_offset=-60)
    client.create_records(alice["domain"], token, pda_app.namespace, "dups", data)
    with pytest.raises(DataswyftHTTPError) as info:
        # PDA-wide hash: even another endpoint counts as a duplicate
        client.create_records(alice["domain"], token, pda_app.namespace, "elsewhere", data)
    err = info.value
    assert err.status == 400 and err.duplicate and not err.forbidden
    assert err.title == "Bad Request" and err.cause.startswith("Duplicate data")
    assert err.new_token and decode_claims(err.new_token).iat > decode_claims(token).iat
    assert token not in str(err) and err.new_token not in str(err) and err.new_token not in repr(err)
    assert "Duplicate data" in err.readable and "\n" not in err.readable


def test_skip_errors_leaves_duplicates_out(client, alice, mint, pda_app):
    token = mint()
    old = unique(old=True)
    client.create_records(alice["domain"], token, pda_app.namespace, "skip", old)
    fresh = unique(fresh=True)
    with pytest.raises(DataswyftHTTPError) as info:
        client.create_records(alice["domain"], token, pda_app.namespace, "skip", [fresh, old])
    assert info.value.duplicate
    result = client.create_records(alice["domain"], token, pda_app.namespace, "skip",
                                   [fresh, old], skip_errors=True)
    assert [r["data"] for r in result.records] == [fresh]


def test_foreign_namespace_is_forbidden_with_renewed_token(client, alice, mint, pda_app):
    with pytest.raises(DataswyftHTTPError) as info:
        client.create_records(alice["domain"], mint(), pda_app.other_ns, "x", unique())
    err = info.value
    assert err.status == 403 and err.forbidden and not err.transient
    assert (err.title, err.message) == ("Forbidden", "Access Denied")
    assert err.new_token and decode_claims(err.new_token).application == pda_app.id


def test_idle_expired_token_is_not_authenticated(client, alice, mint, pda_app):
    token = mint(iat_offset=-(IDLE + 60))
    with pytest.raises(DataswyftHTTPError) as info:
        client.create_records(alice["domain"], token, pda_app.namespace, "x", unique())
    err = info.value
    assert err.status == 401 and err.not_authenticated and err.new_token is None
    assert err.title == "Not Authenticated"
    with pytest.raises(DataswyftHTTPError) as info:
        client.validate(alice["domain"], token)
    assert info.value.not_authenticated


def test_token_past_exp_is_not_authenticated(client, alice, mint):
    with pytest.raises(DataswyftHTTPError) as info:
        client.validate(alice["domain"], mint(iat_offset=-7200, exp_offset=-60))
    assert info.value.not_authenticated


def test_token_of_another_pda_is_not_authenticated(client, alice, mint):
    with pytest.raises(DataswyftHTTPError) as info:
        client.validate(alice["domain"], mint("bob"))
    assert info.value.not_authenticated


def test_batch_with_links(client, alice, mint, pda_app):
    parent, child, other = unique(role="parent"), unique(role="child"), unique(role="other")
    items = [{"endpoint": f"{pda_app.namespace}/parents", "data": parent,
              "links": [{"endpoint": f"{pda_app.namespace}/children", "data": child}]},
             {"endpoint": f"{pda_app.namespace}/parents", "data": other}]
    result = client.create_batch(alice["domain"], mint(), items)
    assert [r["data"] for r in result.records] == [parent, other]
    assert [r["data"] for r in result.records[0]["links"]] == [child]
    assert result.new_token


def test_batch_into_a_foreign_namespace_is_forbidden(client, alice, mint, pda_app):
    items = [{"endpoint": f"{pda_app.namespace}/ok", "data": unique()},
             {"endpoint": f"{pda_app.other_ns}/no", "data": unique()}]
    with pytest.raises(DataswyftHTTPError) as info:
        client.create_batch(alice["domain"], mint(), items)
    err = info.value
    assert err.forbidden and err.title == "Forbidden" and err.cause.startswith("Access Denied")
    assert err.new_token


def test_batch_duplicate_is_flagged(client, alice, mint, pda_app):
    token = mint()
    data = unique()
    client.create_records(alice["domain"], token, pda_app.namespace, "b", data)
    with pytest.raises(DataswyftHTTPError) as info:
        client.create_batch(alice["domain"], token, [{"endpoint": f"{pda_app.namespace}/b",
                                                      "data": data}])
    assert info.value.duplicate and info.value.new_token


def test_bad_input_is_refused_before_any_request(client, alice, mint, pda_app, request_log):
    token = mint()
    bad_calls = [
        lambda: client.create_records(alice["domain"], token, "Bad_NS", "x", unique()),
        lambda: client.create_records(alice["domain"], token, pda_app.namespace, "a//b", unique()),
        lambda: client.create_records(alice["domain"], token, pda_app.namespace, "x", float("nan")),
        lambda: client.create_records(alice["domain"], token, pda_app.namespace, "x", []),
        lambda: client.create_batch(alice["domain"], token, []),
        lambda: client.start_upload(alice["domain"], token, {"name": "x.txt"}),
        lambda: client.read_records(alice["domain"], token, pda_app.namespace, "x", take=-1),
        lambda: client.validate(alice["domain"], "bad token\r\nX-Injected: 1"),
    ]
    for call in bad_calls:
        with pytest.raises(ValidationError):
            call()
    assert request_log.since(host=alice["domain"]) == []


def test_domain_outside_the_policy_is_never_contacted(http, alice, mint, request_log):
    strict = DataswyftClient(http, scheme="http",
                             policy=DomainPolicy(allowed_suffixes=("hubat.net",)))
    with pytest.raises(ValidationError, match="not a subdomain"):
        strict.validate(alice["domain"], mint())
    unpoliced = DataswyftClient(http, scheme="http")
    for domain in ("127.0.0.1:1", "localhost:1/evil", "user@localhost:1", "[::1]:1"):
        with pytest.raises(ValidationError):
            unpoliced.validate(domain, mint())
    assert request_log.since(host=alice["domain"]) == []


def test_without_a_policy_the_client_still_works_on_a_validated_domain(http, alice, mint, pda_app):
    plain = DataswyftClient(http, scheme="http")
    assert decode_claims(plain.validate(alice["domain"], mint())).application == pda_app.id
