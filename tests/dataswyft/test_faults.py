"""Injected sandbox faults map to the right client errors: 5xx and `404 HAT unavailable` are
transient, a dropped connection or a timeout is a transport error, S3 5xx is transient."""

from __future__ import annotations

import httpx
import pytest

from worker.dataswyft import (
    BytesPayload,
    DataswyftClient,
    DataswyftHTTPError,
    DataswyftTransportError,
    S3Error,
)

from .conftest import SANDBOX_POLICY, unique


def test_500_is_transient(client, alice, mint, pda_app, faults):
    faults(host=alice["domain"], path="/data/", status=500)
    with pytest.raises(DataswyftHTTPError) as info:
        client.create_records(alice["domain"], mint(), pda_app.namespace, "x", unique())
    err = info.value
    assert err.status == 500 and err.transient and not err.duplicate
    assert err.title == "Internal Server error" and err.message.startswith("Server error occurred")
    assert err.new_token is None


def test_404_hat_unavailable_is_transient(client, alice, mint, pda_app, faults):
    faults(host=alice["domain"], path="/data/", status=404)
    with pytest.raises(DataswyftHTTPError) as info:
        client.create_records(alice["domain"], mint(), pda_app.namespace, "x", unique())
    err = info.value
    assert err.status == 404 and err.hat_unavailable and err.transient
    assert err.readable == "Dataswyft create records answered 404 Not Found: HAT unavailable"


def test_unknown_host_is_hat_unavailable(alice, mint):
    """The sandbox serves PDAs by Host: 127.0.0.1 is no PDA (and our client would refuse the
    literal anyway), so go through httpx directly to see the raw answer's parsing."""
    from worker.dataswyft.errors import http_error

    port = alice["domain"].rsplit(":", 1)[1]
    raw = httpx.get(f"http://127.0.0.1:{port}/api/v2.6/data/x/y",
                    headers={"X-Auth-Token": mint(), "Accept": "application/json"}, timeout=30)
    err = http_error(raw, operation="read records")
    assert err.hat_unavailable and err.new_token is None


def test_503_with_retry_after(client, alice, mint, faults):
    faults(host=alice["domain"], path="/users/access_token/validate", status=503, retry_after="7")
    with pytest.raises(DataswyftHTTPError) as info:
        client.validate(alice["domain"], mint())
    assert info.value.retry_after == 7 and info.value.transient
    assert info.value.readable.endswith("retry after 7 s")


def test_dropped_connection_is_a_transport_error(client, alice, mint, pda_app, faults):
    faults(host=alice["domain"], path="/data/", drop=True)
    token = mint()
    with pytest.raises(DataswyftTransportError) as info:
        client.create_records(alice["domain"], token, pda_app.namespace, "x", unique())
    assert info.value.kind in ("read", "protocol", "connect") and token not in str(info.value)
    assert info.value.operation == "create records"


def test_slow_pda_is_a_timeout(alice, mint, faults):
    faults(host=alice["domain"], path="/users/access_token/validate", delay_ms=1500)
    with httpx.Client(timeout=0.3) as quick:
        client = DataswyftClient(quick, scheme="http", policy=SANDBOX_POLICY)
        with pytest.raises(DataswyftTransportError) as info:
            client.validate(alice["domain"], mint())
    assert info.value.is_timeout


def test_refused_connection_is_a_transport_error(client, mint):
    with pytest.raises(DataswyftTransportError) as info:
        client.validate("localhost:1", mint())
    assert info.value.kind == "connect"


def test_s3_500_is_transient_and_keeps_the_url_out(client, alice, mint, faults):
    ticket = client.start_upload(alice["domain"], mint(), {"name": "f.bin", "source": "faults"})
    faults(target="s3", path="/_s3/", status=500)
    with pytest.raises(S3Error) as info:
        client.put_content(ticket.content_url, BytesPayload(b"data"), None)
    err = info.value
    assert err.status == 500 and err.transient and err.code == "InternalError"
    assert "X-Amz" not in str(err)


def test_s3_drop_is_a_transport_error_without_the_query(client, alice, mint, faults):
    ticket = client.start_upload(alice["domain"], mint(), {"name": "g.bin", "source": "faults"})
    faults(target="s3", path="/_s3/", drop=True)
    with pytest.raises(DataswyftTransportError) as info:
        client.put_content(ticket.content_url, BytesPayload(b"data" * 1000), None)
    assert "X-Amz-Signature" not in str(info.value) and "?" not in str(info.value).split("): ")[0]
    assert info.value.operation == "S3 upload"
