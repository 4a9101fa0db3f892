"""Hand-built digi.me client requests for the sandbox tests (no tests in this module).

Everything is built here with PyJWT and cryptography directly, from the protocol notes,
so the tests never share crypto code with the server they check.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import secrets
import string
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import padding as asym
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

ALNUM = string.ascii_letters + string.digits
REDIRECT = "http://127.0.0.1:9/digime/return"
_KEYS: list[rsa.RSAPrivateKey] = []


def rsa_key() -> rsa.RSAPrivateKey:
    """RSA-2048 keys are slow to make; tests share a small pool."""
    if len(_KEYS) < 3:
        _KEYS.append(rsa.generate_private_key(public_exponent=65537, key_size=2048))
        return _KEYS[-1]
    return secrets.choice(_KEYS)


def nonce() -> str:
    return "".join(secrets.choice(ALNUM) for _ in range(32))


def now_ms() -> int:
    return int(time.time() * 1000)


def pkce() -> tuple[str, str]:
    """(code_verifier, code_challenge) exactly as the SDK makes them (notes §3.2)."""
    verifier = base64.urlsafe_b64encode(nonce().encode()).rstrip(b"=").decode()
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.rstrip(b"=").decode()


@dataclass
class Contract:
    app_id: str
    contract_id: str
    key: rsa.RSAPrivateKey

    @property
    def client_id(self) -> str:
        return f"{self.app_id}_{self.contract_id}"

    def sign(self, claims: dict[str, Any], *, alg: str = "PS512",
             key: Any = None, headers: dict | None = None) -> str:
        return jwt.encode(claims, key if key is not None else self.key, algorithm=alg,
                          headers=headers)

    def assertion(self, **claims: Any) -> str:
        """A fresh client JWT: client_id, nonce, timestamp plus `claims` (None drops a claim)."""
        base = {"client_id": self.client_id, "nonce": nonce(), "timestamp": now_ms()}
        base.update(claims)
        return self.sign({k: v for k, v in base.items() if v is not None})

    def auth(self, **claims: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.assertion(**claims)}"}


def register(box, *, redirect_uris: list[str] | None = None, key=None,
             pkcs1: bool = False) -> Contract:
    key = key or rsa_key()
    contract = Contract(f"app{secrets.token_hex(4)}", f"c{secrets.token_hex(3)}", key)
    formats = serialization.PublicFormat
    fmt = formats.PKCS1 if pkcs1 else formats.SubjectPublicKeyInfo
    pem = key.public_key().public_bytes(serialization.Encoding.PEM, fmt).decode()
    body: dict[str, Any] = {"client_id": contract.client_id, "application_id": contract.app_id,
                            "contract_id": contract.contract_id, "public_key": pem}
    if redirect_uris is not None:
        body["redirect_uris"] = redirect_uris
    resp = httpx.post(box.control_url + "/contracts", json=body)
    assert resp.status_code == 201, resp.text
    assert resp.json() == {"client_id": contract.client_id}
    return contract


def control(box, method: str, path: str, **kw: Any) -> httpx.Response:
    return httpx.request(method, box.control_url + path, timeout=60, **kw)


@contextlib.contextmanager
def auto_approve(box, value: bool) -> Iterator[None]:
    """Flip the onboarding mode on the shared sandbox and put it back afterwards."""
    before = control(box, "GET", "/settings").json()["auto_approve"]
    control(box, "POST", "/settings", json={"auto_approve": value})
    try:
        yield
    finally:
        control(box, "POST", "/settings", json={"auto_approve": before})


def api(box, path: str) -> str:
    return box.digime_api_url + path


def assert_error(resp: httpx.Response, status: int, code: str, contains: str = "") -> dict:
    """The documented error body and all three X-Error-* headers."""
    assert resp.status_code == status, (resp.status_code, resp.text)
    err = resp.json()["error"]
    assert set(err) == {"code", "message", "reference"}, err
    assert err["code"] == code, err
    assert contains in err["message"], err
    assert err["reference"]
    assert resp.headers["x-error-code"] == code
    assert resp.headers["x-error-message"]
    assert resp.headers["x-error-reference"] == err["reference"]
    return err


# -- server tokens --------------------------------------------------------------------------
def verify_server_token(token: str) -> dict[str, Any]:
    """Check as the SDK does (jku + kid -> pem, PS512), and that the PSS salt is 64 bytes."""
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "PS512" and header["typ"] == "JWT"
    assert header["jku"].startswith("http") and header["kid"]
    keys = httpx.get(header["jku"], headers={"accept": "application/json"}).json()["keys"]
    entry = next(k for k in keys if k["kid"] == header["kid"])
    payload = jwt.decode(token, entry["pem"], algorithms=["PS512"])
    public = serialization.load_pem_public_key(entry["pem"].encode())
    head, body, sig = token.split(".")
    signature = base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4))
    public.verify(signature, f"{head}.{body}".encode(),  # raises unless salt is exactly 64
                  asym.PSS(mgf=asym.MGF1(hashes.SHA512()), salt_length=64), hashes.SHA512())
    return payload


# -- onboarding -----------------------------------------------------------------------------
def authorize(box, contract: Contract, *, redirect_uri: str | None = REDIRECT,
              state: str | None = "st-1", **claims: Any) -> tuple[httpx.Response, str]:
    verifier, challenge = pkce()
    base = {"code_challenge": challenge, "code_challenge_method": "S256",
            "redirect_uri": redirect_uri, "response_mode": "query", "response_type": "code",
            "state": state}
    base.update(claims)
    resp = httpx.post(api(box, "oauth/authorize"), headers=contract.auth(**base),
                      json={"agent": {"sdk": {"name": "nodejs", "version": "16.1.5"}}})
    return resp, verifier


def onboard_url(box, resp: httpx.Response, **extra: str) -> str:
    code = verify_server_token(resp.json()["token"])["preauthorization_code"]
    url = httpx.URL(box.onboard_url + "authorize", params={"code": code, "sourceType": "push",
                                                           **extra})
    return str(url)


def click(box, page_url: str, decision: str) -> httpx.Response:
    """Load the consent page and press a button (POST the form it contains)."""
    page = httpx.get(page_url)
    assert page.status_code == 200, page.text
    assert f">{decision.capitalize()}</button>" in page.text
    code = parse_qs(urlsplit(page_url).query)["code"][0]
    form = {"code": code, "decision": decision}
    callback = parse_qs(urlsplit(page_url).query).get("callback")
    if callback:
        form["callback"] = callback[0]
    return httpx.post(box.onboard_url + "authorize", data=form)


def redirect_params(resp: httpx.Response, prefix: str = REDIRECT) -> dict[str, str]:
    assert resp.status_code == 302, (resp.status_code, resp.text[:300])
    location = resp.headers["location"]
    assert location.startswith(prefix), location
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def connect(box, contract: Contract) -> dict[str, Any]:
    """The whole browser flow with a click on Allow, then the code exchange."""
    resp, verifier = authorize(box, contract)
    assert resp.status_code == 200, resp.text
    params = redirect_params(click(box, onboard_url(box, resp), "allow"))
    tok = exchange(box, contract, params["code"], verifier)
    assert tok.status_code == 200, tok.text
    return {**verify_server_token(tok.json()["token"]), "params": params}


def exchange(box, contract: Contract, code: str, verifier: str) -> httpx.Response:
    headers = contract.auth(code=code, code_verifier=verifier, grant_type="authorization_code")
    return httpx.post(api(box, "oauth/token"), headers=headers)


def refresh(box, contract: Contract, refresh_token: str) -> httpx.Response:
    headers = {**contract.auth(grant_type="refresh_token", refresh_token=refresh_token),
               "content-type": "application/json"}
    return httpx.post(api(box, "oauth/token"), headers=headers)


def mint(box, contract: Contract, **extra: Any) -> dict[str, Any]:
    resp = control(box, "POST", "/tokens", json={"client_id": contract.client_id, **extra})
    assert resp.status_code == 201, resp.text
    return resp.json()


# -- writes ---------------------------------------------------------------------------------
def aes_cbc(key: bytes, iv: bytes, data: bytes) -> bytes:
    padder = padding.PKCS7(128).padder()
    enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return enc.update(padder.update(data) + padder.finalize()) + enc.finalize()


def wrap_key(public_pem: str, key: bytes) -> str:
    assert "BEGIN RSA PUBLIC KEY" in public_pem  # PKCS#1, as node-rsa wants
    public = serialization.load_pem_public_key(public_pem.encode())
    oaep = asym.OAEP(mgf=asym.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None)
    return base64.b64encode(public.encrypt(key, oaep)).decode()


def descriptor(tag: str = "x") -> dict[str, Any]:
    return {"mimeType": "text/plain", "accounts": [{"accountId": f"acc-{tag}"}],
            "reference": [f"ref-{tag}"], "tags": ["probe", tag]}


def postbox_claims(public_pem: str, access_token: str | None, meta: Any,
                   key: bytes | None = None, iv: bytes | None = None) -> tuple[dict, bytes, bytes]:
    key, iv = key or os.urandom(32), iv or os.urandom(16)
    meta_bytes = meta if isinstance(meta, bytes) else json.dumps(meta).encode()
    claims = {"access_token": access_token, "iv": iv.hex(),
              "metadata": base64.b64encode(aes_cbc(key, iv, meta_bytes)).decode(),
              "symmetrical_key": wrap_key(public_pem, key)}
    return claims, key, iv


def postbox_write(box, contract: Contract, cred: dict[str, Any], data: bytes,
                  meta: Any = None, file_name: str = "probe.txt",
                  postbox_id: str | None = None, **override: Any) -> httpx.Response:
    claims, key, iv = postbox_claims(cred["public_key"], cred["access_token"]["value"],
                                     meta if meta is not None else descriptor())
    claims.update(override)
    url = api(box, f"permission-access/postbox/{postbox_id or cred['postbox_id']}")
    return httpx.post(url, headers={**contract.auth(**claims), "accept": "application/json"},
                      files={"file": (file_name, aes_cbc(key, iv, data))}, timeout=120)


def import_write(box, contract: Contract, access_token: str, body: Any,
                 meta: Any = None, headers: dict[str, str] | None = None) -> httpx.Response:
    fd = contract.sign({"metadata": meta if meta is not None else descriptor()})
    all_headers = {**contract.auth(access_token=access_token), "FileDescriptor": fd,
                   "Content-Type": "application/octet-stream", **(headers or {})}
    all_headers = {k: v for k, v in all_headers.items() if v is not None}
    return httpx.post(api(box, "permission-access/import"), headers=all_headers, content=body,
                      timeout=120)


def delivery_for(box, sha256: str) -> list[dict[str, Any]]:
    rows = control(box, "GET", "/deliveries").json()["deliveries"]
    return [r for r in rows if r["sha256"] == sha256]
