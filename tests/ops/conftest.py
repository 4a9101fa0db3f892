"""Fixtures for the operator commands: the delivery fixtures, the `datapost` command run as a
real process, and a module-wide "world" with real jobs in every state.

The world is made by real deliveries against the sandbox with injected faults (one fault per
user, matched on the user's postbox path or PDA host, so nothing else is affected):
succeeded (digi.me and PDA), failed (a digi.me 400 and a PDA 403), dead (permanent 500s with
DATAPOST_RETRY_MAX=1), parked (a revoked refresh token), retrying (a 429 asking for an hour),
queued (an hour's delay), cancelled (`datapost jobs cancel`) and running (a spawned worker
stuck in a 10-minute upload).
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
import redis

from producers import Datapost
from tests.delivery import conftest as delivery
from tests.delivery.conftest import PDA_APP, PDA_NS, InProcessWorker, mint_pda_token, wait_for
from worker.config import load_settings

# The delivery fixtures these tests use (the queue on the Redis broker: `broker`, where the
# delivery fixtures have it, defaults to "redis" outside tests/delivery).
if hasattr(delivery, "broker"):
    broker = delivery.broker
contract = delivery.contract
env = delivery.env
settings = delivery.settings
datapost = delivery.datapost
mint_user = delivery.mint_user
pda_app = delivery.pda_app
pda_user = delivery.pda_user
run_worker = delivery.run_worker

ROOT = Path(__file__).resolve().parents[2]
DATAPOST = [sys.executable, "-m", "producers.cli"]


def cli(env: dict[str, str], *args: str, stdin=subprocess.DEVNULL,
        timeout: float = 60) -> subprocess.CompletedProcess:
    """`datapost ARGS` as a person runs it, with only the test's DATAPOST_* settings."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DATAPOST_")}
    return subprocess.run([*DATAPOST, *args], capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT, env={**clean, **env}, stdin=stdin)


def cli_json(env: dict[str, str], *args: str, expect: int = 0) -> dict:
    done = cli(env, *args, "--json")
    assert done.returncode == expect, (args, done.returncode, done.stdout, done.stderr)
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1, f"--json must print one line on stdout, got {done.stdout!r}"
    return json.loads(lines[0])


