"""What every benchmark needs: a private Redis, the sandbox, a registered contract, a user,
worker processes, and CPU/RSS readings of those processes. Nothing here is timed itself."""

from __future__ import annotations

import base64
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import psutil
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from worker.config import load_settings
from worker.redis_server import RedisServerProcess, find_server_binary

ROOT = Path(__file__).resolve().parents[1]


def machine() -> dict:
    return {"cpus": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform(), "processor": platform.processor() or None}


class Bench:
    """Redis + sandbox + contract, and DATAPOST_* for producers and workers."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.redis = RedisServerProcess(find_server_binary(prefer_system=True), workdir / "redis",
                                        appendonly=True)
        self.sandbox: subprocess.Popen | None = None
        self.urls: dict = {}
        self.env: dict[str, str] = {}
        self.workers: list[subprocess.Popen] = []

    def start(self, *sandbox_args: str) -> Bench:
        self.redis.start()
        self.sandbox = subprocess.Popen(
            [sys.executable, "-m", "sandbox", "--json", "--data-dir", str(self.workdir / "sb"),
             *sandbox_args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT)
        self.urls = json.loads(self.sandbox.stdout.readline())
        threading.Thread(target=lambda: [None for _ in self.sandbox.stdout], daemon=True).start()
        self.control("POST", "/settings", json={"keep_content": False})
        _, key_file = self.register_contract("bench", "bench-contract", "contract.pem")
        self.env = {
            "DATAPOST_REDIS_URL": self.redis.url,
            "DATAPOST_MASTER_KEY": base64.b64encode(os.urandom(32)).decode(),
            "DATAPOST_DATA_DIR": str(self.workdir / "data"),
            "DATAPOST_DIGIME_API_URL": self.urls["digime_api_url"],
            "DATAPOST_DIGIME_ONBOARD_URL": self.urls["onboard_url"],
            "DATAPOST_DIGIME_APPLICATION_ID": "bench",
            "DATAPOST_DIGIME_CONTRACT_ID": "bench-contract",
            "DATAPOST_DIGIME_PRIVATE_KEY_FILE": str(key_file),
            "DATAPOST_LOG_LEVEL": "warning",
            "DATAPOST_METRICS_PORT": "0",  # bench workers never contend for 9191
            "DATAPOST_SANDBOX": "true",
            "DATAPOST_DATASWYFT_APPLICATION_ID": "bench",
            "DATAPOST_DATASWYFT_SCHEME": "http",
            "DATAPOST_DATASWYFT_ALLOWED_DOMAINS": "localhost",
            "DATAPOST_LOG_FORMAT": "json",
        }
        return self

    def register_contract(self, app_id: str, contract_id: str,
                          key_name: str) -> tuple[str, Path]:
        """A new RSA-2048 contract key, written to `key_name` in the workdir and registered
        with the sandbox; returns the contract's client id and the key file."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        key_file = self.workdir / key_name
        key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                               serialization.PrivateFormat.TraditionalOpenSSL,
                                               serialization.NoEncryption()))
        public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
        made = self.control("POST", "/contracts", json={
            "application_id": app_id, "contract_id": contract_id, "public_key": public.decode()})
        return made["client_id"], key_file

    def control(self, method: str, path: str, **kwargs) -> dict:
        resp = httpx.request(method, self.urls["control_url"] + path, timeout=60, **kwargs)
        resp.raise_for_status()
        return resp.json()

    def settings(self):
        return load_settings(self.env)

    def mint_user(self, datapost, user: str, access_ttl: int = 3600) -> dict:
        minted = self.control("POST", "/tokens", json={"client_id": "bench_bench-contract",
                                                       "access_ttl": access_ttl})
        datapost.store_digime_credential(
            user, access_token=minted["access_token"]["value"],
            access_expires_at=minted["access_token"]["expires_on"],
            refresh_token=minted["refresh_token"]["value"],
            refresh_expires_at=minted["refresh_token"]["expires_on"],
            postbox_id=minted["postbox_id"], postbox_public_key=minted["public_key"])
        return minted

    def mint_users(self, datapost, count: int, prefix: str = "bench-user") -> list[str]:
        """`count` digi.me users with stored credentials; returns their names."""
        users = [f"{prefix}-{i}" for i in range(count)]
        for user in users:
            self.mint_user(datapost, user)
        return users

    def pda_user(self, datapost, user: str, pda: dict, namespace: str = "bench") -> None:
        """Register the bench app on `pda` (idempotent) with `namespace` and store a token
        for `user`."""
        httpx.post(pda["url"] + "/_control/apps", timeout=30, json={
            "id": "bench", "version": "1.0.0", "validRedirectUris": ["http://127.0.0.1:9/cb"],
            "roles": [f"namespacewrite:{namespace}", f"namespaceread:{namespace}",
                      "managefiles:*"],
        }).raise_for_status()
        token = httpx.post(pda["url"] + "/_control/token", json={"application": "bench"},
                           timeout=30).raise_for_status().json()["token"]
        datapost.store_dataswyft_credential(user, pda_domain=pda["domain"], token=token)

    def start_worker(self, processes: int, threads: int, *extra: str,
                     log: Path | None = None) -> subprocess.Popen:
        """A `datapost worker` in its own process group; its stderr goes to `log` if given."""
        err = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 (child owns it)
        proc = subprocess.Popen(
            [sys.executable, "-m", "producers.cli", "worker", "--processes", str(processes),
             "--threads", str(threads), *extra], cwd=ROOT, env={**os.environ, **self.env},
            stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
        if log:
            err.close()
        self.workers.append(proc)
        return proc

    def stop(self) -> None:
        for proc in self.workers:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(60)
                except subprocess.TimeoutExpired:
                    proc.kill()
        if self.sandbox is not None:
            self.sandbox.terminate()
            self.sandbox.wait(30)
        self.redis.stop()


@contextmanager
def bench_env(*sandbox_args: str):
    with tempfile.TemporaryDirectory(prefix="datapost-bench-") as tmp:
        bench = Bench(Path(tmp)).start(*sandbox_args)
        try:
            yield bench
        finally:
            bench.stop()


def tree(proc: subprocess.Popen | int) -> list[psutil.Process]:
    root = psutil.Process(proc if isinstance(proc, int) else proc.pid)
    return [root, *root.children(recursive=True)]


def cpu_seconds(procs: list[psutil.Process]) -> float:
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def peak_rss_mib(procs: list[psutil.Process]) -> dict[int, float]:
    """VmHWM (peak resident set) of each live process, in MiB."""
    out = {}
    for p in procs:
        try:
            for line in Path(f"/proc/{p.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    out[p.pid] = int(line.split()[1]) / 1024
        except OSError:
            pass
    return out


def wait_until(predicate, timeout: float, interval: float = 0.05) -> float:
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise TimeoutError("benchmark condition not reached in time")
        time.sleep(interval)
    return time.monotonic() - started


def run_pipeline(bench: Bench, datapost, writes: list, processes: int, threads: int) -> dict:
    """Start workers, let them boot, bulk-enqueue `writes` (500 per call) and wait until
    every job succeeded. Returns wall time, enqueue time and CPU of workers and sandbox."""
    worker = bench.start_worker(processes, threads)
    time.sleep(4)  # boot: imports, key load, first poll
    procs, sandbox_procs = tree(worker), tree(bench.sandbox)
    cpu0, sandbox0 = cpu_seconds(procs), cpu_seconds(sandbox_procs)
    started = time.monotonic()
    for i in range(0, len(writes), 500):
        datapost.enqueue_many(writes[i:i + 500])
        print(f"enqueued {min(i + 500, len(writes))}/{len(writes)}", file=sys.stderr)
    enqueue_s = time.monotonic() - started
    wait_until(lambda: datapost.stores.redis.zcard("datapost:jobs:succeeded") >= len(writes),
               timeout=600)
    return {"seconds": time.monotonic() - started, "enqueue_seconds": enqueue_s,
            "worker_cpu": cpu_seconds(procs) - cpu0,
            "sandbox_cpu": cpu_seconds(sandbox_procs) - sandbox0,
            "states": {k: v for k, v in datapost.stores.jobs.counts().items() if v}}


def small_writes(users: list[str], count: int, size: int, tag: str = "w") -> list:
    """`count` digi.me writes of `size` random bytes, spread round-robin over `users`."""
    from producers import DigimeWrite

    return [DigimeWrite(user=users[i % len(users)], data=os.urandom(size),
                        file_name=f"{tag}{i}.bin") for i in range(count)]


def emit(result: dict) -> None:
    """Every benchmark prints one JSON object as its last line."""
    print(json.dumps(result), flush=True)
