"""Input validation (pure logic): every refusal names the field."""

from __future__ import annotations

import json

import pytest

from worker.dataswyft import (
    validate_batch,
    validate_endpoint,
    validate_file_metadata,
    validate_namespace,
    validate_record_data,
)
from worker.errors import ValidationError


@pytest.mark.parametrize("ns", ["a", "my-app", "ns-123", "0"])
def test_good_namespaces(ns):
    assert validate_namespace(ns) == ns


@pytest.mark.parametrize("ns", ["", "Bad", "a_b", "a.b", "a/b", "é", None, 3])
def test_bad_namespaces(ns):
    with pytest.raises(ValidationError, match="namespace"):
        validate_namespace(ns)


@pytest.mark.parametrize("ep", ["a", "a/b", "a-b/c-d/e", "0"])
def test_good_endpoints(ep):
    assert validate_endpoint(ep) == ep


@pytest.mark.parametrize("ep", ["", "/a", "a/", "a//b", "A", "a_b", "a.b", "a b", None])
def test_bad_endpoints(ep):
    with pytest.raises(ValidationError, match="endpoint"):
        validate_endpoint(ep)


def test_record_data_is_compact_json():
    assert validate_record_data({"b": 1, "a": [1, 2.5, None, True, "é"]}) == \
        '{"b":1,"a":[1,2.5,null,true,"é"]}'.encode()
    assert validate_record_data("just a string") == b'"just a string"'
    assert validate_record_data([{"x": 1}]) == b'[{"x":1}]'


@pytest.mark.parametrize("data, reason", [
    ({"x": float("nan")}, "not finite"),
    ([1, float("inf")], "not finite"),
    ({"x": {1, 2}}, "not JSON-serialisable"),
    ({1: "int key"}, "not a string"),
    ({"x": b"bytes"}, "not JSON-serialisable"),
    ([], "empty list"),
    ({"s": "\ud800"}, "lone surrogate"),
])
def test_bad_record_data(data, reason):
    with pytest.raises(ValidationError, match=reason) as info:
        validate_record_data(data)
    assert str(info.value).startswith("data ")


def test_record_data_size_limit():
    big = {"blob": "x" * 100}
    assert validate_record_data(big, max_bytes=200)
    with pytest.raises(ValidationError, match="at most 50"):
        validate_record_data(big, max_bytes=50)
    with pytest.raises(ValidationError, match="bytes as compact JSON"):
        validate_record_data({"blob": "x" * (10 * 1024 * 1024)})


def test_deep_nesting_is_refused_not_crashing():
    deep: list = []
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(ValidationError, match="nested too deeply"):
        validate_record_data(deep)


def test_batch():
    items = [{"endpoint": "ns/ep", "data": {"a": 1},
              "links": [{"endpoint": "ns/child/x", "data": [1]}]}]
    assert json.loads(validate_batch(items)) == items


@pytest.mark.parametrize("items, reason", [
    ([], "empty"),
    ({"endpoint": "ns/ep"}, "must be a list"),
    (["x"], r"items\[0\] must be an object"),
    ([{"data": 1}], r"items\[0\].endpoint"),
    ([{"endpoint": "nsonly", "data": 1}], r"items\[0\].endpoint"),
    ([{"endpoint": "NS/ep", "data": 1}], "namespace"),
    ([{"endpoint": "ns/ep/", "data": 1}], r"items\[0\].endpoint"),
    ([{"endpoint": "ns/ep"}], r"items\[0\].data is required"),
    ([{"endpoint": "ns/ep", "data": 1, "recordId": "x"}], "unknown key 'recordId'"),
    ([{"endpoint": "ns/ep", "data": 1, "links": {}}], "links must be a list"),
    ([{"endpoint": "ns/ep", "data": 1, "links": [{"endpoint": "x/y"}]}],
     r"items\[0\].links\[0\].data"),
    ([{"endpoint": "ns/ep", "data": float("nan")}], "not finite"),
])
def test_bad_batches(items, reason):
    with pytest.raises(ValidationError, match=reason):
        validate_batch(items)


def test_file_metadata():
    meta = {"name": "a.txt", "source": "app", "tags": ["x"], "title": "T", "description": "D",
            "contentType": "text/plain", "dateCreated": 1700000000000, "lastUpdated": "2024-01-02"}
    assert validate_file_metadata(meta) == meta


@pytest.mark.parametrize("meta, reason", [
    ([], "must be an object"),
    ({"source": "s"}, "name is required"),
    ({"name": "  ", "source": "s"}, "name is required"),
    ({"name": "n"}, "source is required"),
    ({"name": "n", "source": "s", "tags": "x"}, "tags"),
    ({"name": "n", "source": "s", "tags": [1]}, "tags"),
    ({"name": "n", "source": "s", "title": 3}, "title"),
    ({"name": "n", "source": "s", "description": None}, "description"),
    ({"name": "n", "source": "s", "contentType": ""}, "contentType"),
    ({"name": "n", "source": "s", "contentType": 5}, "contentType"),
    ({"name": "n", "source": "s", "dateCreated": "2024-01-02T00:00:00Z"}, "dateCreated"),
    ({"name": "n", "source": "s", "fileId": "x"}, "fileId"),
    ({"name": "n", "source": "s", "contentUrl": "x"}, "contentUrl"),
])
def test_bad_file_metadata(meta, reason):
    with pytest.raises(ValidationError, match=reason):
        validate_file_metadata(meta)
