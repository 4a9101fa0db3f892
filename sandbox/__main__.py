"""`python -m sandbox` / `datapost sandbox`: run the local digi.me and Dataswyft stand-ins."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from .config import SandboxConfigError, load_config, parse_pda


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="datapost sandbox",
        description="Run local stand-ins for the digi.me API and Dataswyft PDAs (loopback only).")
    p.add_argument("--config", type=Path, help="TOML file with contracts, apps, PDAs and settings")
    p.add_argument("--host", help="listen address (loopback only; default 127.0.0.1)")
    p.add_argument("--port", type=int, help="main port for the digi.me API and control (0 = free port)")
    p.add_argument("--pda", action="append", default=[], metavar="NAME[:PORT]",
                   help="start a PDA (repeatable); its domain is localhost:<port>")
    p.add_argument("--auto-approve", action="store_true",
                   help="onboarding and PDA login pages redirect at once, as if the person approved")
    p.add_argument("--access-token-ttl", type=int, help="digi.me access-token lifetime in seconds")
    p.add_argument("--data-dir", type=Path, help="where received files are kept (default: a temp dir)")
    p.add_argument("--seed", type=int, help="random seed for probabilistic faults")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object with every URL, then keep serving")
    return p


def configure(args: argparse.Namespace):
    config = load_config(args.config)
    s = config.settings
    if args.host:
        s.host = args.host
    if args.port is not None:
        if not 0 <= args.port <= 65535:
            raise SandboxConfigError("--port must be from 0 to 65535")
        s.port = args.port
    if args.auto_approve:
        s.auto_approve = True
    if args.access_token_ttl is not None:
        if args.access_token_ttl < 1:
            raise SandboxConfigError("--access-token-ttl must be at least 1 second")
        s.access_token_ttl = args.access_token_ttl
    if args.data_dir:
        s.data_dir = args.data_dir
    if args.seed is not None:
        s.seed = args.seed
    config.pdas += [parse_pda(v, f"--pda {v}") for v in args.pda]
    names = [p.name for p in config.pdas]
    if len(names) != len(set(names)):
        raise SandboxConfigError("PDA names must be unique")
    return config


def describe(urls: dict) -> str:
    lines = [
        "datapost sandbox is running (Ctrl-C to stop)",
        f"  digi.me API      {urls['digime_api_url']}",
        f"  onboarding page  {urls['onboard_url']}",
        f"  control API      {urls['control_url']}",
        f"  auto-approve     {'on' if urls['auto_approve'] else 'off'}",
    ]
    for pda in urls["pdas"]:
        lines.append(f"  PDA {pda['name']:<12} {pda['url']}  (domain {pda['domain']})")
    if not urls["pdas"]:
        lines.append("  no PDAs yet: pass --pda NAME, or POST {control}/pdas {\"name\": ...}")
    return "\n".join(lines)


async def run(config, as_json: bool) -> None:
    from .server import SandboxServer

    server = SandboxServer(config)
    await server.start()
    urls = server.urls()
    print(json.dumps(urls) if as_json else describe(urls), flush=True)
    await server.serve()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = configure(args)
    except SandboxConfigError as exc:
        print(f"datapost sandbox: configuration error: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(run(config, args.json))
    except KeyboardInterrupt:
        pass
    except (OSError, ValueError) as exc:
        print(f"datapost sandbox: cannot start: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
