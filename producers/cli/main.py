"""Entry point: parse the subcommand, read configuration once, dispatch."""

from __future__ import annotations

import argparse
import os
import sys

from worker.config import load_settings
from worker.errors import ConfigError, DatapostError
from worker.logging import configure_logging

from . import callback, credentials, demo, jobs, sandbox, stats, worker
from .output import Output

COMMANDS = (worker, callback, sandbox, demo, jobs, credentials, stats)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="datapost",
        description="Deliver queued writes into people's digi.me libraries and Dataswyft PDAs.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS:
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    if argv and argv[0] == "sandbox":  # passes its flags straight to the sandbox process
        return sandbox.run_passthrough(argv[1:])
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    out = Output(getattr(args, "json", False))
    try:
        settings = load_settings(os.environ)
        configure_logging(settings.log)
        return args.handler(args, settings, out)
    except ConfigError as exc:
        out.error(f"configuration: {exc}")
        return 2
    except DatapostError as exc:
        out.error(str(exc))
        return 1
    except KeyboardInterrupt:
        out.error("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
