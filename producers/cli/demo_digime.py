"""The digi.me part of `datapost demo`: contract, credential, writes, worker, verification."""

from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from worker.config import DataswyftSettings, DigimeSettings, Settings
from worker.secret import Secret

from ..digime import DigimeWrite
from .output import Output

APP_ID, CONTRACT_ID = "datapost-demo", "demo-write-contract"
DESCRIPTOR = {"mimeType": "text/plain", "accounts": [{"accountId": "demo-account"}],
              "tags": ["datapost-demo"]}


def demo_settings(settings: Settings, urls: dict, workdir: Path, receiver: str) -> Settings:
    """The user's settings, pointed at the sandbox (digi.me contract, PDA app, loopback
    domains allowed) with a fresh contract key."""
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
        "redirect_uris": [receiver + "digime/return"],
    }).raise_for_status()
    digime = DigimeSettings(api_url=urls["digime_api_url"], onboard_url=urls["onboard_url"],
                            application_id=APP_ID, contract_id=CONTRACT_ID,
                            private_key_file=key_file)
    dataswyft = DataswyftSettings(application_id=APP_ID, scheme="http",
                                  allowed_domains=("localhost",))
    master = settings.master_key or Secret(os.urandom(32))  # without one, a throw-away key
    delivery = dataclasses.replace(settings.delivery, payload_dir=workdir / "payloads")
    callback = dataclasses.replace(settings.callback, public_url=receiver, success_url=None,
                                   failure_url=None)
    return dataclasses.replace(settings, digime=digime, dataswyft=dataswyft, master_key=master,
                               sandbox_mode=True, delivery=delivery, callback=callback)


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


def digime_writes(user: str, workdir: Path, large_mib: int,
                  out: Output) -> tuple[list, dict[str, str]]:
    """Three postbox notes, one import push, one large postbox file; with their sha256."""
    expected: dict[str, str] = {}
    writes = []
    for i in range(3):
        data = f"Hello from datapost, note {i}\n".encode() * 20
        writes.append(DigimeWrite(user=user, data=data, file_name=f"note-{i}.txt",
                                  descriptor=DESCRIPTOR))
        expected[f"note-{i}.txt"] = hashlib.sha256(data).hexdigest()
    steps = b'{"steps": 4200}'
    writes.append(DigimeWrite(user=user, data=steps, mode="import", file_name="steps.json",
                              descriptor={**DESCRIPTOR, "mimeType": "application/json"}))
    expected["steps.json"] = hashlib.sha256(steps).hexdigest()
    big = workdir / "large.bin"
    expected["large.bin"] = make_large_file(big, large_mib, out)
    writes.append(DigimeWrite(user=user, data=big, file_name="large.bin",
                              descriptor={**DESCRIPTOR, "mimeType": "application/octet-stream"}))
    return writes, expected


def verify_digime(urls: dict, digime_user: str, expected: dict[str, str], out: Output) -> dict:
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
