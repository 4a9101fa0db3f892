"""Peer client: CPU per write of the digi.me Node SDK 8.x `write` against datapost's worker.

One sandbox, one run. datapost: the digi.me throughput pipeline (N writes of --size bytes
bulk-enqueued into `datapost worker` P x T; worker CPU per delivered job). The SDK: its own
`write` (8.x, the encrypted postbox write) N times in one Node process
(`bench/peer_sdk_write.js`, --sdk-concurrency writes in flight) for one user whose credential
the sandbox minted; CPU per write is the process's own `process.cpuUsage()` over the measured
writes (start-up and --warmup writes excluded), cross-checked with psutil. The SDK's writes
run in two halves, before and after the datapost run, so a drift in machine load hits both
sides alike; the workers are stopped before the second half. Both sides' deliveries are
checked at the sandbox. Target: datapost uses less CPU per write.

The SDK is public but not part of this repository: build it outside (see BENCHMARKS.md) and
set DIGIME_SDK_V8 to the built folder. Without it (or without `node`) the run is skipped.

    DIGIME_SDK_V8=/opt/interop/digime-v8 python -m bench.peer_sdk [--writes 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import psutil

from producers import Datapost

from .digime_throughput import crypto_cost
from .harness import ROOT, bench_env, cpu_seconds, emit, machine, run_pipeline, small_writes, tree

DRIVER = ROOT / "bench" / "peer_sdk_write.js"
SDK_CLIENT_ID = ("bench", "peer-sdk")
BUILD_HINT = """\
Build the digi.me Node SDK 8.0.0 outside this repository and point DIGIME_SDK_V8 at it:
    git clone https://github.com/digime/digime-sdk-nodejs /opt/interop/digime-v8
    cd /opt/interop/digime-v8 && git checkout v8.0.0 && npm ci && npm run build
    DIGIME_SDK_V8=/opt/interop/digime-v8 python -m bench.peer_sdk"""


def missing_sdk() -> str | None:
    """Why the SDK side cannot run, or None when it can."""
    folder = os.environ.get("DIGIME_SDK_V8")
    if not folder:
        return "DIGIME_SDK_V8 is not set (it must name a built digi.me Node SDK 8.x folder)"
    sdk = Path(folder)
    if not (sdk / "package.json").is_file() or not (sdk / "dist" / "main" / "index.js").is_file():
        return (f"DIGIME_SDK_V8={folder} does not contain a built SDK "
                "(package.json and dist/main/index.js expected: run npm ci && npm run build there)")
    try:
        version = json.loads((sdk / "package.json").read_text())["version"]
    except (OSError, ValueError, KeyError):
        return f"DIGIME_SDK_V8={folder}: package.json has no version"
    if not version.startswith("8."):
        return f"DIGIME_SDK_V8={folder} holds SDK {version}; the postbox write needs the 8.x line"
    if not (sdk / "node_modules").is_dir():
        return f"DIGIME_SDK_V8={folder} has no node_modules (run npm ci there)"
    if shutil.which("node") is None:
        return "node is not on PATH (the SDK side needs Node.js >= 14)"
    return None


def skip(reason: str) -> None:
    print(f"peer_sdk: skipped: {reason}\n{BUILD_HINT}", file=sys.stderr)
    emit({"benchmark": "peer_sdk", "skipped": reason})


def register_sdk_contract(bench) -> tuple[str, Path]:
    """A second contract for the SDK, so the sandbox counts its deliveries apart."""
    return bench.register_contract(*SDK_CLIENT_ID, "peer-sdk-contract.pem")


class SdkDriver:
    """`bench/peer_sdk_write.js` in one Node process for one sandbox user; `part(k)` runs the
    next k writes of the measured series and returns the driver's own reading plus psutil's
    of the node process and the sandbox over that part."""

    def __init__(self, bench, writes: int, size: int, concurrency: int, warmup: int) -> None:
        self.bench = bench
        self.client_id, key_file = register_sdk_contract(bench)
        minted = bench.control("POST", "/tokens", json={"client_id": self.client_id,
                                                        "access_ttl": 86400})
        config = bench.workdir / "peer-sdk.json"
        config.write_text(json.dumps({
            "applicationId": SDK_CLIENT_ID[0], "contractId": SDK_CLIENT_ID[1],
            "privateKeyFile": str(key_file), "baseUrl": bench.urls["digime_api_url"],
            "onboardUrl": bench.urls["onboard_url"], "accessToken": minted["access_token"],
            "refreshToken": minted["refresh_token"], "postboxId": minted["postbox_id"],
            "publicKey": minted["public_key"], "writes": writes, "size": size,
            "concurrency": concurrency, "warmup": warmup,
        }))
        self.proc = subprocess.Popen(["node", str(DRIVER), str(config)], cwd=ROOT,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.ready = self.event("ready")
        self.node = psutil.Process(self.proc.pid)
        print(f"SDK {self.ready['sdkVersion']} on node {self.ready['node']}: warm-up "
              f"{self.ready['warmupStatuses']}; {writes} writes, {concurrency} in flight",
              file=sys.stderr)

    def event(self, want: str) -> dict:
        for line in self.proc.stdout:
            line = line.strip()
            if not line.startswith("{"):
                print(f"node: {line}", file=sys.stderr)
                continue
            event = json.loads(line)
            if event.get("event") == "error":
                raise RuntimeError(f"SDK driver failed: {event['error']}")
            if event.get("event") == want:
                return event
        raise RuntimeError(f"SDK driver exited ({self.proc.wait()}) before '{want}'")

    def part(self, writes: int) -> dict:
        sandbox = tree(self.bench.sandbox)
        node0, sandbox0 = cpu_seconds([self.node]), cpu_seconds(sandbox)
        self.proc.stdin.write(f"go {writes}\n")
        self.proc.stdin.flush()
        done = self.event("done")
        done["psutil_cpu"] = cpu_seconds([self.node]) - node0
        done["sandbox_cpu"] = cpu_seconds(sandbox) - sandbox0
        print(f"SDK: {writes} writes in {done['wallMs'] / 1000:.1f} s", file=sys.stderr)
        return done

    def close(self) -> None:
        if self.proc.stdin and not self.proc.stdin.closed:
            self.proc.stdin.close()
        try:
            code = self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
        if code != 0:
            raise RuntimeError(f"SDK driver exited {code}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--writes", type=int, default=1000, help="writes on each side")
    p.add_argument("--size", type=int, default=1024, help="bytes per write")
    p.add_argument("--processes", type=int, default=1, help="datapost worker processes")
    p.add_argument("--threads", type=int, default=4, help="datapost worker threads per process")
    p.add_argument("--users", type=int, default=1, help="datapost users (the SDK side has one)")
    p.add_argument("--sdk-concurrency", type=int, default=4, help="SDK writes in flight")
    p.add_argument("--warmup", type=int, default=20, help="SDK writes before the measured ones")
    args = p.parse_args()
    reason = missing_sdk()
    if reason:
        skip(reason)
        return
    first = args.writes // 2
    with bench_env() as bench:
        sdk = SdkDriver(bench, args.writes, args.size, args.sdk_concurrency, args.warmup)
        try:
            # SDK half, datapost, SDK half: a drift in machine load hits both sides alike
            parts = [sdk.part(first)]
            with Datapost.connect(bench.settings(), bench.redis.url) as datapost:
                users = bench.mint_users(datapost, args.users)
                writes = small_writes(users, args.writes, args.size)
                print(f"datapost: {args.writes} writes, worker {args.processes} x {args.threads}",
                      file=sys.stderr)
                run = run_pipeline(bench, datapost, writes, args.processes, args.threads)
            for worker in bench.workers:  # no idle pollers while the SDK runs
                worker.terminate()
                worker.wait(60)
            parts.append(sdk.part(args.writes - first))
        finally:
            sdk.close()
        dp_stats = bench.control("GET", "/stats", params={"client_id": "bench_bench-contract"})
        sdk_stats = bench.control("GET", "/stats", params={"client_id": sdk.client_id})
        rows = bench.control("GET", "/deliveries", params={"client_id": sdk.client_id,
                                                           "status": "delivered"})["deliveries"]
    crypto = crypto_cost()
    delivered = {r["sha256"] for r in rows}
    loop_delivered = sum(h in delivered for part in parts for h in part["sha256"])
    statuses = Counter()
    for part in parts:
        statuses.update(part["statuses"])
    n = args.writes
    user_us = sum(part["cpuUserUs"] for part in parts)
    system_us = sum(part["cpuSystemUs"] for part in parts)
    wall = sum(part["wallMs"] for part in parts) / 1000
    dp_ms = run["worker_cpu"] / n * 1000
    sdk_ms = (user_us + system_us) / 1000 / n
    emit({
        "benchmark": "peer_sdk", "machine": machine(), "writes": n, "bytes_per_write": args.size,
        "datapost": {
            "processes": args.processes, "threads": args.threads, "users": args.users,
            "seconds": round(run["seconds"], 3), "jobs_per_second": round(n / run["seconds"], 1),
            "worker_cpu_ms_per_job": round(dp_ms, 3),
            "sandbox_cpu_ms_per_job": round(run["sandbox_cpu"] / n * 1000, 3),
            "states": run["states"], "sandbox_delivered": dp_stats["delivered"],
        },
        "sdk": {
            "version": sdk.ready["sdkVersion"], "node": sdk.ready["node"],
            "concurrency": args.sdk_concurrency, "warmup_writes": args.warmup,
            "parts": [part["writes"] for part in parts],
            "seconds": round(wall, 3), "writes_per_second": round(n / wall, 1),
            "cpu_ms_per_write": round(sdk_ms, 3),
            "cpu_ms_per_write_by_part": [
                round((part["cpuUserUs"] + part["cpuSystemUs"]) / 1000 / part["writes"], 3)
                for part in parts],
            "cpu_user_ms_per_write": round(user_us / 1000 / n, 3),
            "cpu_system_ms_per_write": round(system_us / 1000 / n, 3),
            "psutil_cpu_ms_per_write": round(sum(p["psutil_cpu"] for p in parts) / n * 1000, 3),
            "sandbox_cpu_ms_per_write": round(sum(p["sandbox_cpu"] for p in parts) / n * 1000, 3),
            "statuses": dict(statuses), "refreshed": sum(part["refreshed"] for part in parts),
            "loop_writes_delivered": loop_delivered,
            "sandbox_delivered": sdk_stats["delivered"], "sandbox_pending": sdk_stats["pending"],
            "rss_mib": round(parts[-1]["rssMiB"], 1),
        },
        # the job's own RSA work (one PS512 signature + one OAEP wrap) in Python on one core,
        # timed in the same run: it shows how slow the machine was, not who wins
        "crypto_ms_per_write": round(crypto * 1000, 3),
        "datapost_over_sdk": round(dp_ms / sdk_ms, 3),
        "target_met": dp_ms < sdk_ms,
        "all_delivered": (run["states"].get("succeeded") == n and dp_stats["delivered"] == n
                          and loop_delivered == n and statuses["delivered"] == n
                          and sdk_stats["delivered"] == n + args.warmup),
    })


if __name__ == "__main__":
    main()
