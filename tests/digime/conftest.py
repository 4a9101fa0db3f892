"""Fixtures for the digi.me client tests: a contract registered with the session sandbox,
a client wired the way a worker wires it, and helpers that only speak HTTP to the sandbox."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from worker.config import DigimeSettings
from worker.digime import ContractKey, DigimeClient, KeyCache, TokenVerifier, build_http_client


def new_rsa(bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def private_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def spki_pem(key: rsa.RSAPrivateKey) -> str:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


@pytest.fixture(scope="session")
def contract_rsa() -> rsa.RSAPrivateKey:
    return new_rsa()


@pytest.fixture(scope="session")
def digime_settings(sandbox, contract_rsa, tmp_path_factory) -> DigimeSettings:
    """A fresh contract, registered by POSTing its public key to the sandbox."""
    key_file = tmp_path_factory.mktemp("digime-key") / "contract.pem"
    key_file.write_bytes(private_pem(contract_rsa))
    key_file.chmod(0o600)
    settings = DigimeSettings(api_url=sandbox.digime_api_url, onboard_url=sandbox.onboard_url,
                              application_id=f"dp-app-{secrets.token_hex(4)}",
                              contract_id=f"dp-contract-{secrets.token_hex(4)}",
                              private_key_file=key_file)
    reply = sandbox.control("POST", "/contracts", json={
        "application_id": settings.application_id, "contract_id": settings.contract_id,
        "public_key": spki_pem(contract_rsa)})
    assert reply.status_code == 201, reply.text
    return settings


@pytest.fixture(scope="session")
def key_cache() -> KeyCache:
    return KeyCache()


@pytest.fixture(scope="session")
def contract_key(key_cache, digime_settings) -> ContractKey:
    return key_cache.get(digime_settings)


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with build_http_client() as client:
        yield client


@pytest.fixture
def verifier(http, digime_settings) -> TokenVerifier:
    return TokenVerifier(http, digime_settings.api_url)


@pytest.fixture
def client(digime_settings, contract_key, http, verifier) -> DigimeClient:
    return DigimeClient(digime_settings, contract_key, http, verifier)


@pytest.fixture
def mint(sandbox, contract_key):
    """Mint a user credential for our contract: POST /tokens (extra fields pass through)."""

    def make(**extra: Any) -> dict:
        reply = sandbox.control("POST", "/tokens", json={"client_id": contract_key.client_id, **extra})
        assert reply.status_code == 201, reply.text
        return reply.json()

    return make


@pytest.fixture
def deliveries(sandbox, contract_key):
    """Deliveries of our contract after `since_id` (the session sandbox is shared)."""

    def get(since_id: int = 0, **filters: Any) -> list[dict]:
        params = {"client_id": contract_key.client_id, "since_id": since_id, **filters}
        reply = sandbox.control("GET", "/deliveries", params=params)
        assert reply.status_code == 200, reply.text
        return reply.json()["deliveries"]

    return get


@pytest.fixture
def last_delivery_id(deliveries):
    def get() -> int:
        rows = deliveries()
        return rows[-1]["id"] if rows else 0
    return get


@pytest.fixture
def faults(sandbox) -> Iterator[Any]:
    """Add fault rules; every rule is cleared after the test, whatever happened."""

    def add(**rule: Any) -> dict:
        reply = sandbox.control("POST", "/faults", json={"target": "digime", **rule})
        assert reply.status_code in (200, 201), reply.text
        return reply.json()

    try:
        yield add
    finally:
        sandbox.control("DELETE", "/faults")


@contextlib.contextmanager
def sandbox_settings(sandbox, **changes: Any) -> Iterator[dict]:
    """Flip sandbox settings for a block and put the old values back afterwards."""
    before = sandbox.control("GET", "/settings").json()
    reply = sandbox.control("POST", "/settings", json=changes)
    assert reply.status_code == 200, reply.text
    try:
        yield reply.json()
    finally:
        restore = {k: before[k] for k in changes if k in before}
        sandbox.control("POST", "/settings", json=restore)


DESCRIPTOR = {"mimeType": "application/json", "accounts": [{"accountId": "acct-1"}],
              "reference": ["ref-1"], "tags": ["datapost", "test"]}


def key_file(tmp_path: Path, key: rsa.RSAPrivateKey, name: str = "k.pem") -> Path:
    path = tmp_path / name
    path.write_bytes(private_pem(key))
    return path
