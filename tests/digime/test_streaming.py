"""Large writes stream: a 100 MiB postbox write (and import push) from a subprocess keeps its
peak RSS well below the payload size, and the sandbox's sha256 of what it received matches."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from .conftest import sandbox_settings

ROOT = Path(__file__).resolve().parents[2]
MiB = 1024 * 1024

SCRIPT = textwrap.dedent("""
    import hashlib, json, resource, sys
    from pathlib import Path
    from worker.config import DigimeSettings
    from worker.digime import BytesPayload, DigimeClient, KeyCache, TokenVerifier, build_http_client

    cfg = json.loads(sys.argv[1])
    settings = DigimeSettings(api_url=cfg["api_url"], application_id=cfg["app"],
                              contract_id=cfg["contract"], private_key_file=Path(cfg["key_file"]))

    class Synthetic:
        '''size bytes in 1 MiB blocks made on the fly: never all in memory.'''
        def __init__(self, size):
            self.size = size
        def chunks(self):
            left, i = self.size, 0
            while left:
                block = (hashlib.sha256(i.to_bytes(8, "big")).digest() * 32768)[:left]
                left -= len(block)
                i += 1
                yield block

    def digest(payload):
        h = hashlib.sha256()
        for chunk in payload.chunks():
            h.update(chunk)
        return h.hexdigest()

    def write(client, payload):
        descriptor = {"mimeType": "application/octet-stream", "accounts": [{"accountId": "a"}]}
        if cfg["mode"] == "postbox":
            return client.write_postbox(access_token=cfg["token"], postbox_id=cfg["postbox_id"],
                                        public_key_pem=cfg["public_key"], file_name="big.bin",
                                        descriptor=descriptor, payload=payload).status
        client.push_import(access_token=cfg["token"], descriptor=descriptor, payload=payload)
        return "delivered"

    with build_http_client() as http:
        client = DigimeClient(settings, KeyCache().get(settings), http,
                              TokenVerifier(http, settings.api_url))
        write(client, BytesPayload(b"warm-up"))
        big = Synthetic(cfg["size"])
        expected = digest(big)
        baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        status = write(client, big)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"status": status, "sha256": expected, "baseline_kib": baseline,
                      "peak_kib": peak}))
""")


def _run(cfg: dict) -> dict:
    proc = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(cfg)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _stream(sandbox, digime_settings, mint, deliveries, last_delivery_id, mode, size):
    cred = mint()
    since = last_delivery_id()
    out = _run({"api_url": digime_settings.api_url, "app": digime_settings.application_id,
                "contract": digime_settings.contract_id,
                "key_file": str(digime_settings.private_key_file), "mode": mode, "size": size,
                "token": cred["access_token"]["value"], "postbox_id": cred["postbox_id"],
                "public_key": cred["public_key"]})
    assert out["status"] == "delivered"
    rows = deliveries(since)
    assert len(rows) == 2  # warm-up and the big one
    assert rows[-1]["size"] == size and rows[-1]["sha256"] == out["sha256"]
    return (out["peak_kib"] - out["baseline_kib"]) / 1024


@pytest.mark.parametrize("mode", ["postbox", "import"])
def test_100_mib_write_is_streamed(sandbox, digime_settings, mint, deliveries, last_delivery_id, mode):
    with sandbox_settings(sandbox, keep_content=False):
        grown = _stream(sandbox, digime_settings, mint, deliveries, last_delivery_id, mode, 100 * MiB)
    assert grown < 80, f"peak RSS grew by {grown:.1f} MiB during a 100 MiB {mode} write"


@pytest.mark.slow
def test_1_gib_postbox_write_is_streamed(sandbox, digime_settings, mint, deliveries, last_delivery_id):
    with sandbox_settings(sandbox, keep_content=False):
        grown = _stream(sandbox, digime_settings, mint, deliveries, last_delivery_id, "postbox",
                        1024 * MiB)
    assert grown < 80, f"peak RSS grew by {grown:.1f} MiB during a 1 GiB write"
