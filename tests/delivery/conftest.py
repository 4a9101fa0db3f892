"""Fixtures for delivery tests: a contract registered at the sandbox, settings pointing at
it and at the private Redis, the producer API, and workers (in-process or real processes).

Brokers: every test here that uses `env` is parametrised with `broker`. By default it runs
on the Redis broker, and tests marked `rabbitmq` also run on RabbitMQ (`rabbitmq(only=True)`:
on RabbitMQ only). `TEST_BROKERS=both` runs every test on both, `TEST_BROKERS=rabbitmq` on
RabbitMQ only, `TEST_BROKERS=redis` on Redis only. RabbitMQ is `TEST_RABBITMQ_URL` (default
guest@127.0.0.1:5672); each session uses its own queue, `datapost-test-<random>`, emptied
before every test and deleted (with its .DQ and .XQ) at the end. A RabbitMQ test fails,
never skips, when RabbitMQ cannot be reached.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import dramatiq
import httpx
import pika
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from producers import Datapost
from worker.config import Settings, load_settings
from worker.service import DeliveryService

ROOT = Path(__file__).resolve().parents[2]
PDA_APP = "datapost-tests"
PDA_NS = "datapost"
RABBITMQ_URL = os.environ.get("TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
BROKER_MODES = {"": None, "both": ("redis", "rabbitmq"), "redis": ("redis",),
                "rabbitmq": ("rabbitmq",)}


def brokers_for(definition) -> list[str]:
    mode = os.environ.get("TEST_BROKERS", "").strip().lower()
    if mode not in BROKER_MODES:
        raise pytest.UsageError(f"TEST_BROKERS={mode!r}: use one of both, redis, rabbitmq")
    marker = definition.get_closest_marker("rabbitmq")
    if marker is not None and marker.kwargs.get("only"):
        wanted = ["rabbitmq"]
    elif marker is not None:
        wanted = ["redis", "rabbitmq"]
    else:
        wanted = ["redis"]
    allowed = BROKER_MODES[mode]
    if allowed is None:
        return wanted
    if marker is not None and marker.kwargs.get("only"):
        return [b for b in wanted if b in allowed]
    return list(allowed)


def pytest_generate_tests(metafunc) -> None:
    if "env" in metafunc.fixturenames:
        metafunc.parametrize("broker", brokers_for(metafunc.definition), indirect=True)


def rabbitmq_queues(queue: str) -> tuple[str, str, str]:
    return queue, f"{queue}.DQ", f"{queue}.XQ"


def delete_rabbitmq_queues(queue: str) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(RABBITMQ_URL))
    try:
        channel = connection.channel()
        for name in rabbitmq_queues(queue):
            channel.queue_delete(name)
    finally:
        connection.close()


@pytest.fixture(scope="session")
def rabbitmq_queue() -> Iterator[str]:
    """This session's queue name on the real RabbitMQ; its queues are deleted at the end."""
    try:
        pika.BlockingConnection(pika.URLParameters(RABBITMQ_URL)).close()
    except Exception as exc:
        where = RABBITMQ_URL.rsplit("@", 1)[-1]
        pytest.fail(f"RabbitMQ is not reachable at {where} ({type(exc).__name__}: {exc}). "
                    "The RabbitMQ variants of the delivery tests need it: start RabbitMQ, "
                    "point TEST_RABBITMQ_URL at one, or run TEST_BROKERS=redis.", pytrace=False)
    queue = f"datapost-test-{uuid.uuid4().hex[:12]}"
    yield queue
    delete_rabbitmq_queues(queue)


@pytest.fixture(autouse=True)
def broker(request) -> str:
    """Which broker this test's queue runs on: "redis" or "rabbitmq" (see the module doc).
    Autouse here, so that tests elsewhere that import `env` by name stay on Redis."""
    name = getattr(request, "param", "redis")
    if name == "rabbitmq":
        # no messages from an earlier test (RabbitMQ is not flushed with the private Redis)
        delete_rabbitmq_queues(request.getfixturevalue("rabbitmq_queue"))
    return name


