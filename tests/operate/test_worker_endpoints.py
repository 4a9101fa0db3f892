"""`datapost worker` serves /metrics (two processes add up in one scrape), /healthz, /readyz;
SIGTERM finishes in-flight jobs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from producers import DigimeWrite
from tests.delivery.conftest import deliveries, wait_for
from worker.redis_server import free_port

ROOT = Path(__file__).resolve().parents[2]


def start_worker(env: dict, tmp_path: Path, *args: str) -> subprocess.Popen:
    log = open(tmp_path / f"worker-{time.monotonic_ns()}.log", "wb")  # noqa: SIM115
    return subprocess.Popen([sys.executable, "-m", "producers.cli", "worker", *args], cwd=ROOT,
                            env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)


def samples(text: str) -> dict[tuple[str, tuple], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def wait_http(url: str, timeout: float = 30) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while True:
        try:
            resp = httpx.get(url, timeout=2)
            if resp.status_code == 200:
                return resp
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"{url} never answered 200"
        time.sleep(0.2)


def test_two_worker_processes_add_up_in_one_scrape(env, datapost, mint_user, tmp_path):
    user = mint_user()
    port = free_port()
    proc = start_worker(env, tmp_path, "--processes", "2", "--threads", "2",
                        "--metrics-port", str(port))
    try:
        wait_http(f"http://127.0.0.1:{port}/readyz")
        ids = datapost.enqueue_many([DigimeWrite(user=user["user"], data=f"m{i}".encode(),
                                                 file_name=f"m{i}.txt") for i in range(40)])
        wait_for(datapost, ids, {"succeeded"}, timeout=90)
        workers = {datapost.status(j)["attempts_log"][0]["worker"].split(":")[1] for j in ids}
        assert len(workers) == 2, "both worker processes should have delivered some jobs"
        got = samples(httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text)
        ok = (("outcome", "succeeded"), ("provider", "digime"))
        assert got[("datapost_deliveries_total", ok)] == 40
        assert got[("datapost_attempt_duration_seconds_count", (("provider", "digime"),))] == 40
        assert got[("datapost_bytes_uploaded_total", (("provider", "digime"),))] == \
            sum(len(f"m{i}") for i in range(40))
        assert got[("datapost_jobs", (("state", "succeeded"),))] == 40
        assert got[("datapost_workers", ())] >= 2
        assert got[("datapost_queue_depth", (("queue", "datapost"),))] == 0
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").json()["ok"] is True
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(60)


def test_sigterm_finishes_the_job_in_flight(env, datapost, mint_user, sandbox, tmp_path):
    user = mint_user()
    sandbox.control("DELETE", "/faults")
    sandbox.control("POST", "/faults", json={"target": "digime", "path": "postbox",
                                             "delay_ms": 3000, "times": 1})
    try:
        proc = start_worker(env, tmp_path, "--threads", "1", "--metrics-port", "0")
        job_id = datapost.enqueue_digime(user["user"], b"finish me", file_name="f.txt")
        deadline = time.monotonic() + 30
        while datapost.job(job_id).state != "running":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)  # to the main pid, as Kubernetes and Docker do
        assert proc.wait(60) == 0
        assert datapost.job(job_id).state == "succeeded"
        assert len(deliveries(sandbox, user_id=user["user_id"])) == 1
    finally:
        sandbox.control("DELETE", "/faults")


def test_a_taken_metrics_port_is_a_clear_error(env, tmp_path):
    import socket

    with socket.socket() as busy:
        busy.bind(("0.0.0.0", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "producers.cli", "worker",
                               "--metrics-port", str(port)], cwd=ROOT, env={**os.environ, **env},
                              capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert f"cannot serve metrics on 0.0.0.0:{port}" in done.stderr and "Traceback" not in done.stderr


def test_worker_consumes_the_queue_it_is_given(env, redis_url, mint_user, tmp_path):
    from producers import Datapost
    from worker.config import load_settings

    other = load_settings({**env, "DATAPOST_QUEUE": "datapost-other"})
    with Datapost.connect(other, redis_url) as client:
        user = mint_user()
        job_id = client.enqueue_digime(user["user"], b"other queue", file_name="q.txt")
        proc = start_worker(env, tmp_path, "--queue", "datapost-other", "--metrics-port", "0")
        try:
            wait_for(client, [job_id], {"succeeded"}, timeout=60)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
    done = subprocess.run([sys.executable, "-m", "producers.cli", "worker", "--queue", "no spaces"],
                          cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2 and "--queue must be letters" in done.stderr
