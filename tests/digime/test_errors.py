"""Error mapping over HTTP: injected 5xx/503 with Retry-After, flat and empty bodies,
dropped connections, timeouts, refused connections, unexpected 2xx bodies; no secrets in
messages."""

from __future__ import annotations

import email.utils
import pickle
import socket
import time

import httpx
import pytest

from worker.config import DeliverySettings, DigimeSettings
from worker.digime import (
    BytesPayload,
    DigimeClient,
    DigimeHTTPError,
    DigimeProtocolError,
    DigimeTransportError,
    TokenVerificationError,
    TokenVerifier,
    build_http_client,
    is_invalid_token,
    parse_retry_after,
)
from worker.digime.errors import DigimeError, http_error, sanitize
from worker.errors import DatapostError

from .conftest import DESCRIPTOR


def _refresh_error(client, mint) -> DigimeHTTPError:
    with pytest.raises(DigimeHTTPError) as info:
        client.refresh(mint()["refresh_token"]["value"])
    return info.value


def test_503_with_retry_after_seconds(client, mint, faults):
    faults(path="oauth/token$", status=503, retry_after="7", times=1)
    err = _refresh_error(client, mint)
    assert (err.status, err.code, err.retry_after) == (503, "ServiceUnavailable", 7.0)
    assert err.reference and "Injected fault (503)" in err.message
    assert not is_invalid_token(err)
    assert "503 ServiceUnavailable" in str(err) and "retry after 7 s" in str(err)


def test_503_with_retry_after_http_date(client, mint, faults):
    when = email.utils.formatdate(time.time() + 120, usegmt=True)
    faults(path="oauth/token$", status=503, retry_after=when, times=1)
    err = _refresh_error(client, mint)
    assert 110 <= err.retry_after <= 121


def test_500_without_retry_after(client, mint, faults):
    faults(path="oauth/token$", status=500, times=1)
    err = _refresh_error(client, mint)
    assert (err.status, err.code, err.retry_after) == (500, "InternalServerError", None)


def test_flat_error_body(client, mint, faults):
    faults(path="oauth/token$", status=507, body={"error": "StorageFull", "message": "no space"},
           times=1)
    err = _refresh_error(client, mint)
    assert (err.status, err.code, err.message, err.reference) == (507, "StorageFull", "no space", None)


@pytest.mark.parametrize("body", ["", "Unauthorized", "[1,2]"])
def test_401_without_json_error_counts_as_invalid_token(client, mint, faults, body):
    faults(path="permission-access/import", status=401, body=body, times=1)
    cred = mint()
    with pytest.raises(DigimeHTTPError) as info:
        client.push_import(access_token=cred["access_token"]["value"], descriptor=DESCRIPTOR,
                           payload=BytesPayload(b"x"))
    assert info.value.status == 401 and info.value.code is None and is_invalid_token(info.value)


def test_401_with_another_code_is_not_invalid_token(client, mint, faults):
    faults(path="oauth/token$", status=401,
           body={"error": {"code": "InsufficientScope", "message": "no", "reference": "r1"}}, times=1)
    err = _refresh_error(client, mint)
    assert err.code == "InsufficientScope" and err.reference == "r1" and not is_invalid_token(err)


def test_secrets_echoed_by_the_server_are_redacted(client, mint, faults):
    cred = mint()
    token = cred["access_token"]["value"]
    jwt_like = "eyJhbGciOiJQUzUxMiJ9.eyJhIjoxfQ.c2lnbmF0dXJl"
    faults(path="permission-access/import", status=400, times=1,
           body={"error": {"code": "Bad", "message": f"token {token} and {jwt_like}\n-----BEGIN"
                                                     f" RSA PRIVATE KEY-----\nMIIE", "reference": "r"}})
    with pytest.raises(DigimeHTTPError) as info:
        client.push_import(access_token=token, descriptor=DESCRIPTOR, payload=BytesPayload(b"x"))
    text = str(info.value) + repr(info.value) + info.value.message
    assert token not in text and jwt_like not in text and "MIIE" not in text
    assert "***" in info.value.message and "[JWT]" in info.value.message


def test_error_after_a_fault_then_the_retry_succeeds(client, mint, faults, deliveries,
                                                     last_delivery_id):
    """The delivery layer's retry is simply calling again: fresh nonce, payload re-read."""
    faults(path="permission-access/postbox", status=503, retry_after="1", times=1)
    cred = mint()
    since = last_delivery_id()
    args = {"access_token": cred["access_token"]["value"], "postbox_id": cred["postbox_id"],
            "public_key_pem": cred["public_key"], "file_name": "f.bin", "descriptor": DESCRIPTOR,
            "payload": BytesPayload(b"retry me")}
    with pytest.raises(DigimeHTTPError) as info:
        client.write_postbox(**args)
    assert info.value.retry_after == 1
    assert client.write_postbox(**args).status == "delivered"
    assert len(deliveries(since)) == 1


