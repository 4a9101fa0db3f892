"""The digi.me part of `datapost demo`: contract, credential, writes, worker, verification."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import time
from pathlib import Path

import dramatiq
import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from worker.config import DigimeSettings, Settings
from worker.secret import Secret
from worker.service import DeliveryService

from ..client import Datapost
from ..digime import DigimeWrite
from .output import Output

APP_ID, CONTRACT_ID = "datapost-demo", "demo-write-contract"
DESCRIPTOR = {"mimeType": "text/plain", "accounts": [{"accountId": "demo-account"}],
              "tags": ["datapost-demo"]}


def demo_settings(settings: Settings, urls: dict, workdir: Path) -> Settings:
    """The user's settings, pointed at the sandbox with a fresh contract key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_file = workdir / "contract.pem"
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.TraditionalOpenSSL,
                                           serialization.NoEncryption()))
    key_file.chmod(0o600)
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    httpx.post(urls["control_url"] + "/contracts", timeout=30, json={
        "application_id": APP_ID, "contract_id": CONTRACT_ID, "public_key": public.decode(),
    }).raise_for_status()
    digime = DigimeSettings(api_url=urls["digime_api_url"], onboard_url=urls["onboard_url"],
                            application_id=APP_ID, contract_id=CONTRACT_ID,
                            private_key_file=key_file)
    master = settings.master_key or Secret(os.urandom(32))  # without one, a throw-away key
    delivery = dataclasses.replace(settings.delivery, payload_dir=workdir / "payloads")
    return dataclasses.replace(settings, digime=digime, master_key=master, sandbox_mode=True,
                               delivery=delivery)


def store_sandbox_user(datapost: Datapost, urls: dict, user: str) -> dict:
    minted = httpx.post(urls["control_url"] + "/tokens", timeout=30,
                        json={"client_id": f"{APP_ID}_{CONTRACT_ID}"}).raise_for_status().json()
    datapost.store_digime_credential(
        user, access_token=minted["access_token"]["value"],
        access_expires_at=minted["access_token"]["expires_on"],
        refresh_token=minted["refresh_token"]["value"],
        refresh_expires_at=minted["refresh_token"]["expires_on"],
        postbox_id=minted["postbox_id"], postbox_public_key=minted["public_key"],
        digime_user_id=minted["user_id"])
    return minted


def make_large_file(path: Path, mib: int, out: Output) -> str:
    digest = hashlib.sha256()
    block = os.urandom(1 << 20)
    with path.open("wb") as f:
        for i in range(mib):
            chunk = block[:-8] + i.to_bytes(8, "big")
            digest.update(chunk)
            f.write(chunk)
    out.say(f"      wrote a {mib} MiB file to send ({path.name})")
    return digest.hexdigest()


def run_digime(settings: Settings, redis_url: str, urls: dict, workdir: Path, out: Output,
               step: int, total: int, large_mib: int) -> dict:
    settings = demo_settings(settings, urls, workdir)
    out.progress(step, total, f"registered digi.me contract {APP_ID}_{CONTRACT_ID} at the sandbox")
    with Datapost.connect(settings, redis_url) as datapost:
        minted = store_sandbox_user(datapost, urls, "demo-user")
        out.say(f"      stored credential for demo-user (postbox {minted['postbox_id']}), sealed "
                "with AES-256-GCM")
        big = workdir / "large.bin"
        expected = {}
        writes = []
        for i in range(3):
            data = f"Hello from datapost, note {i}\n".encode() * 20
            writes.append(DigimeWrite(user="demo-user", data=data, file_name=f"note-{i}.txt",
                                      descriptor=DESCRIPTOR))
            expected[f"note-{i}.txt"] = hashlib.sha256(data).hexdigest()
        writes.append(DigimeWrite(user="demo-user", data=b'{"steps": 4200}', mode="import",
                                  file_name="steps.json",
                                  descriptor={**DESCRIPTOR, "mimeType": "application/json"}))
        expected["steps.json"] = hashlib.sha256(b'{"steps": 4200}').hexdigest()
        expected["large.bin"] = make_large_file(big, large_mib, out)
        writes.append(DigimeWrite(user="demo-user", data=big, file_name="large.bin",
                                  descriptor={**DESCRIPTOR, "mimeType": "application/octet-stream"}))
        ids = datapost.enqueue_many(writes)
        out.progress(step + 1, total, f"enqueued {len(ids)} writes in one pipelined round trip "
                                      "(3 postbox notes, 1 import, 1 large postbox file)")
        names = {job_id: w.file_name for job_id, w in zip(ids, writes, strict=True)}
        states = run_worker_until_done(settings, redis_url, datapost, ids, names, out)
        out.progress(step + 2, total, "every job reached 'succeeded'")
        received = verify(urls, minted["user_id"], expected, out)
    out.progress(step + 3, total, f"the sandbox decrypted {len(received)} files; each equals "
                                  "what was enqueued")
    return {"jobs": states, "received": received}


def run_worker_until_done(settings: Settings, redis_url: str, datapost: Datapost,
                          ids: list[str], names: dict, out: Output, timeout: float = 300) -> dict:
    service = DeliveryService.build(settings, redis_url)
    service.declare_actor()
    worker = dramatiq.Worker(service.broker, worker_threads=4, worker_timeout=100)
    worker.start()
    seen: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            for job_id in ids:
                state = datapost.job(job_id).state
                if seen.get(job_id) != state:
                    seen[job_id] = state
                    out.say(f"      {names[job_id]:<12} {state}")
            if all(s in ("succeeded", "failed", "dead", "parked") for s in seen.values()):
                break
            time.sleep(0.05)
    finally:
        worker.stop(timeout=30_000)
        service.broker.close()
        service.close()
    bad = {names[j]: s for j, s in seen.items() if s != "succeeded"}
    if bad:
        raise RuntimeError(f"jobs did not succeed: {bad}")
    return {names[j]: datapost.status(j)["result"] for j in ids}


def verify(urls: dict, digime_user: str, expected: dict[str, str], out: Output) -> dict:
    rows = httpx.get(urls["control_url"] + "/deliveries", params={"user_id": digime_user},
                     timeout=30).raise_for_status().json()["deliveries"]
    by_sha = {r["sha256"]: r for r in rows}
    received = {}
    for name, sha in expected.items():
        row = by_sha.get(sha)
        if row is None:
            raise RuntimeError(f"the sandbox never received {name}")
        received[name] = {"mode": row["mode"], "size": row["size"], "sha256": sha,
                          "status": row["status"]}
        out.say(f"      {name:<12} {row['mode']:<8} {row['size']:>10} bytes  sha256 "
                f"{sha[:16]}… matches")
    return received