@pytest.fixture(scope="session")
def contract(sandbox, tmp_path_factory) -> dict:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    folder = tmp_path_factory.mktemp("contract")
    path = folder / "contract.pem"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.TraditionalOpenSSL,
                                       serialization.NoEncryption()))
    path.chmod(0o600)
    app_id, contract_id = "datapost-tests", "write-contract"
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    resp = sandbox.control("POST", "/contracts", json={
        "application_id": app_id, "contract_id": contract_id, "public_key": public.decode()})
    assert resp.status_code == 201, resp.text
    return {"app_id": app_id, "contract_id": contract_id, "key_file": str(path),
            "client_id": resp.json()["client_id"]}


@pytest.fixture
def env(request, sandbox, contract, redis_url, redis_client, tmp_path) -> dict[str, str]:
    """DATAPOST_* for one test: fresh master key, fresh data dir, fast retries, the queue on
    `broker`."""
    queue = {}
    if "broker" in request.fixturenames and request.getfixturevalue("broker") == "rabbitmq":
        queue = {"DATAPOST_BROKER_URL": RABBITMQ_URL,
                 "DATAPOST_QUEUE": request.getfixturevalue("rabbitmq_queue")}
    return queue | {
        "DATAPOST_REDIS_URL": redis_url,
        "DATAPOST_MASTER_KEY": base64.b64encode(os.urandom(32)).decode(),
        "DATAPOST_DATA_DIR": str(tmp_path / "data"),
        "DATAPOST_SANDBOX": "true",
        "DATAPOST_DIGIME_API_URL": sandbox.digime_api_url,
        "DATAPOST_DIGIME_ONBOARD_URL": sandbox.onboard_url,
        "DATAPOST_DIGIME_APPLICATION_ID": contract["app_id"],
        "DATAPOST_DIGIME_CONTRACT_ID": contract["contract_id"],
        "DATAPOST_DIGIME_PRIVATE_KEY_FILE": contract["key_file"],
        "DATAPOST_RETRY_BASE": "0.2",
        "DATAPOST_RETRY_FACTOR": "2",
        "DATAPOST_RETRY_CAP": "2",
        "DATAPOST_HTTP_TIMEOUT": "10",
        "DATAPOST_LOG_FORMAT": "json",
        "DATAPOST_DATASWYFT_APPLICATION_ID": PDA_APP,
        "DATAPOST_DATASWYFT_SCHEME": "http",
        "DATAPOST_DATASWYFT_ALLOWED_DOMAINS": "localhost",
    }


@pytest.fixture
def settings(env) -> Settings:
    return load_settings(env)


@pytest.fixture
def datapost(settings, redis_url) -> Iterator[Datapost]:
    client = Datapost.connect(settings, redis_url)
    yield client
    client.close()


@pytest.fixture
def mint_user(sandbox, contract, datapost) -> Callable[..., dict]:
    """A digi.me library with a postbox, its tokens stored in the vault for `user`."""

    def mint(user: str | None = None, *, access_ttl: int = 3600, store: bool = True) -> dict:
        user = user or f"user-{uuid.uuid4().hex[:8]}"
        resp = sandbox.control("POST", "/tokens", json={"client_id": contract["client_id"],
                                                        "access_ttl": access_ttl})
        assert resp.status_code == 201, resp.text
        minted = resp.json()
        if store:
            datapost.store_digime_credential(
                user, access_token=minted["access_token"]["value"],
                access_expires_at=minted["access_token"]["expires_on"],
                refresh_token=minted["refresh_token"]["value"],
                refresh_expires_at=minted["refresh_token"]["expires_on"],
                postbox_id=minted["postbox_id"], postbox_public_key=minted["public_key"],
                digime_user_id=minted["user_id"])
        return {"user": user, **minted}

    return mint


class InProcessWorker:
    """A dramatiq Worker in this process (threads), on the real private Redis."""

    def __init__(self, settings: Settings, redis_url: str, threads: int = 4) -> None:
        self.service = DeliveryService.build(settings, redis_url, sleep=time.sleep)
        self.service.declare_actor()
        self.worker = dramatiq.Worker(self.service.broker, worker_threads=threads,
                                      worker_timeout=100)

    def start(self) -> InProcessWorker:
        self.worker.start()
        return self

    def stop(self) -> None:
        self.worker.stop(timeout=30_000)
        self.service.broker.close()
        self.service.close()


