"""Fixtures for the Dataswyft client tests: an app registered on the session sandbox's PDAs,
tokens minted through the per-PDA control route, and helpers that only speak HTTP to the
sandbox (faults, clock, request log). Records carry a fresh uuid: the PDA-wide duplicate
check spans every test in the session."""

from __future__ import annotations

import contextlib
import secrets
import uuid
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from worker.dataswyft import DataswyftClient, DomainPolicy, PublicKeyCache, build_http_client

SANDBOX_POLICY = DomainPolicy(allowed_suffixes=("localhost",), sandbox_mode=True)


@pytest.fixture(scope="session")
def pda_app(sandbox) -> SimpleNamespace:
    """An app with namespacewrite/namespaceread on its own namespace and managefiles, enabled
    on alice and bob."""
    suffix = secrets.token_hex(4)
    app = SimpleNamespace(id=f"dp-ds-{suffix}", namespace=f"dpns-{suffix}", other_ns=f"other-{suffix}")
    spec = {"id": app.id, "version": "1.0.0",
            "roles": [f"namespacewrite:{app.namespace}", f"namespaceread:{app.namespace}",
                      "managefiles:*"],
            "validRedirectUris": ["http://127.0.0.1:9/return"]}
    for pda in sandbox.pdas:
        reply = httpx.post(pda["url"] + "/_control/apps", json=spec, timeout=30)
        assert reply.status_code == 201, reply.text
    return app


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with build_http_client() as client:
        yield client


@pytest.fixture
def client(http) -> DataswyftClient:
    return DataswyftClient(http, scheme="http", policy=SANDBOX_POLICY)


@pytest.fixture
def keys(http) -> PublicKeyCache:
    return PublicKeyCache(http, "http", policy=SANDBOX_POLICY)


@pytest.fixture
def alice(sandbox) -> dict:
    return sandbox.pda("alice")


@pytest.fixture
def mint(sandbox, pda_app):
    """A token from `POST {pda}/_control/token`; our app unless `application` is given."""

    def make(pda: str = "alice", **fields: Any) -> str:
        body = {"application": pda_app.id, **fields}
        reply = httpx.post(sandbox.pda(pda)["url"] + "/_control/token", json=body, timeout=30)
        assert reply.status_code == 200, reply.text
        return reply.json()["token"]

    return make


def unique(**extra: Any) -> dict:
    return {"id": str(uuid.uuid4()), **extra}


@pytest.fixture
def faults(sandbox) -> Iterator[Any]:
    """Add fault rules (target pda unless given); all rules are cleared after the test."""

    def add(**rule: Any) -> dict:
        reply = sandbox.control("POST", "/faults", json={"target": "pda", "times": 1, **rule})
        assert reply.status_code in (200, 201), reply.text
        return reply.json()

    try:
        yield add
    finally:
        sandbox.control("DELETE", "/faults")


@contextlib.contextmanager
def clock_shifted(sandbox, seconds: float) -> Iterator[None]:
    """Move the sandbox clock for a block, then put the previous offset back."""
    before = sandbox.control("GET", "/clock").json()["offset_seconds"]
    reply = sandbox.control("POST", "/clock", json={"shift_seconds": seconds})
    assert reply.status_code == 200, reply.text
    try:
        yield
    finally:
        sandbox.control("POST", "/clock", json={"offset_seconds": before})


@contextlib.contextmanager
def sandbox_settings(sandbox, **changes: Any) -> Iterator[None]:
    before = sandbox.control("GET", "/settings").json()
    reply = sandbox.control("POST", "/settings", json=changes)
    assert reply.status_code == 200, reply.text
    try:
        yield
    finally:
        sandbox.control("POST", "/settings", json={k: before[k] for k in changes if k in before})


class RequestLog:
    """The sandbox request log after a mark: what reached the PDAs (and S3) since."""

    def __init__(self, sandbox) -> None:
        self.sandbox = sandbox
        self.mark = self._last_id()

    def _rows(self, **params: Any) -> list[dict]:
        reply = self.sandbox.control("GET", "/requests", params={"limit": 100000, **params})
        assert reply.status_code == 200, reply.text
        return reply.json()["requests"]

    def _last_id(self) -> int:
        rows = self._rows(limit=1)
        return rows[-1]["id"] if rows else 0

    def since(self, **params: Any) -> list[dict]:
        """Requests after the mark, control-API calls (minting tokens, …) left out."""
        return [r for r in self._rows(**params)
                if r["id"] > self.mark and not r["path"].startswith("/_control")]


@pytest.fixture
def request_log(sandbox) -> RequestLog:
    return RequestLog(sandbox)