def test_dropped_connection(client, mint, faults):
    faults(path="oauth/token$", drop=True, times=1)
    with pytest.raises(DigimeTransportError) as info:
        client.refresh(mint()["refresh_token"]["value"])
    assert info.value.kind in ("protocol", "read") and not info.value.is_timeout
    assert isinstance(info.value, DigimeError) and isinstance(info.value, DatapostError)


def test_timeout(digime_settings, contract_key, mint, faults):
    faults(path="oauth/token$", delay_ms=1500, times=1)
    with build_http_client(DeliverySettings(http_timeout=0.3)) as http:
        client = DigimeClient(digime_settings, contract_key, http,
                              TokenVerifier(http, digime_settings.api_url))
        with pytest.raises(DigimeTransportError) as info:
            client.refresh(mint()["refresh_token"]["value"])
    assert info.value.is_timeout and "oauth/token" in str(info.value)


def test_connection_refused(contract_key):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    settings = DigimeSettings(api_url=f"http://127.0.0.1:{port}/v1.7/", application_id="a",
                              contract_id="c")
    with build_http_client() as http:
        client = DigimeClient(settings, contract_key, http, TokenVerifier(http, settings.api_url))
        with pytest.raises(DigimeTransportError) as info:
            client.refresh("secret-refresh-token")
    assert info.value.kind == "connect" and "secret-refresh-token" not in str(info.value)


@pytest.mark.parametrize("body,error", [
    ({"status": "queued", "expires": 1}, DigimeProtocolError),
    ({"status": "delivered"}, DigimeProtocolError),
    ({"status": "delivered", "expires": True}, DigimeProtocolError),
    ("not json", DigimeProtocolError),
])
def test_unexpected_postbox_body(client, mint, faults, body, error):
    faults(path="permission-access/postbox", status=200, body=body, times=1)
    cred = mint()
    with pytest.raises(error):
        client.write_postbox(access_token=cred["access_token"]["value"], postbox_id=cred["postbox_id"],
                             public_key_pem=cred["public_key"], file_name="f", descriptor=DESCRIPTOR,
                             payload=BytesPayload(b"x"))


@pytest.mark.parametrize("body,error", [
    ({}, DigimeProtocolError),
    ([], DigimeProtocolError),
    ({"token": "a.b.c"}, TokenVerificationError),
])
def test_unexpected_token_body(client, mint, faults, body, error):
    faults(path="oauth/token$", status=200, body=body, times=1)
    with pytest.raises(error):
        client.refresh(mint()["refresh_token"]["value"])


def test_http_error_parses_headers_only():
    response = httpx.Response(404, headers={"X-Error-Code": "NotFound", "X-Error-Message": "gone",
                                            "X-Error-Reference": "ref9"})
    err = http_error(response, operation="HEAD x")
    assert (err.code, err.message, err.reference) == ("NotFound", "gone", "ref9")
    response = httpx.Response(502, content=b"<html>bad gateway</html>")
    err = http_error(response)
    assert (err.code, err.message) == (None, "Bad Gateway")


def test_errors_pickle():
    err = DigimeHTTPError(503, "ServiceUnavailable", "m", "r", 2.0, operation="oauth/token")
    back = pickle.loads(pickle.dumps(err))
    assert (back.status, back.code, back.retry_after, str(back)) == (503, "ServiceUnavailable", 2.0, str(err))
    t = pickle.loads(pickle.dumps(DigimeTransportError("x", kind="timeout")))
    assert t.is_timeout


def test_parse_retry_after():
    assert parse_retry_after(" 5 ") == 5.0
    assert parse_retry_after(None) is None and parse_retry_after("") is None
    assert parse_retry_after("soon") is None and parse_retry_after("-3") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0


def test_sanitize_truncates_and_folds():
    assert sanitize("a\r\nb") == "a b"
    assert len(sanitize("x" * 1000)) <= 301
    assert sanitize("key sekrit-value here", ["sekrit-value"]) == "key *** here"


def test_client_and_verifier_must_agree_on_the_api(digime_settings, contract_key, http):
    from worker.errors import ConfigError
    with pytest.raises(ConfigError, match="pinned"):
        DigimeClient(digime_settings, contract_key, http,
                     TokenVerifier(http, "https://api.digi.me/v1.7/"))
