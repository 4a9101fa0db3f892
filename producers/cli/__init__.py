"""The `datapost` command line. Each subcommand lives in its own module."""

from .main import main

__all__ = ["main"]