def no_traceback(done: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in done.stderr + done.stdout, done.stderr


def base_env(sandbox, contract, redis_url: str, data_dir: Path) -> dict[str, str]:
    """The same DATAPOST_* as tests.delivery.conftest.env, for module-scoped use."""
    return {
        "DATAPOST_REDIS_URL": redis_url,
        "DATAPOST_MASTER_KEY": base64.b64encode(os.urandom(32)).decode(),
        "DATAPOST_DATA_DIR": str(data_dir),
        "DATAPOST_SANDBOX": "true",
        "DATAPOST_DIGIME_API_URL": sandbox.digime_api_url,
        "DATAPOST_DIGIME_ONBOARD_URL": sandbox.onboard_url,
        "DATAPOST_DIGIME_APPLICATION_ID": contract["app_id"],
        "DATAPOST_DIGIME_CONTRACT_ID": contract["contract_id"],
        "DATAPOST_DIGIME_PRIVATE_KEY_FILE": contract["key_file"],
        "DATAPOST_RETRY_BASE": "0.2",
        "DATAPOST_RETRY_FACTOR": "2",
        "DATAPOST_RETRY_CAP": "2",
        "DATAPOST_LOG_FORMAT": "json",
        "DATAPOST_DATASWYFT_APPLICATION_ID": PDA_APP,
        "DATAPOST_DATASWYFT_SCHEME": "http",
        "DATAPOST_DATASWYFT_ALLOWED_DOMAINS": "localhost",
        # dead after one retry, no quick retries inside an attempt, and patience enough for
        # the 10-minute upload that keeps one job running
        "DATAPOST_RETRY_MAX": "1",
        "DATAPOST_HTTP_ATTEMPTS": "1",
        "DATAPOST_HTTP_TIMEOUT": "900",
        "DATAPOST_METRICS_PORT": "0",  # no metrics endpoint: port 9191 may be taken
    }


def mint_digime(sandbox, contract, datapost: Datapost, user: str) -> dict:
    resp = sandbox.control("POST", "/tokens", json={"client_id": contract["client_id"],
                                                    "access_ttl": 3600})
    assert resp.status_code == 201, resp.text
    minted = resp.json()
    datapost.store_digime_credential(
        user, access_token=minted["access_token"]["value"],
        access_expires_at=minted["access_token"]["expires_on"],
        refresh_token=minted["refresh_token"]["value"],
        refresh_expires_at=minted["refresh_token"]["expires_on"],
        postbox_id=minted["postbox_id"], postbox_public_key=minted["public_key"],
        digime_user_id=minted["user_id"])
    return {"user": user, **minted}


def add_fault(sandbox, rules: list[int], **rule) -> None:
    resp = sandbox.control("POST", "/faults", json=rule)
    assert resp.status_code in (200, 201), resp.text
    rules.append(resp.json()["id"])


def postbox_path(user: dict) -> str:
    return "postbox/" + re.escape(user["postbox_id"])


def secrets_of_digime(user: dict) -> list[str]:
    key_lines = [line for line in user["public_key"].splitlines() if "-----" not in line]
    return [user["access_token"]["value"], user["refresh_token"]["value"], *key_lines[:3]]


def wait_state(dp: Datapost, job_id: str, state: str, timeout: float = 60) -> None:
    wait_for(dp, [job_id], {state}, timeout=timeout)


@pytest.fixture(scope="module")
def world(sandbox, contract, pda_app, redis_server, tmp_path_factory) -> Iterator[SimpleNamespace]:
    if not redis_server.alive():
        redis_server.start()
    url = redis_server.url
    client = redis.Redis.from_url(url)
    client.flushdb()
    folder = tmp_path_factory.mktemp("ops-world")
    env = base_env(sandbox, contract, url, folder / "data")
    settings = load_settings(env)
    dp = Datapost.connect(settings, url)
    rules: list[int] = []
    worker_proc: subprocess.Popen | None = None
    log = None
    tag = uuid.uuid4().hex[:6]
    secrets = [env["DATAPOST_MASTER_KEY"],
               *[line for line in Path(contract["key_file"]).read_text().splitlines()
                 if "-----" not in line][:3]]
    names: list[str] = []  # file names and record contents: sealed, never shown

    def payload(label: str) -> bytes:
        marker = f"payload-{label}-{uuid.uuid4().hex}"
        secrets.append(marker)
        return marker.encode() * 4

    def file_name(label: str) -> str:
        name = f"secret-name-{label}-{uuid.uuid4().hex[:8]}.txt"
        names.append(name)
        return name

    try:
        users = {role: mint_digime(sandbox, contract, dp, f"ops-{role}-{tag}")
                 for role in ("ok", "fail", "dead", "parked", "retry", "run")}
        for minted in users.values():
            secrets.extend(secrets_of_digime(minted))
        alice, bob = sandbox.pda("alice"), sandbox.pda("bob")
        pda_users = {}
        for role, pda in (("pdaok", alice), ("pdafail", bob)):
            token = mint_pda_token(pda)
            name = f"ops-{role}-{tag}"
            dp.store_dataswyft_credential(name, pda_domain=pda["domain"], token=token)
            pda_users[role] = {"user": name, "pda": pda, "token": token}
            secrets.append(token)

        add_fault(sandbox, rules, target="digime", path=postbox_path(users["fail"]), status=400,
                  times=1, body={"error": {"code": "ValidationErrors",
                                           "message": "The file is not allowed"}})
        add_fault(sandbox, rules, target="digime", path=postbox_path(users["dead"]), status=500,
                  probability=1.0)
        add_fault(sandbox, rules, target="digime", path=postbox_path(users["retry"]), status=429,
                  retry_after="3600", times=1)
        add_fault(sandbox, rules, target="pda", host=bob["domain"], path="/data/", status=403,
                  times=1)
        sandbox.control("POST", "/tokens/revoke",
                        json={"refresh_token": users["parked"]["refresh_token"]["value"]})
        sandbox.control("POST", "/tokens/expire",
                        json={"access_token": users["parked"]["access_token"]["value"]})

        ids: dict[str, list[str]] = {}

        def digime_job(role: str, **kw) -> str:
            return dp.enqueue_digime(users[role]["user"], payload(role),
                                     file_name=file_name(role), **kw)

        def pda_job(role: str) -> str:
            marker = f"record-{role}-{uuid.uuid4().hex}"
            secrets.append(marker)
            return dp.enqueue_records(pda_users[role]["user"], PDA_NS, "ops", {"note": marker})

        ids["succeeded"] = [digime_job("ok"), digime_job("ok"), pda_job("pdaok")]
        ids["failed"] = [digime_job("fail"), pda_job("pdafail")]
        ids["dead"] = [digime_job("dead")]
        ids["parked"] = [digime_job("parked")]
        ids["retrying"] = [digime_job("retry")]
        worker = InProcessWorker(settings, url).start()
        try:
            for state in ("succeeded", "failed", "dead", "parked", "retrying"):
                wait_for(dp, ids[state], {state}, timeout=90)
        finally:
            worker.stop()

        ids["queued"] = [digime_job("ok", delay=3600)]
        doomed = digime_job("ok", delay=3600)
        done = cli(env, "jobs", "cancel", doomed)
        assert done.returncode == 0, done.stderr
        ids["cancelled"] = [doomed]

        add_fault(sandbox, rules, target="digime", path=postbox_path(users["run"]),
                  delay_ms=600_000, times=1)
        ids["running"] = [digime_job("run")]
        log = open(folder / "worker.log", "wb")  # noqa: SIM115
        worker_proc = subprocess.Popen(
            [*DATAPOST, "worker", "--processes", "1", "--threads", "2"], cwd=ROOT,
            env={**{k: v for k, v in os.environ.items() if not k.startswith("DATAPOST_")}, **env},
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while dp.job(ids["running"][0]).state != "running":
            if worker_proc.poll() is not None or time.monotonic() > deadline:
                log.flush()
                pytest.fail("the spawned worker did not take the job:\n"
                            + (folder / "worker.log").read_text()[-3000:], pytrace=False)
            time.sleep(0.1)
        deadline = time.monotonic() + 30  # the upload itself has started (and hangs)
        while time.monotonic() < deadline and not any(
                r["path"].endswith(users["run"]["postbox_id"])
                for r in sandbox.control("GET", "/requests",
                                         params={"target": "digime"}).json()["requests"]):
            time.sleep(0.1)

        yield SimpleNamespace(env=env, dp=dp, ids=ids, users=users, pda_users=pda_users,
                              secrets=secrets, names=names, created_at=time.time())
    finally:
        if worker_proc is not None and worker_proc.poll() is None:
            os.killpg(worker_proc.pid, signal.SIGKILL)
            worker_proc.wait(30)
        if log is not None:
            log.close()
        for rule in rules:
            sandbox.control("DELETE", f"/faults/{rule}")
        dp.close()
        client.close()
