"""Human or JSON output for CLI commands, and progress lines for long operations."""

from __future__ import annotations

import json
import sys
from typing import Any, TextIO


class Output:
    """Human lines by default; with --json, progress goes to stderr and one JSON object to stdout."""

    def __init__(self, as_json: bool, out: TextIO | None = None, err: TextIO | None = None) -> None:
        self.as_json = as_json
        self.out = out or sys.stdout
        self.err = err or sys.stderr

    def say(self, text: str) -> None:
        print(text, file=self.err if self.as_json else self.out, flush=True)

    def progress(self, step: int, total: int, text: str, *, stderr: bool = False) -> None:
        """`[step/total] text`: with the other human lines, or always on stderr (so that
        stdout keeps only the result)."""
        if stderr:
            print(f"[{step}/{total}] {text}", file=self.err, flush=True)
        else:
            self.say(f"[{step}/{total}] {text}")

    def result(self, data: dict[str, Any], human: str | None = None) -> None:
        if self.as_json:
            print(json.dumps(data, default=str), file=self.out, flush=True)
        elif human:
            print(human, file=self.out, flush=True)

    def error(self, text: str) -> None:
        print(f"datapost: error: {text}", file=self.err, flush=True)
