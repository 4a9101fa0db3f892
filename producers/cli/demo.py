"""`datapost demo`: the whole flow on this machine, with nothing installed but Python.

Starts the embedded Redis (unless DATAPOST_REDIS_URL is set), the sandbox and the callback
receiver, registers a digi.me contract and a Dataswyft app, signs two users in through the
sandbox's pages (auto-approving, followed like a browser), enqueues every write in one round
trip (digi.me files, one large; PDA records, a batch and a file), runs a worker, and
checks that what each platform received equals what was enqueued.
"""

from __future__ import annotations

import argparse
import logging
import secrets
import tempfile
import time
from pathlib import Path

import httpx
import redis

from worker.config import Settings
from worker.redis_server import free_port, redis_for_cli

from ..callback import create_app, serve_in_thread
from ..client import Datapost
from ..dataswyft import PdaBatchWrite, PdaRecordWrite
from ..digime import DigimeWrite
from ..signin import redirect_uris
from .demo_dataswyft import NAMESPACE, pda_writes, verify_pda
from .demo_digime import APP_ID, demo_settings, digime_writes, verify_digime
from .demo_signin import register_pda_app, sign_in
from .demo_worker import run_until_done
from .output import Output
from .sandbox_process import SandboxProcess

STEPS = 7


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
        for name in ("dramatiq", "datapost.delivery", "datapost.tokens", "datapost.callback"):
            logging.getLogger(name).setLevel(logging.WARNING)
    summary: dict = {"ok": False}
    started = time.monotonic()
    with redis_for_cli(settings.redis_url, settings.data_dir, out.say) as url:
        out.progress(1, STEPS, f"Redis at {url}")
        summary["redis"] = check_redis(url, out)
        with tempfile.TemporaryDirectory(prefix="datapost-demo-") as tmp, \
                SandboxProcess("--pda", "demo-alice", "--auto-approve",
                               data_dir=Path(tmp) / "sandbox") as sandbox:
            urls = sandbox.urls
            summary["sandbox"] = urls
            summary["sandbox_checks"] = check_sandbox(urls, out)
            summary |= deliver_everything(settings, url, urls, Path(tmp), out, args.large_mib)
    summary["ok"] = True
    summary["seconds"] = round(time.monotonic() - started, 2)
    out.result(summary, human=f"Demo finished in {summary['seconds']} s: every write was "
                              "delivered and verified. `datapost sandbox` keeps a sandbox running.")
    return 0


def deliver_everything(settings: Settings, redis_url: str, urls: dict, workdir: Path,
                       out: Output, large_mib: int) -> dict:
    receiver = f"http://127.0.0.1:{free_port()}/"
    settings = demo_settings(settings, urls, workdir, receiver)
    pda = urls["pdas"][0]
    uris = redirect_uris(settings)
    register_pda_app(pda, APP_ID, NAMESPACE, [uris["dataswyft"], uris["dataswyft_fallback"]])
    port = int(receiver.rsplit(":", 1)[1].rstrip("/"))
    run = secrets.token_hex(3)  # fresh users each run (the embedded Redis keeps old ones)
    digime_name, pda_name = f"demo-user-{run}", f"demo-pda-user-{run}"
    with Datapost.connect(settings, redis_url) as datapost, \
            serve_in_thread(create_app(datapost), "127.0.0.1", port):
        sign_in(datapost, datapost.digime_connect_link(digime_name), "digi.me", out)
        sign_in(datapost, datapost.dataswyft_connect_link(pda_name, pda["domain"]),
                "Dataswyft PDA", out)
        digime_user = datapost.stores.vault.load("digime", digime_name)
        out.progress(3, STEPS, "both users connected through the sign-in pages (credentials "
                               f"sealed with AES-256-GCM): digi.me postbox "
                               f"{digime_user.postbox_id}, PDA {pda['domain']}")
        digime, expected_digime = digime_writes(digime_name, workdir, large_mib, out)
        pda_jobs, expected_pda = pda_writes(pda_name)
        writes = [*digime, *pda_jobs]
        ids = datapost.enqueue_many(writes)
        out.progress(4, STEPS, f"enqueued {len(ids)} writes in one pipelined round trip: "
                               "3 postbox notes, 1 import, 1 large postbox file; 2 PDA record "
                               "writes, 1 batch, 1 PDA file")
        names = {job_id: label(w, i) for i, (job_id, w) in enumerate(zip(ids, writes, strict=True))}
        results = run_until_done(settings, redis_url, datapost, ids, names, out)
    out.progress(5, STEPS, "every job reached 'succeeded'")
    received = verify_digime(urls, digime_user.digime_user_id, expected_digime, out)
    out.progress(6, STEPS, f"digi.me: the sandbox decrypted {len(received)} files; each equals "
                           "what was enqueued")
    pda_summary = verify_pda(pda, expected_pda, out)
    out.progress(7, STEPS, f"Dataswyft: the PDA holds {pda_summary['records']} records and the "
                           "file, each equal to what was enqueued")
    return {"digime": {"jobs": {n: results[n] for n in expected_digime}, "received": received},
            "dataswyft": pda_summary}


def label(write, index: int) -> str:
    """A short unique name for the progress lines."""
    if isinstance(write, DigimeWrite):
        return write.file_name
    if isinstance(write, PdaRecordWrite):
        return f"pda record #{index}"
    if isinstance(write, PdaBatchWrite):
        return f"pda batch #{index}"
    return f"pda file {write.name}"


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
