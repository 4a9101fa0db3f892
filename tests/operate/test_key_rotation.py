"""Master-key rotation as docs/OPERATIONS.md describes it, through the CLI."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

from producers import Datapost
from worker.config import load_settings

ROOT = Path(__file__).resolve().parents[2]


def cli(env: dict, *args: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DATAPOST_")}
    return subprocess.run([sys.executable, "-m", "producers.cli", *args], cwd=ROOT,
                          env={**clean, **env}, capture_output=True, text=True, timeout=60)


def test_rotate_reseal_then_drop_the_old_key(env, redis_url, mint_user, datapost):
    user = mint_user()  # stored under the old key (env's DATAPOST_MASTER_KEY)
    old = env["DATAPOST_MASTER_KEY"]
    new = base64.b64encode(os.urandom(32)).decode()
    rotated = {**env, "DATAPOST_MASTER_KEY": new, "DATAPOST_MASTER_KEY_PREVIOUS": old}
    done = cli(rotated, "credentials", "reseal", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["resealed"] >= 1
    listed = json.loads(cli(rotated, "credentials", "list", "--json").stdout)["credentials"]
    assert {c["kid"] for c in listed} == {result["key_id"]}
    assert json.loads(cli(rotated, "credentials", "reseal", "--json").stdout)["resealed"] == 0
    # The old key can now go: the credential opens with the new key alone.
    only_new = load_settings({**env, "DATAPOST_MASTER_KEY": new})
    with Datapost.connect(only_new, redis_url) as client:
        cred = client.stores.vault.load("digime", user["user"])
        assert cred.access_token == user["access_token"]["value"]
