"""Sign-in fixtures: the callback receiver on a real loopback port, registered at the sandbox
(digi.me redirect URI, PDA app redirect and fallback), and a cookie-keeping HTTP "browser"."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization

from producers import Datapost
from producers.callback import create_app, serve_in_thread
from tests.delivery.conftest import (  # noqa: F401  (fixtures shared with delivery tests)
    PDA_APP,
    PDA_NS,
    contract,
    datapost,
    env,
    mint_user,
    pda_app,
    run_worker,
    settings,
)
from worker.config import load_settings
from worker.redis_server import free_port


@pytest.fixture(scope="session")
def receiver_base() -> str:
    return f"http://127.0.0.1:{free_port()}/"


@pytest.fixture(scope="session")
def registered(sandbox, contract, pda_app, receiver_base) -> dict:  # noqa: F811
    """Our redirect URIs, registered exactly, at the sandbox's digi.me and on both PDAs."""
    key = serialization.load_pem_private_key(Path(contract["key_file"]).read_bytes(), None)
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    resp = sandbox.control("POST", "/contracts", json={
        "application_id": contract["app_id"], "contract_id": contract["contract_id"],
        "public_key": public.decode(), "redirect_uris": [receiver_base + "digime/return"]})
    assert resp.status_code == 201, resp.text
    uris = [receiver_base + "dataswyft/return", receiver_base + "dataswyft/fallback"]
    for pda in sandbox.pdas:
        resp = httpx.post(pda["url"] + "/_control/apps", timeout=30, json={
            "id": PDA_APP, "version": "1.0.0", "validRedirectUris": uris,
            "roles": [f"namespacewrite:{PDA_NS}", f"namespaceread:{PDA_NS}", "managefiles:*"]})
        assert resp.status_code in (200, 201), resp.text
    return {"digime": receiver_base + "digime/return", "pda": uris}


@pytest.fixture
def signin_settings(env, receiver_base, registered):  # noqa: F811
    return load_settings({**env, "DATAPOST_CALLBACK_URL": receiver_base,
                          "DATAPOST_SIGNIN_TTL": "60"})


@pytest.fixture
def app_client(signin_settings, redis_url) -> Iterator[Datapost]:
    """The application's Datapost, with the callback settings."""
    client = Datapost.connect(signin_settings, redis_url)
    yield client
    client.close()


@contextlib.contextmanager
def serving(client: Datapost, base: str) -> Iterator[str]:
    """The callback receiver for `client`, serving on `base` (a loopback URL)."""
    port = int(base.rsplit(":", 1)[1].rstrip("/"))
    with serve_in_thread(create_app(client), "127.0.0.1", port):
        yield base


@pytest.fixture
def receiver(app_client, receiver_base) -> Iterator[str]:
    """The callback receiver serving on `receiver_base` for one test."""
    with serving(app_client, receiver_base) as base:
        yield base


@pytest.fixture
def auto_approve(sandbox) -> Iterator[None]:
    sandbox.control("POST", "/settings", json={"auto_approve": True})
    yield
    sandbox.control("POST", "/settings", json={"auto_approve": False})


@pytest.fixture
def browser_http() -> Iterator[httpx.Client]:
    """An HTTP client that keeps cookies like a browser (one per test)."""
    with httpx.Client(timeout=30, follow_redirects=False) as client:
        yield client


def follow(client: httpx.Client, url: str, hops: int = 10) -> httpx.Response:
    """Follow redirects as a browser would, turning the PDA's `#/hatlogin` route into the
    path its dashboard script navigates to."""
    for _ in range(hops):
        url = url.replace("/#/hatlogin", "/hatlogin")
        resp = client.get(url)
        if resp.status_code not in (301, 302, 303, 307, 308):
            return resp
        url = str(resp.url.join(resp.headers["location"]))
    raise AssertionError("too many redirects")


def connect_only(client: httpx.Client, link: str) -> str:
    """Open a connect link (binding this client) and return where it sends the browser."""
    resp = client.get(link)
    assert resp.status_code == 302, resp.text
    return resp.headers["location"]


Follow = Callable[..., httpx.Response]
