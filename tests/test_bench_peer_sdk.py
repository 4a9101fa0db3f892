"""bench.peer_sdk without a built SDK: a clear skip, never a failure (the SDK is not vendored)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_peer_sdk(sdk_dir: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "DIGIME_SDK_V8"}
    if sdk_dir is not None:
        env["DIGIME_SDK_V8"] = sdk_dir
    return subprocess.run([sys.executable, "-m", "bench.peer_sdk", "--writes", "10"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=60)


def test_skips_when_the_sdk_folder_holds_no_built_sdk(tmp_path):
    done = run_peer_sdk(str(tmp_path))
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["benchmark"] == "peer_sdk"
    assert "DIGIME_SDK_V8" in result["skipped"]
    assert str(tmp_path) in result["skipped"]
    assert "DIGIME_SDK_V8" in done.stderr and "npm run build" in done.stderr


def test_skips_when_digime_sdk_v8_is_unset():
    done = run_peer_sdk(None)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"benchmark": "peer_sdk", "skipped": result["skipped"]}
    assert "DIGIME_SDK_V8 is not set" in result["skipped"]
