"""`datapost callback`: run the sign-in callback receiver (starlette on uvicorn)."""

from __future__ import annotations

import argparse
import dataclasses

import uvicorn

from worker.config import Settings
from worker.redis_server import redis_for_cli

from ..callback import create_app
from ..client import Datapost
from ..signin import redirect_uris
from .output import Output


def register(sub) -> None:
    p = sub.add_parser("callback", help="run the sign-in callback receiver")
    p.add_argument("--host", help="listen address (default DATAPOST_CALLBACK_HOST, 127.0.0.1)")
    p.add_argument("--port", type=int, help="listen port (default DATAPOST_CALLBACK_PORT, 8787)")
    p.add_argument("--json", action="store_true", help="print the start-up details as JSON")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings, out: Output) -> int:
    host = args.host or settings.callback.host
    port = settings.callback.port if args.port is None else args.port
    if not 0 <= port <= 65535:
        out.error("--port must be from 0 to 65535")
        return 2
    if not settings.callback.public_url:
        public = f"http://{host}:{port}/"
        settings = dataclasses.replace(
            settings, callback=dataclasses.replace(settings.callback, public_url=public))
        out.say(f"DATAPOST_CALLBACK_URL is not set; using {public} (set it to the public URL)")
    with redis_for_cli(settings.redis_url, settings.data_dir, out.say) as url, \
            Datapost.connect(settings, url) as datapost:
        uris = redirect_uris(settings)
        out.result({"listen": f"{host}:{port}", "redirect_uris": uris},
                   human="Sign-in callback receiver\n" + "\n".join(
                       f"  register {name:<19} {uri}" for name, uri in uris.items()))
        uvicorn.run(create_app(datapost), host=host, port=port, log_level="warning",
                    access_log=False, proxy_headers=True)
    return 0
