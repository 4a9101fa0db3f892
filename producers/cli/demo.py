"""`datapost demo`: the whole system on this machine, with nothing installed but Python.

Today it starts the embedded Redis and the sandbox and shows that both answer; the
delivery issues extend it into the full enqueue -> deliver -> verify flow.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import httpx
import redis

from worker.config import Settings
from worker.redis_server import redis_for_cli

from .output import Output
from .sandbox_process import SandboxProcess

STEPS = 5


def register(sub) -> None:
    p = sub.add_parser("demo", help="run the whole flow locally against the sandbox")
    p.add_argument("--json", action="store_true", help="print one JSON summary object")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings, out: Output) -> int:
    summary: dict = {"ok": False}
    started = time.monotonic()
    with redis_for_cli(settings.redis_url, settings.data_dir, out.say) as url:
        out.progress(1, STEPS, f"Redis at {url}")
        summary["redis"] = check_redis(url, out)
        with tempfile.TemporaryDirectory(prefix="datapost-demo-") as tmp, \
                SandboxProcess("--pda", "demo-alice", data_dir=Path(tmp)) as sandbox:
            urls = sandbox.urls
            out.progress(2, STEPS, f"sandbox started: digi.me API {urls['digime_api_url']}")
            summary["sandbox"] = urls
            with httpx.Client(timeout=10) as http:
                summary["digime"] = check_digime(http, urls, out)
                summary["pda"] = check_pda(http, urls["pdas"][0], out)
                summary["control"] = check_control(http, urls, out)
    summary["ok"] = True
    summary["seconds"] = round(time.monotonic() - started, 2)
    out.result(summary, human=f"Demo finished in {summary['seconds']} s: Redis and the sandbox "
                              "answer. Run `datapost sandbox` to keep the sandbox running.")
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


def check_digime(http: httpx.Client, urls: dict, out: Output) -> dict:
    jwks = http.get(urls["digime_api_url"] + "jwks/oauth").raise_for_status().json()
    key = jwks["keys"][0]
    out.progress(3, STEPS, f"digi.me JWKS: {len(jwks['keys'])} key(s), kid {key['kid']}, "
                           f"alg {key.get('alg', '?')}")
    return {"keys": len(jwks["keys"]), "kid": key["kid"]}


def check_pda(http: httpx.Client, pda: dict, out: Output) -> dict:
    resp = http.get(pda["url"] + "/publickey").raise_for_status()
    out.progress(4, STEPS, f"PDA {pda['name']} at {pda['url']}: /publickey answers "
                           f"({resp.headers['content-type'].split(';')[0]})")
    return {"domain": pda["domain"], "publickey_bytes": len(resp.content)}


def check_control(http: httpx.Client, urls: dict, out: Output) -> dict:
    clock = http.get(urls["control_url"] + "/clock").raise_for_status().json()
    seen = http.get(urls["control_url"] + "/requests").raise_for_status().json()["requests"]
    out.progress(5, STEPS, f"control API: clock offset {clock['offset_seconds']} s, "
                           f"{len(seen)} requests logged so far")
    return {"requests_logged": len(seen)}