@pytest.fixture
def run_worker(settings, redis_url) -> Iterator[Callable[..., InProcessWorker]]:
    started: list[InProcessWorker] = []

    def start(threads: int = 4) -> InProcessWorker:
        worker = InProcessWorker(settings, redis_url, threads).start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture
def spawn_worker(env, tmp_path) -> Iterator[Callable[..., subprocess.Popen]]:
    """`datapost worker` as a real process group (so tests can SIGKILL it)."""
    procs: list[subprocess.Popen] = []

    def spawn(threads: int = 2, name: str = "w") -> subprocess.Popen:
        log = open(tmp_path / f"worker-{name}-{len(procs)}.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            [sys.executable, "-m", "producers.cli", "worker", "--processes", "1",
             "--threads", str(threads)], cwd=ROOT, env={**os.environ, **env},
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        procs.append(proc)
        return proc

    yield spawn
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, 15)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)


def wait_for(datapost: Datapost, job_ids: list[str], states: set[str],
             timeout: float = 60.0) -> dict[str, dict]:
    """Poll until every job is in one of `states`; returns their summaries.

    The attempt record is written in the same script as the state change; the short settle
    loop below only guards against a reader that raced the script."""
    deadline = time.monotonic() + timeout
    while True:
        summaries = {j: datapost.job(j).summary() for j in job_ids}
        if all(s["state"] in states for s in summaries.values()):
            settle = time.monotonic() + 5
            while time.monotonic() < settle and any(
                    len(datapost.stores.jobs.attempts(j)) < s["runs"] for j, s in summaries.items()):
                time.sleep(0.02)
            return summaries
        if time.monotonic() > deadline:
            pending = {j: s["state"] for j, s in summaries.items() if s["state"] not in states}
            raise AssertionError(f"{len(pending)} job(s) not in {states}: "
                                 f"{list(pending.items())[:5]}")
        time.sleep(0.05)


def deliveries(sandbox, **params) -> list[dict]:
    resp = httpx.get(sandbox.control_url + "/deliveries", params=params, timeout=30)
    resp.raise_for_status()
    return resp.json()["deliveries"]


def stats(sandbox, client_id: str) -> dict:
    return httpx.get(sandbox.control_url + "/stats", params={"client_id": client_id},
                     timeout=30).json()


@pytest.fixture(scope="session")
def pda_app(sandbox) -> str:
    """Our app, registered and enabled on both sandbox PDAs, writing to namespace datapost."""
    for pda in sandbox.pdas:
        resp = httpx.post(pda["url"] + "/_control/apps", timeout=30, json={
            "id": PDA_APP, "version": "1.0.0", "validRedirectUris": ["http://127.0.0.1:9/cb"],
            "roles": [f"namespacewrite:{PDA_NS}", f"namespaceread:{PDA_NS}", "managefiles:*"]})
        assert resp.status_code in (200, 201), resp.text
    return PDA_APP


def mint_pda_token(pda: dict, *, iat_offset: int = 0, exp_offset: int | None = None) -> str:
    body = {"application": PDA_APP, "iat_offset": iat_offset}
    if exp_offset is not None:
        body["exp_offset"] = exp_offset
    resp = httpx.post(pda["url"] + "/_control/token", json=body, timeout=30)
    assert resp.status_code in (200, 201), resp.text
    return resp.json()["token"]


@pytest.fixture
def pda_user(sandbox, pda_app, datapost) -> Callable[..., dict]:
    """A user whose PDA credential (an app token for `pda`) is stored."""

    def make(pda_name: str = "alice", *, iat_offset: int = 0, user: str | None = None) -> dict:
        pda = sandbox.pda(pda_name)
        user = user or f"pda-user-{uuid.uuid4().hex[:8]}"
        token = mint_pda_token(pda, iat_offset=iat_offset)
        datapost.store_dataswyft_credential(user, pda_domain=pda["domain"], token=token)
        return {"user": user, "pda": pda, "token": token}

    return make


def pda_records(pda: dict, endpoint: str | None = None) -> list[dict]:
    params = {"namespace": PDA_NS, **({"endpoint": endpoint} if endpoint else {})}
    resp = httpx.get(pda["url"] + "/_control/records", params=params, timeout=30)
    resp.raise_for_status()
    return resp.json()["records"]
