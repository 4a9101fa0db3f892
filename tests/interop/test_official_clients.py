"""The platforms' official clients, unchanged, against the sandbox (`pytest -m interop`).

Runs `../shared/interop/run_interop.sh`: digi.me Node SDK 8.0.0 (postbox write) and 16.x
(pushData), and @dataswift/hat-js 0.5.0. The SDKs are public but not vendored: build them
outside this repository as README "Official clients" describes and point DIGIME_SDK_V8,
DIGIME_SDK_V16 and HATJS_DIR at them. Deselected by default; when asked for without the
clients it fails with what is missing rather than skipping.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUNNER = Path(os.environ.get("DATAPOST_INTEROP_DIR", ROOT.parent / "shared" / "interop")) / \
    "run_interop.sh"
NEEDED = ("DIGIME_SDK_V8", "DIGIME_SDK_V16", "HATJS_DIR")

pytestmark = pytest.mark.interop


def test_official_clients_pass_against_the_sandbox(sandbox_factory, tmp_path):
    missing = [name for name in NEEDED if not os.environ.get(name)]
    if missing or not RUNNER.exists():
        pytest.fail(f"interop needs {', '.join(missing) or 'nothing more'} set and {RUNNER} present")
    box = sandbox_factory("--auto-approve", "--pda", "interop")
    pda = box.pda("interop")
    env = {
        **os.environ,
        "DIGIME_API_URL": box.digime_api_url,
        "DIGIME_ONBOARD_URL": box.onboard_url,
        "DIGIME_CONTROL_URL": box.control_url,
        "PDA_URL": pda["url"],
        "PDA_CONTROL_URL": pda["url"] + "/_control",
        "INTEROP_OUT": str(tmp_path),
    }
    done = subprocess.run(["bash", str(RUNNER)], env=env, capture_output=True, text=True,
                          timeout=600)
    print(done.stdout)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 passed, 0 failed" in done.stdout
