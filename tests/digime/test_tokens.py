"""TokenVerifier: pinned JWKS URL, caching, PS512 with salt 64 only, exp/nbf.

Real digi.me tokens come from the sandbox; forged ones are built by hand here with PyJWT and
cryptography. Cases that need a token signed by a key we hold use a tiny local JWKS server.
"""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from worker.digime import DigimeHTTPError, TokenVerificationError, TokenVerifier

from .conftest import new_rsa, spki_pem


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwk(key, kid: str, *, with_pem: bool = True, with_ne: bool = True) -> dict:
    numbers = key.public_key().public_numbers()
    entry: dict = {"kid": kid, "alg": "PS512", "use": "sig"}
    if with_ne:
        entry.update(kty="RSA", n=b64url(numbers.n.to_bytes(256, "big")),
                     e=b64url(numbers.e.to_bytes(3, "big")))
    if with_pem:
        entry["pem"] = spki_pem(key)
    return entry


def sign_ps512(key, header: dict, payload: dict, *, salt: int) -> str:
    """Compact JWS by hand, so the PSS salt length can be chosen."""
    signing_input = (b64url(json.dumps(header).encode()) + "." +
                     b64url(json.dumps(payload).encode()))
    sig = key.sign(signing_input.encode(), padding.PSS(padding.MGF1(hashes.SHA512()), salt_length=salt),
                   hashes.SHA512())
    return signing_input + "." + b64url(sig)


class JwksServer:
    """Serves `/v1.7/jwks/oauth` from `self.document`, counting requests."""

    def __init__(self) -> None:
        self.document: dict = {"keys": []}
        self.hits = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.hits += 1
                if self.path != "/v1.7/jwks/oauth":
                    self.send_response(404)
                    self.end_headers()
                    return
                body = json.dumps(outer.document).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.api_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1.7/"
        self.jku = self.api_url + "jwks/oauth"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def jwks_server() -> Iterator[JwksServer]:
    server = JwksServer()
    yield server
    server.close()


@pytest.fixture(scope="module")
def server_key():
    return new_rsa()


