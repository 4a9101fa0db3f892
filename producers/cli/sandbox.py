"""`datapost sandbox`: run the local digi.me and Dataswyft stand-ins in this terminal."""

from __future__ import annotations

import os
import sys


def register(sub) -> None:
    p = sub.add_parser("sandbox", add_help=False,
                       help="run local stand-ins for the digi.me API and Dataswyft PDAs "
                            "(see `datapost sandbox --help`)")
    p.set_defaults(handler=None)


def run_passthrough(args: list[str]) -> int:
    """Replace this process with `python -m sandbox`, so signals and output are the sandbox's."""
    os.execv(sys.executable, [sys.executable, "-m", "sandbox", *args])
    return 0  # pragma: no cover - execv does not return
