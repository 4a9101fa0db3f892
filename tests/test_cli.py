"""The `datapost` command as a person runs it: real processes, real output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATAPOST = [sys.executable, "-m", "producers.cli"]


def datapost(*args: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DATAPOST_")}
    return subprocess.run([*DATAPOST, *args], capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT, env={**clean, **(env or {})})


def test_demo_starts_embedded_redis_and_sandbox_and_stops_them(tmp_path: Path):
    done = datapost("demo", "--json", "--large-mib", "2", env={"DATAPOST_DATA_DIR": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["ok"] is True
    assert summary["redis"]["url"].startswith("redis://127.0.0.1:")
    assert summary["sandbox_checks"]["digime_keys"] >= 1
    assert summary["sandbox_checks"]["pda"].startswith("localhost:")
    received = summary["digime"]["received"]
    assert set(received) == {"note-0.txt", "note-1.txt", "note-2.txt", "steps.json", "large.bin"}
    assert received["large.bin"]["size"] == 2 << 20 and received["steps.json"]["mode"] == "import"
    assert all(r["status"] == "delivered" for r in received.values())
    assert all(j["delivery_status"] == "delivered" for j in summary["digime"]["jobs"].values())
    assert summary["dataswyft"]["records"] == 4 and summary["dataswyft"]["file"]
    assert "started an embedded Redis-compatible server" in done.stderr
    assert "[7/7]" in done.stderr and "Stopped the embedded Redis server" in done.stderr
    assert (tmp_path / "redis" / "appendonlydir").is_dir()
    assert not (tmp_path / "redis" / "embedded.json").exists()


def test_demo_human_output_shows_progress(tmp_path: Path):
    done = datapost("demo", "--large-mib", "1", env={"DATAPOST_DATA_DIR": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    for step in range(1, 8):
        assert f"[{step}/7]" in done.stdout
    assert "matches" in done.stdout and "succeeded" in done.stdout
    assert "Demo finished" in done.stdout


def test_bad_configuration_is_a_clear_error_not_a_traceback(tmp_path: Path):
    done = datapost("demo", env={"DATAPOST_MASTER_KEY": "too-short"})
    assert done.returncode == 2
    assert "configuration: DATAPOST_MASTER_KEY (environment): must be base64" in done.stderr
    assert "Traceback" not in done.stderr
    bad = tmp_path / "x.toml"
    bad.write_text("[digime]\nonboard_url = 'nope'\n")
    done = datapost("demo", env={"DATAPOST_CONFIG": str(bad)})
    assert done.returncode == 2 and "digime.onboard_url" in done.stderr


def test_sandbox_help_and_bad_flags():
    done = datapost("sandbox", "--help")
    assert done.returncode == 0 and "--auto-approve" in done.stdout
    done = datapost("sandbox", "--pda", "Not_Valid")
    assert done.returncode == 2 and "configuration error" in done.stderr
    done = datapost("sandbox", "--host", "0.0.0.0", "--port", "0")
    assert done.returncode == 1 and "loopback only" in done.stderr


def test_sandbox_prints_urls_as_json_then_serves(tmp_path: Path):
    proc = subprocess.Popen([*DATAPOST, "sandbox", "--json", "--pda", "carol",
                             "--data-dir", str(tmp_path)], stdout=subprocess.PIPE, text=True,
                            cwd=ROOT)
    try:
        urls = json.loads(proc.stdout.readline())
        assert set(urls) >= {"digime_api_url", "onboard_url", "control_url", "pdas"}
        assert urls["pdas"][0]["name"] == "carol"
        import httpx
        assert httpx.get(urls["pdas"][0]["url"] + "/publickey").status_code == 200
    finally:
        proc.terminate()
        proc.wait(10)
    assert proc.returncode == 0


def test_sandbox_human_output_names_every_url(tmp_path: Path):
    proc = subprocess.Popen([*DATAPOST, "sandbox", "--pda", "dave", "--data-dir", str(tmp_path)],
                            stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        lines = [proc.stdout.readline() for _ in range(6)]
    finally:
        proc.terminate()
        proc.wait(10)
    text = "".join(lines)
    for label in ("digi.me API", "onboarding page", "control API", "PDA dave"):
        assert label in text


def test_callback_command_serves_the_receiver(tmp_path: Path, redis_url):
    import base64
    import time

    import httpx

    from worker.redis_server import free_port

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATAPOST_")}
    env |= {"DATAPOST_REDIS_URL": redis_url, "DATAPOST_CALLBACK_PORT": str(port),
            "DATAPOST_MASTER_KEY": base64.b64encode(os.urandom(32)).decode(),
            "DATAPOST_DATA_DIR": str(tmp_path)}
    proc = subprocess.Popen([*DATAPOST, "callback"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "datapost callback did not start"
            time.sleep(0.1)
        expired = httpx.get(f"http://127.0.0.1:{port}/connect/{'A' * 43}")
        assert expired.status_code == 410 and "This link has expired" in expired.text
        assert httpx.get(f"http://127.0.0.1:{port}/nothing").status_code == 404
    finally:
        proc.terminate()
        out = proc.communicate(timeout=10)[0]
    assert f"register digime              http://127.0.0.1:{port}/digime/return" in out
