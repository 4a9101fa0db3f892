"""A small chaos run (`python -m bench.chaos`) as a slow test: faults on every platform
request, a worker SIGKILL and a Redis restart, then the audit must find nothing lost, every
job in its expected state, and every duplicate explained. Run with `pytest -m slow`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_small_chaos_run_loses_nothing(tmp_path):
    run = subprocess.run(
        [sys.executable, "-m", "bench.chaos", "--jobs", "500", "--kills", "2",
         "--redis-restarts", "1", "--rate", "200", "--seed", "7", "--timeout", "1200",
         "--logs", str(tmp_path / "logs")],
        cwd=ROOT, capture_output=True, text=True, timeout=1400)
    summary = json.loads(run.stdout.strip().splitlines()[-1])
    assert summary["enqueued"] == 500 and not summary["not_enqueued"]
    assert summary["lost"] == 0, summary["lost_jobs"]
    assert summary["wrong_state"] == 0, summary["wrong_state_jobs"]
    assert summary["received_equals_enqueued"]
    assert summary["duplicates"]["unexplained"] == 0, summary["duplicates"]
    assert [e["kind"] for e in summary["disruptions"]].count("kill") == 2
    assert sum(r["fired"] for r in summary["faults_fired"]) > 0
    assert summary["ok"] and run.returncode == 0
