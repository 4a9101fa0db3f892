"""ContractKey, KeyCache and client assertions (no network)."""

from __future__ import annotations

import base64
import json
import os
import re
import time

import jwt
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding

from worker.config import DigimeSettings
from worker.digime import ContractKey, KeyCache, build_assertion, new_nonce
from worker.errors import ConfigError
from worker.secret import Secret

from .conftest import key_file, new_rsa, private_pem


def _b64d(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _settings(**kw) -> DigimeSettings:
    base = {"application_id": "app", "contract_id": "con"}
    base.update(kw)
    return DigimeSettings(**base)


@pytest.fixture(scope="module")
def rsa_key():
    return new_rsa()


def test_load_from_file_and_inline(tmp_path, rsa_key):
    from_file = ContractKey.load(_settings(private_key_file=key_file(tmp_path, rsa_key)))
    inline = ContractKey.load(_settings(private_key=Secret(private_pem(rsa_key))))
    assert from_file.client_id == inline.client_id == "app_con"
    assert from_file.key_size == 2048


def test_pkcs1_pem_is_accepted(tmp_path, rsa_key):
    pem = rsa_key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption())
    path = tmp_path / "pkcs1.pem"
    path.write_bytes(pem)
    assert ContractKey.load(_settings(private_key_file=path)).client_id == "app_con"


@pytest.mark.parametrize("missing", ["application_id", "contract_id"])
def test_missing_ids(tmp_path, rsa_key, missing):
    settings = _settings(private_key_file=key_file(tmp_path, rsa_key), **{missing: None})
    with pytest.raises(ConfigError, match=missing):
        ContractKey.load(settings)


def test_missing_key():
    with pytest.raises(ConfigError, match="PRIVATE_KEY_FILE"):
        ContractKey.load(_settings())


def test_unreadable_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        ContractKey.load(_settings(private_key_file=tmp_path / "nope.pem"))
    with pytest.raises(ConfigError, match="directory"):
        ContractKey.load(_settings(private_key_file=tmp_path))
    if os.geteuid() != 0:
        locked = key_file(tmp_path, new_rsa(), "locked.pem")
        locked.chmod(0)
        with pytest.raises(ConfigError, match="cannot read"):
            ContractKey.load(_settings(private_key_file=locked))


def test_garbage_key_is_not_echoed(tmp_path):
    garbage = (b"-----BEGIN " + b"PRIVATE KEY-----\nc2VjcmV0LWJ5dGVzLXRoYXQtbXVzdC1ub3QtbGVhaw==\n"
               b"-----END PRIVATE KEY-----\n")
    path = tmp_path / "bad.pem"
    path.write_bytes(garbage)
    with pytest.raises(ConfigError) as info:
        ContractKey.load(_settings(private_key_file=path))
    assert "c2VjcmV0" not in str(info.value) and "readable private key" in str(info.value)
    with pytest.raises(ConfigError) as info:
        ContractKey.load(_settings(private_key=Secret(garbage)))
    assert "c2VjcmV0" not in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_not_rsa_and_too_small(tmp_path):
    ec_pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    with pytest.raises(ConfigError, match="EC key"):
        ContractKey.load(_settings(private_key=Secret(ec_pem)))
    small = private_pem(new_rsa(1024))
    with pytest.raises(ConfigError, match="1024 bits"):
        ContractKey.load(_settings(private_key=Secret(small)))


def test_encrypted_key(tmp_path, rsa_key):
    pem = rsa_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.BestAvailableEncryption(b"pw"))
    with pytest.raises(ConfigError, match="encrypted"):
        ContractKey.load(_settings(private_key=Secret(pem)))


def test_repr_hides_key(tmp_path, rsa_key):
    key = ContractKey.load(_settings(private_key=Secret(private_pem(rsa_key))))
    assert "BEGIN" not in repr(key) and "app_con" in repr(key)
    with pytest.raises(TypeError):
        import pickle
        pickle.dumps(key)


def test_sign_is_ps512_salt_64_with_exact_header(rsa_key):
    key = ContractKey(rsa_key, "app", "con")
    token = key.sign({"hello": "world"})
    head, body, sig = token.split(".")
    assert _b64d(head) == b'{"alg":"PS512","typ":"JWT"}'
    assert json.loads(_b64d(body)) == {"hello": "world"}
    public = rsa_key.public_key()
    signed = f"{head}.{body}".encode()
    public.verify(_b64d(sig), signed, padding.PSS(padding.MGF1(hashes.SHA512()), salt_length=64),
                  hashes.SHA512())
    with pytest.raises(InvalidSignature):  # a different salt length does not verify
        public.verify(_b64d(sig), signed, padding.PSS(padding.MGF1(hashes.SHA512()), salt_length=32),
                      hashes.SHA512())


def test_assertion_claims(rsa_key):
    key = ContractKey(rsa_key, "app", "con")
    before = int(time.time() * 1000)
    token = key.assertion({"access_token": "at", "state": None, "zeta": 1})
    after = int(time.time() * 1000)
    claims = jwt.decode(token, rsa_key.public_key(), algorithms=["PS512"])
    assert set(claims) == {"access_token", "client_id", "nonce", "timestamp", "zeta"}
    assert claims["client_id"] == "app_con"
    assert re.fullmatch(r"[A-Za-z0-9]{32}", claims["nonce"])
    assert isinstance(claims["timestamp"], int) and before <= claims["timestamp"] <= after
    assert list(claims) == sorted(claims)  # name order, as the SDK sends them


def test_assertions_never_reuse_a_nonce(rsa_key):
    key = ContractKey(rsa_key, "app", "con")
    nonces = {jwt.decode(key.assertion(), options={"verify_signature": False})["nonce"]
              for _ in range(50)}
    assert len(nonces) == 50
    assert len({new_nonce() for _ in range(1000)}) == 1000


def test_assertion_refuses_to_override_reserved(rsa_key):
    key = ContractKey(rsa_key, "app", "con")
    with pytest.raises(ValueError, match="nonce"):
        build_assertion(key, {"nonce": "x" * 32})


def test_key_cache_parses_once_and_notices_a_new_file(tmp_path, rsa_key):
    path = key_file(tmp_path, rsa_key)
    settings = _settings(private_key_file=path)
    cache = KeyCache()
    first = cache.get(settings)
    assert cache.get(settings) is first
    other = new_rsa()
    path.write_bytes(private_pem(other))
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
    second = cache.get(settings)
    assert second is not first
    assert second.public_key_pem() != first.public_key_pem()
    assert len(cache) == 1


def test_key_cache_inline_by_hash(rsa_key):
    cache = KeyCache()
    a = cache.get(_settings(private_key=Secret(private_pem(rsa_key))))
    assert cache.get(_settings(private_key=Secret(private_pem(rsa_key)))) is a
    assert cache.get(_settings(private_key=Secret(private_pem(rsa_key)), contract_id="c2")) is not a
    assert "BEGIN" not in repr(cache)


def test_key_cache_hit_is_fast(tmp_path, rsa_key):
    settings = _settings(private_key_file=key_file(tmp_path, rsa_key))
    cache = KeyCache()
    cache.get(settings)
    started = time.perf_counter()
    for _ in range(100):
        cache.get(settings)
    assert (time.perf_counter() - started) / 100 < 0.005