@pytest.fixture
def listener() -> Iterator[tuple[str, list]]:
    """A listening socket that records every connection made to it (there should be none)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    sock.settimeout(0.05)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}", sock
    sock.close()


def _accepted(sock: socket.socket) -> bool:
    try:
        conn, _ = sock.accept()
    except (TimeoutError, OSError):
        return False
    conn.close()
    return True


def _sandbox_token(client) -> str:
    """A real digi.me response token: the raw body of an oauth/authorize answer."""
    from worker.digime import pkce_pair
    claims = {"code_challenge": pkce_pair()[1], "code_challenge_method": "S256",
              "redirect_uri": "http://127.0.0.1:9/r", "response_mode": "query",
              "response_type": "code", "state": "s"}
    reply = httpx.post(client.api_url + "oauth/authorize", content=b"",
                       headers={"Authorization": f"Bearer {client.key.assertion(claims)}",
                                "Accept": "application/json"})
    assert reply.status_code == 200, reply.text
    return reply.json()["token"]


# -- against the sandbox ---------------------------------------------------------------------

def test_real_tokens_verify_and_the_jwks_is_cached(client, verifier):
    for _ in range(3):
        payload = verifier.verify(_sandbox_token(client))
        assert payload["preauthorization_code"]
    assert verifier.fetch_count == 1


def test_foreign_jku_is_rejected_without_fetching(client, verifier, listener):
    base, sock = listener
    real_kid = jwt.get_unverified_header(_sandbox_token(client))["kid"]
    attacker = new_rsa()
    for jku in (f"{base}/v1.7/jwks/oauth", f"{base}/jwks/oauth"):
        forged = jwt.encode({"preauthorization_code": "evil"}, attacker, algorithm="PS512",
                            headers={"jku": jku, "kid": real_kid})
        with pytest.raises(TokenVerificationError, match="pinned"):
            verifier.verify(forged)
    assert not _accepted(sock)
    assert verifier.fetch_count == 0


@pytest.mark.parametrize("mangle", [
    lambda u: u.replace("/v1.7/", "/v1.6/"),
    lambda u: u + "?x=1",
    lambda u: u + "#frag",
    lambda u: u.replace("http://", "https://"),
    lambda u: u.replace("http://", "http://user:pw@"),
    lambda u: u.replace("jwks/oauth", "jwks/oauth/"),
])
def test_near_miss_jku_is_rejected(verifier, mangle):
    jku = mangle(verifier.jwks_url)
    token = jwt.encode({"a": 1}, new_rsa(), algorithm="PS512", headers={"jku": jku, "kid": "k"})
    with pytest.raises(TokenVerificationError, match="pinned"):
        verifier.verify(token)
    assert verifier.fetch_count == 0


def test_wrong_kid_is_rejected_and_refetch_is_rate_limited(client, verifier):
    verifier.verify(_sandbox_token(client))
    forged = jwt.encode({"a": 1}, new_rsa(), algorithm="PS512",
                        headers={"jku": verifier.jwks_url, "kid": "no-such-kid"})
    with pytest.raises(TokenVerificationError, match="kid"):
        verifier.verify(forged)
    with pytest.raises(TokenVerificationError, match="kid"):
        verifier.verify(forged)
    assert verifier.fetch_count == 1  # within the minimum interval: no refetch


def test_signature_by_another_key_with_the_real_kid(client, verifier):
    kid = jwt.get_unverified_header(_sandbox_token(client))["kid"]
    forged = jwt.encode({"preauthorization_code": "x"}, new_rsa(), algorithm="PS512",
                        headers={"jku": verifier.jwks_url, "kid": kid})
    with pytest.raises(TokenVerificationError, match="signature"):
        verifier.verify(forged)


def test_hs256_and_none_are_rejected(client, verifier, sandbox):
    kid = jwt.get_unverified_header(_sandbox_token(client))["kid"]
    pem = httpx.get(verifier.jwks_url).json()["keys"][0]["pem"]
    headers = {"jku": verifier.jwks_url, "kid": kid}
    hs = jwt.encode({"a": 1}, "s" * 32, algorithm="HS256", headers=headers)
    confused = (b64url(json.dumps({"alg": "HS256", "typ": "JWT", **headers}).encode()) + "."
                + b64url(b'{"a":1}'))
    import hmac
    confused += "." + b64url(hmac.new(pem.encode(), confused.encode(), "sha256").digest())
    none = (b64url(json.dumps({"alg": "none", **headers}).encode()) + "." + b64url(b'{"a":1}') + ".")
    for token in (hs, confused, none):
        with pytest.raises(TokenVerificationError, match="only PS512"):
            verifier.verify(token)


def test_missing_jku_or_kid(verifier):
    key = new_rsa()
    for headers in ({"kid": "k"}, {"jku": verifier.jwks_url}, {"jku": 5, "kid": "k"}):
        token = jwt.encode({"a": 1}, key, algorithm="PS512", headers=headers)
        with pytest.raises(TokenVerificationError, match="No jku or kid"):
            verifier.verify(token)
    for junk in ("", "abc", "a.b.c", None, 42):
        with pytest.raises(TokenVerificationError):
            verifier.verify(junk)


# -- against a JWKS we control ---------------------------------------------------------------

def test_max_salt_signature_is_rejected(jwks_server, server_key):
    jwks_server.document = {"keys": [jwk(server_key, "k1")]}
    header = {"alg": "PS512", "typ": "JWT", "jku": jwks_server.jku, "kid": "k1"}
    with httpx.Client() as http:
        verifier = TokenVerifier(http, jwks_server.api_url)
        good = sign_ps512(server_key, header, {"ok": True}, salt=64)
        assert verifier.verify(good) == {"ok": True}
        bad = sign_ps512(server_key, header, {"ok": True}, salt=padding.PSS.MAX_LENGTH)
        with pytest.raises(TokenVerificationError, match="salt 64"):
            verifier.verify(bad)


@pytest.mark.parametrize("with_pem,with_ne", [(True, False), (False, True), (True, True)])
def test_pem_or_jwk_fields(jwks_server, server_key, with_pem, with_ne):
    jwks_server.document = {"keys": [{"kid": "junk", "pem": "nope"},
                                     jwk(server_key, "k1", with_pem=with_pem, with_ne=with_ne)]}
    token = jwt.encode({"v": 1}, server_key, algorithm="PS512",
                       headers={"jku": jwks_server.jku, "kid": "k1"})
    with httpx.Client() as http:
        assert TokenVerifier(http, jwks_server.api_url).verify(token) == {"v": 1}


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_small_jwks_key_is_not_used(jwks_server):
    small = new_rsa(1536)  # the smallest size that PS512 with salt 64 can sign with is ~1040
    jwks_server.document = {"keys": [jwk(small, "k1", with_ne=False)]}
    token = jwt.encode({"v": 1}, small, algorithm="PS512",
                       headers={"jku": jwks_server.jku, "kid": "k1"})
    with httpx.Client() as http, pytest.raises(TokenVerificationError, match="kid"):
        TokenVerifier(http, jwks_server.api_url).verify(token)


def test_exp_and_nbf_are_enforced(jwks_server, server_key):
    jwks_server.document = {"keys": [jwk(server_key, "k1")]}
    headers = {"jku": jwks_server.jku, "kid": "k1"}
    now = int(time.time())
    with httpx.Client() as http:
        verifier = TokenVerifier(http, jwks_server.api_url)
        ok = jwt.encode({"exp": now + 60, "nbf": now - 60}, server_key, "PS512", headers=headers)
        assert verifier.verify(ok)["exp"] == now + 60
        expired = jwt.encode({"exp": now - 5}, server_key, "PS512", headers=headers)
        with pytest.raises(TokenVerificationError, match="expired"):
            verifier.verify(expired)
        early = jwt.encode({"nbf": now + 300}, server_key, "PS512", headers=headers)
        with pytest.raises(TokenVerificationError, match="nbf"):
            verifier.verify(early)


def test_rotated_key_is_fetched_once_the_interval_has_passed(jwks_server, server_key):
    clock = [1000.0]
    jwks_server.document = {"keys": [jwk(server_key, "old")]}
    headers_new = {"jku": jwks_server.jku, "kid": "new"}
    new_key = new_rsa()
    with httpx.Client() as http:
        verifier = TokenVerifier(http, jwks_server.api_url, min_refetch_interval=30,
                                 clock=lambda: clock[0])
        verifier.verify(jwt.encode({}, server_key, "PS512",
                                   headers={"jku": jwks_server.jku, "kid": "old"}))
        jwks_server.document = {"keys": [jwk(new_key, "new")]}
        token = jwt.encode({"n": 1}, new_key, "PS512", headers=headers_new)
        with pytest.raises(TokenVerificationError):
            verifier.verify(token)  # fetched 0 s ago: no refetch yet
        assert jwks_server.hits == 1
        clock[0] += 31
        assert verifier.verify(token) == {"n": 1}
        assert jwks_server.hits == 2
        assert verifier.verify(token) == {"n": 1}
        assert jwks_server.hits == 2


def test_jwks_fetch_failure_is_not_a_verification_error(jwks_server, server_key):
    token = jwt.encode({}, server_key, "PS512", headers={"jku": jwks_server.jku, "kid": "k"})
    jwks_server.close()
    with httpx.Client() as http:
        verifier = TokenVerifier(http, jwks_server.api_url)
        from worker.digime import DigimeTransportError
        with pytest.raises(DigimeTransportError):
            verifier.verify(token)


def test_jwks_http_error(sandbox, faults, http, digime_settings):
    faults(path="jwks/oauth", status=503, retry_after="3", times=1)
    token = jwt.encode({}, new_rsa(), "PS512",
                       headers={"jku": digime_settings.api_url + "jwks/oauth", "kid": "k"})
    verifier = TokenVerifier(http, digime_settings.api_url)
    with pytest.raises(DigimeHTTPError) as info:
        verifier.verify(token)
    assert info.value.status == 503 and info.value.retry_after == 3
