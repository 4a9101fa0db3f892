"""The sandbox's shared state: one clock, one fault table, one request log, both platforms."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .clock import Clock
from .faults import FaultInjector
from .requestlog import RequestLog


@dataclass
class SandboxSettings:
    """Settings fixed at start (flags or TOML); some can be changed through the control API."""

    host: str = "127.0.0.1"
    port: int = 0
    auto_approve: bool = False
    access_token_ttl: int = 3600
    refresh_token_ttl: int = 30 * 86400
    timestamp_window: int = 300
    data_dir: Path | None = None
    keep_content: bool = True
    seed: int | None = None


@dataclass
class World:
    """Everything the sandbox knows. Platform states are attached by `sandbox.server`."""

    settings: SandboxSettings
    clock: Clock = field(default_factory=Clock)
    faults: FaultInjector = field(default_factory=FaultInjector)
    requests: RequestLog = field(default_factory=RequestLog)
    digime: Any = None
    dataswyft: Any = None
