"""Structured logging with redaction that runs on every line, whatever the key name.

JSON lines in production, readable console output in development. The stdlib loggers
(uvicorn, dramatiq, httpx) go through the same processors, so nothing bypasses redaction.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable
from typing import Any

import structlog

from .config import LogSettings

REDACTED = "[REDACTED]"
NOISY_LOGGERS = ("httpx", "httpcore", "urllib3", "pika")

SECRET_KEY_NAME = re.compile(
    r"(token|secret|passw|pwd|private|api[_-]?key|master[_-]?key|^key$|_key$|authorization"
    r"|cookie|credential|signature|verifier|jwt|pem|symmetrical|nonce|^code$|_code$|payload)",
    re.IGNORECASE,
)
# Keys that look secret-ish by name but carry only harmless metadata.
SAFE_KEY_NAMES = {"error_code", "provider_code", "status_code", "key_id", "token_type", "payload_size",
                  "payload_bytes", "exit_code", "country_code"}

PEM_BLOCK = re.compile(r"-----BEGIN [A-Z0-9 ]+-----.*?(?:-----END [A-Z0-9 ]+-----|$)", re.DOTALL)
JWT_SHAPE = re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}")
URL_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s:@]+:[^/\s@]+@")
QUERY_SECRET = re.compile(
    r"(?i)([?&](?:token|access_token|refresh_token|code|code_verifier|password|x-auth-token"
    r"|signature|x-amz-signature|publickey)=)[^&\s\"']+")


class Redactor:
    """Removes secrets from log events: by key name, by value shape, and known values."""

    def __init__(self, known: Iterable[str] = ()) -> None:
        self._known: set[str] = {k for k in known if len(k) >= 8}

    def remember(self, secret: str | bytes) -> None:
        """Also scrub this exact value wherever it appears (opaque tokens have no shape)."""
        text = secret.decode("utf-8", "replace") if isinstance(secret, bytes) else secret
        if len(text) >= 8:
            self._known.add(text)

    def scrub_text(self, text: str) -> str:
        text = PEM_BLOCK.sub("[REDACTED PEM]", text)
        text = JWT_SHAPE.sub("[REDACTED JWT]", text)
        text = BEARER.sub(r"\1 [REDACTED]", text)
        text = URL_CREDENTIALS.sub(r"\1***:***@", text)
        text = QUERY_SECRET.sub(r"\1[REDACTED]", text)
        for value in self._known:
            if value in text:
                text = text.replace(value, REDACTED)
        return text

    def scrub(self, value: Any, key: str | None = None) -> Any:
        if key is not None and key not in SAFE_KEY_NAMES and SECRET_KEY_NAME.search(key):
            return value if value is None or isinstance(value, bool) else REDACTED
        if isinstance(value, str):
            return self.scrub_text(value)
        if isinstance(value, bytes):
            return f"<{len(value)} bytes>"
        if isinstance(value, dict):
            return {k: self.scrub(v, str(k)) for k, v in value.items()}
        if isinstance(value, list | tuple | set):
            return [self.scrub(v) for v in value]
        if isinstance(value, int | float | bool) or value is None:
            return value
        return self.scrub_text(repr(value))

    def __call__(self, logger: Any, method: str, event: dict[str, Any]) -> dict[str, Any]:
        """structlog processor."""
        return {k: self.scrub(v, None if k in ("event", "exception") else k)
                for k, v in event.items()}


def _use_json(settings: LogSettings, stream: Any) -> bool:
    if settings.format == "json":
        return True
    if settings.format == "console":
        return False
    return not (hasattr(stream, "isatty") and stream.isatty())


def configure_logging(settings: LogSettings, stream: Any = None,
                      redactor: Redactor | None = None) -> Redactor:
    """Set up structlog and the stdlib root logger; returns the redactor so callers can add
    known secret values. Safe to call more than once (the last call wins)."""
    stream = stream or sys.stderr
    redactor = redactor or Redactor()
    level = getattr(logging, settings.level.upper(), logging.INFO)
    renderer: Any = (structlog.processors.JSONRenderer() if _use_json(settings, stream)
                     else structlog.dev.ConsoleRenderer(colors=False))
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
    ]
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, redactor, renderer],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_datapost", False):
            root.removeHandler(old)
    handler._datapost = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    for chatty in NOISY_LOGGERS:  # one line per HTTP request is debug detail, not news
        logging.getLogger(chatty).setLevel(max(level, logging.WARNING) if level > logging.DEBUG
                                           else logging.DEBUG)
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(level),
        cache_logger_on_first_use=False,
    )
    return redactor


def get_logger(name: str | None = None) -> Any:
    return structlog.get_logger(name)
