"""`datapost demo`: the whole flow on this machine, with nothing installed but Python.

Starts the embedded Redis (unless DATAPOST_REDIS_URL is set) and the sandbox, registers a
digi.me contract, stores a user's credential, enqueues writes (one large), runs a worker,
and checks that what the sandbox decrypted equals what was enqueued.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import httpx
import redis

from worker.config import Settings
from worker.redis_server import redis_for_cli

from .demo_digime import run_digime
from .output import Output
from .sandbox_process import SandboxProcess

STEPS = 6


def register(sub) -> None:
    p = sub.add_parser("demo", help="run the whole flow locally against the sandbox")
    p.add_argument("--large-mib", type=int, default=64,
                   help="size of the large file sent through the postbox (default 64)")
    p.add_argument("--json", action="store_true", help="print one JSON summary object")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings, out: Output) -> int:
    if not 1 <= args.large_mib <= 4096:
        out.error("--large-mib must be from 1 to 4096")
        return 2
    if settings.log.level != "debug":  # the demo's own lines tell the story
        for name in ("dramatiq", "datapost.delivery", "datapost.tokens"):
            logging.getLogger(name).setLevel(logging.WARNING)
    summary: dict = {"ok": False}
    started = time.monotonic()
    with redis_for_cli(settings.redis_url, settings.data_dir, out.say) as url:
        out.progress(1, STEPS, f"Redis at {url}")
        summary["redis"] = check_redis(url, out)
        with tempfile.TemporaryDirectory(prefix="datapost-demo-") as tmp, \
                SandboxProcess("--pda", "demo-alice", data_dir=Path(tmp) / "sandbox") as sandbox:
            urls = sandbox.urls
            summary["sandbox"] = urls
            summary["sandbox_checks"] = check_sandbox(urls, out)
            summary["digime"] = run_digime(settings, url, urls, Path(tmp), out, 3, STEPS,
                                           args.large_mib)
    summary["ok"] = True
    summary["seconds"] = round(time.monotonic() - started, 2)
    out.result(summary, human=f"Demo finished in {summary['seconds']} s: every write was "
                              "delivered and verified. `datapost sandbox` keeps a sandbox running.")
    return 0


def check_redis(url: str, out: Output) -> dict:
    client = redis.Redis.from_url(url)
    try:
        info = client.info("server")
        client.ping()
    finally:
        client.close()
    version = info.get("valkey_version") or info.get("redis_version")
    out.say(f"      PING ok ({'valkey' if 'valkey_version' in info else 'redis'} {version})")
    return {"url": url, "version": version}


def check_sandbox(urls: dict, out: Output) -> dict:
    with httpx.Client(timeout=10) as http:
        jwks = http.get(urls["digime_api_url"] + "jwks/oauth").raise_for_status().json()
        pda = urls["pdas"][0]
        http.get(pda["url"] + "/publickey").raise_for_status()
    out.progress(2, STEPS, f"sandbox: digi.me API {urls['digime_api_url']} ({len(jwks['keys'])} "
                           f"signing key), PDA {pda['name']} at {pda['url']}")
    return {"digime_keys": len(jwks["keys"]), "pda": pda["domain"]}
