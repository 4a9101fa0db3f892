"""Configuration: `DATAPOST_*` environment variables over an optional TOML file.

Read once at the edge (CLI, app start-up) into frozen `Settings` and passed down; nothing
deep inside reads the environment. Every value is validated here, and an error names the
key, where it came from and what was wrong.
"""

from __future__ import annotations

import base64
import binascii
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .errors import ConfigError
from .secret import Secret

DEFAULT_PDA_SUFFIXES = ("hubat.net", "hubofallthings.net", "dataswift.me", "dataswift.dev")


@dataclass(frozen=True)
class DigimeSettings:
    api_url: str = "https://api.digi.me/v1.7/"
    onboard_url: str = "https://api.digi.me/apps/saas/"
    application_id: str | None = None
    contract_id: str | None = None
    private_key_file: Path | None = None
    private_key: Secret | None = None


@dataclass(frozen=True)
class DataswyftSettings:
    application_id: str | None = None
    scheme: str = "https"
    allowed_domains: tuple[str, ...] = DEFAULT_PDA_SUFFIXES


@dataclass(frozen=True)
class DeliverySettings:
    """How workers deliver: payload storage, token refresh, HTTP, retention."""

    queue: str = "datapost"
    payload_dir: Path | None = None  # default: <data_dir>/payloads
    inline_payload_max: int = 256 * 1024
    max_payload_bytes: int = 2 * 1024**3
    refresh_skew: int = 60
    refresh_lock_ttl: int = 120
    http_timeout: float = 30.0
    http_attempts: int = 3
    max_inline_wait: float = 30.0
    idempotency_ttl: int = 86400
    result_ttl: int = 30 * 86400
    events_maxlen: int = 100_000
    job_max_age: int = 7 * 86400
    rate_limits: str = ""  # e.g. "digime=50/s:20,dataswyft=100/s,pda-host=5/s:2"
    metrics_port: int = 9191


@dataclass(frozen=True)
class RetrySettings:
    """Job-level retries: delay n = min(cap, base * factor**n), +-jitter; about 27.6 h in all
    by default, like Svix. Throttling (429/503 with Retry-After) does not count."""

    max_retries: int = 9
    base: float = 5.0
    factor: float = 4.0
    cap: float = 36000.0
    jitter: float = 0.2


@dataclass(frozen=True)
class CallbackSettings:
    """The sign-in callback receiver: where it is reached, and where it sends people after."""

    public_url: str | None = None  # e.g. https://app.example.com/datapost/ (trailing slash)
    success_url: str | None = None  # the app's page after a successful connection
    failure_url: str | None = None  # the app's page after a failed or declined one
    signin_ttl: int = 900
    host: str = "127.0.0.1"
    port: int = 8787


@dataclass(frozen=True)
class LogSettings:
    format: str = "auto"
    level: str = "INFO"


@dataclass(frozen=True)
class Settings:
    redis_url: str | None = None
    broker_url: str | None = None
    master_key: Secret | None = None
    previous_master_keys: tuple[Secret, ...] = ()
    data_dir: Path = Path(".datapost")
    sandbox_mode: bool = False
    log: LogSettings = field(default_factory=LogSettings)
    delivery: DeliverySettings = field(default_factory=DeliverySettings)
    retry: RetrySettings = field(default_factory=RetrySettings)
    callback: CallbackSettings = field(default_factory=CallbackSettings)
    digime: DigimeSettings = field(default_factory=DigimeSettings)
    dataswyft: DataswyftSettings = field(default_factory=DataswyftSettings)


# -- value parsers: each returns the parsed value or raises ValueError with a short reason --

def _str(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("must be a non-empty string")
    return value.strip()


def _url(*schemes: str) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        text = _str(value)
        parts = urlsplit(text)
        if parts.scheme not in schemes or not parts.netloc:
            raise ValueError(f"must be a {'/'.join(schemes)} URL, got {_safe(text)!r}")
        return text
    return parse


def _base_url(value: Any) -> str:
    """An http(s) base URL, always with a trailing slash (as the digi.me SDK normalises)."""
    text = _url("http", "https")(value)
    return text if text.endswith("/") else text + "/"


def _path(value: Any) -> Path:
    return Path(_str(value)).expanduser()


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("must be true or false")


def _choice(*options: str) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        text = _str(value).lower()
        if text not in options:
            raise ValueError(f"must be one of {', '.join(options)}, got {text!r}")
        return text
    return parse


def _master_key(value: Any) -> Secret:
    try:
        raw = base64.b64decode(_str(value), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("must be base64 (standard alphabet) of 32 random bytes") from None
    if len(raw) != 32:
        raise ValueError(f"must decode to 32 bytes, got {len(raw)}")
    return Secret(raw)


def _master_keys(value: Any) -> tuple[Secret, ...]:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise ValueError("must be a comma-separated string or a list of base64 keys")
    return tuple(_master_key(item) for item in items if str(item).strip())


def _number(low: float, high: float, kind: type = int) -> Callable[[Any], Any]:
    def parse(value: Any) -> Any:
        try:
            number = kind(value) if not isinstance(value, bool) else None
        except (TypeError, ValueError):
            number = None
        if number is None or not low <= number <= high:
            raise ValueError(f"must be {'an integer' if kind is int else 'a number'} "
                             f"from {low:g} to {high:g}, got {value!r}")
        return number
    return parse


def _rate_limits(value: Any) -> str:
    from .delivery.limits import parse_limits  # the grammar lives with the limiter

    text = _str(value)
    parse_limits(text)
    return text


def queue_name(value: Any) -> str:
    text = _str(value)
    if not all(c.isalnum() or c in "-_" for c in text) or len(text) > 64:
        raise ValueError("must be letters, digits, '-' or '_' (at most 64)")
    return text


def _pem_secret(value: Any) -> Secret:
    text = _str(value)
    if "-----BEGIN" not in text or "PRIVATE KEY-----" not in text:
        raise ValueError("must be a PEM private key")
    return Secret(text.encode())


def _domains(value: Any) -> tuple[str, ...]:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise ValueError("must be a comma-separated string or a list of domain suffixes")
    suffixes = tuple(str(s).strip().lower().lstrip(".") for s in items if str(s).strip())
    if not suffixes:
        raise ValueError("must name at least one domain suffix")
    for suffix in suffixes:
        if not all(part and part.replace("-", "").isalnum() for part in suffix.split(".")):
            raise ValueError(f"{suffix!r} is not a domain suffix")
    return suffixes


def _safe(text: str) -> str:
    """Strip credentials from a URL before it goes into an error message."""
    parts = urlsplit(text)
    if parts.password or parts.username:
        netloc = parts.hostname or ""
        if parts.port:
            netloc += f":{parts.port}"
        return parts._replace(netloc=f"***@{netloc}").geturl()
    return text


# (environment variable, TOML path, parser, settings path)
FIELDS: tuple[tuple[str, str, Callable[[Any], Any], str], ...] = (
    ("DATAPOST_REDIS_URL", "redis_url", _url("redis", "rediss", "unix"), "redis_url"),
    ("DATAPOST_BROKER_URL", "broker_url", _url("redis", "rediss", "amqp", "amqps"), "broker_url"),
    ("DATAPOST_MASTER_KEY", "master_key", _master_key, "master_key"),
    ("DATAPOST_MASTER_KEY_PREVIOUS", "previous_master_keys", _master_keys, "previous_master_keys"),
    ("DATAPOST_DATA_DIR", "data_dir", _path, "data_dir"),
    ("DATAPOST_QUEUE", "delivery.queue", queue_name, "delivery.queue"),
    ("DATAPOST_PAYLOAD_DIR", "delivery.payload_dir", _path, "delivery.payload_dir"),
    ("DATAPOST_INLINE_PAYLOAD_MAX", "delivery.inline_payload_max", _number(0, 64 * 1024**2),
     "delivery.inline_payload_max"),
    ("DATAPOST_MAX_PAYLOAD_BYTES", "delivery.max_payload_bytes", _number(1, 1024**4),
     "delivery.max_payload_bytes"),
    ("DATAPOST_REFRESH_SKEW", "delivery.refresh_skew", _number(0, 86400), "delivery.refresh_skew"),
    ("DATAPOST_REFRESH_LOCK_TTL", "delivery.refresh_lock_ttl", _number(5, 3600),
     "delivery.refresh_lock_ttl"),
    ("DATAPOST_HTTP_TIMEOUT", "delivery.http_timeout", _number(0.1, 3600, float),
     "delivery.http_timeout"),
    ("DATAPOST_HTTP_ATTEMPTS", "delivery.http_attempts", _number(1, 20), "delivery.http_attempts"),
    ("DATAPOST_MAX_INLINE_WAIT", "delivery.max_inline_wait", _number(0, 600, float),
     "delivery.max_inline_wait"),
    ("DATAPOST_IDEMPOTENCY_TTL", "delivery.idempotency_ttl", _number(1, 365 * 86400),
     "delivery.idempotency_ttl"),
    ("DATAPOST_RESULT_TTL", "delivery.result_ttl", _number(60, 3650 * 86400), "delivery.result_ttl"),
    ("DATAPOST_EVENTS_MAXLEN", "delivery.events_maxlen", _number(100, 10**8),
     "delivery.events_maxlen"),
    ("DATAPOST_JOB_MAX_AGE", "delivery.job_max_age", _number(60, 365 * 86400),
     "delivery.job_max_age"),
    ("DATAPOST_RATE_LIMITS", "delivery.rate_limits", _rate_limits, "delivery.rate_limits"),
    ("DATAPOST_METRICS_PORT", "delivery.metrics_port", _number(0, 65535), "delivery.metrics_port"),
    ("DATAPOST_RETRY_MAX", "retry.max_retries", _number(0, 100), "retry.max_retries"),
    ("DATAPOST_RETRY_BASE", "retry.base", _number(0.01, 86400, float), "retry.base"),
    ("DATAPOST_RETRY_FACTOR", "retry.factor", _number(1, 100, float), "retry.factor"),
    ("DATAPOST_RETRY_CAP", "retry.cap", _number(0.01, 30 * 86400, float), "retry.cap"),
    ("DATAPOST_RETRY_JITTER", "retry.jitter", _number(0, 1, float), "retry.jitter"),
    ("DATAPOST_SANDBOX", "sandbox_mode", _bool, "sandbox_mode"),
    ("DATAPOST_LOG_FORMAT", "log.format", _choice("auto", "json", "console"), "log.format"),
    ("DATAPOST_LOG_LEVEL", "log.level", _choice("debug", "info", "warning", "error"), "log.level"),
    ("DATAPOST_CALLBACK_URL", "callback.public_url", _base_url, "callback.public_url"),
    ("DATAPOST_CALLBACK_SUCCESS_URL", "callback.success_url", _url("http", "https"),
     "callback.success_url"),
    ("DATAPOST_CALLBACK_FAILURE_URL", "callback.failure_url", _url("http", "https"),
     "callback.failure_url"),
    ("DATAPOST_SIGNIN_TTL", "callback.signin_ttl", _number(30, 86400), "callback.signin_ttl"),
    ("DATAPOST_CALLBACK_HOST", "callback.host", _str, "callback.host"),
    ("DATAPOST_CALLBACK_PORT", "callback.port", _number(0, 65535), "callback.port"),
    ("DATAPOST_DIGIME_API_URL", "digime.api_url", _base_url, "digime.api_url"),
    ("DATAPOST_DIGIME_ONBOARD_URL", "digime.onboard_url", _base_url, "digime.onboard_url"),
    ("DATAPOST_DIGIME_APPLICATION_ID", "digime.application_id", _str, "digime.application_id"),
    ("DATAPOST_DIGIME_CONTRACT_ID", "digime.contract_id", _str, "digime.contract_id"),
    ("DATAPOST_DIGIME_PRIVATE_KEY_FILE", "digime.private_key_file", _path, "digime.private_key_file"),
    ("DATAPOST_DIGIME_PRIVATE_KEY", "digime.private_key", _pem_secret, "digime.private_key"),
    ("DATAPOST_DATASWYFT_APPLICATION_ID", "dataswyft.application_id", _str,
     "dataswyft.application_id"),
    ("DATAPOST_DATASWYFT_SCHEME", "dataswyft.scheme", _choice("https", "http"), "dataswyft.scheme"),
    ("DATAPOST_DATASWYFT_ALLOWED_DOMAINS", "dataswyft.allowed_domains", _domains,
     "dataswyft.allowed_domains"),
)
KNOWN_ENV = {name for name, *_ in FIELDS} | {"DATAPOST_CONFIG"}


def _toml_lookup(data: Mapping[str, Any], dotted: str) -> Any:
    node: Any = data
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return _MISSING
        node = node[part]
    return node


_MISSING = object()


def _check_unknown_toml(data: Mapping[str, Any], source: str) -> None:
    known = {path for _, path, _, _ in FIELDS}
    sections = {p.split(".")[0] for p in known if "." in p}
    for key, value in data.items():
        if key in sections and isinstance(value, Mapping):
            for sub in value:
                if f"{key}.{sub}" not in known:
                    raise ConfigError(f"{key}.{sub} ({source}): unknown key")
        elif key not in known:
            raise ConfigError(f"{key} ({source}): unknown key")


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"DATAPOST_CONFIG: file {path} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"DATAPOST_CONFIG: cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"DATAPOST_CONFIG: {path} is not valid TOML: {exc}") from None


def load_settings(environ: Mapping[str, str] | None = None,
                  config_file: Path | None = None) -> Settings:
    """Build Settings from the environment (winning) and the TOML file named by DATAPOST_CONFIG."""
    env = os.environ if environ is None else environ
    if config_file is None and env.get("DATAPOST_CONFIG"):
        config_file = Path(env["DATAPOST_CONFIG"]).expanduser()
    toml: dict[str, Any] = {}
    source = "config file"
    if config_file is not None:
        toml = _read_toml(config_file)
        source = str(config_file)
        _check_unknown_toml(toml, source)
    typos = sorted(k for k in env if k.startswith("DATAPOST_") and k not in KNOWN_ENV)
    if typos:
        raise ConfigError(f"{typos[0]} (environment): unknown setting; known ones are listed in "
                          "the README's Configuration section")
    values: dict[str, Any] = {}
    for env_name, toml_path, parse, target in FIELDS:
        if env.get(env_name, "") != "":
            raw, where = env[env_name], f"{env_name} (environment)"
        else:
            raw = _toml_lookup(toml, toml_path)
            if raw is _MISSING:
                continue
            where = f"{toml_path} ({source})"
        try:
            values[target] = parse(raw)
        except ValueError as exc:
            raise ConfigError(f"{where}: {exc}") from None
    return _assemble(values)


def _assemble(values: dict[str, Any]) -> Settings:
    groups: dict[str, dict[str, Any]] = {"": {}, "log": {}, "digime": {}, "dataswyft": {},
                                         "delivery": {}, "retry": {}, "callback": {}}
    for target, value in values.items():
        group, _, name = target.rpartition(".")
        groups[group][name] = value
    digime = DigimeSettings(**groups["digime"])
    if digime.private_key is not None and digime.private_key_file is not None:
        raise ConfigError("DATAPOST_DIGIME_PRIVATE_KEY and DATAPOST_DIGIME_PRIVATE_KEY_FILE: "
                          "set one, not both")
    if "payload_dir" not in groups["delivery"]:
        groups["delivery"]["payload_dir"] = Path(groups[""].get("data_dir", Path(".datapost"))) / "payloads"
    return Settings(
        **groups[""],
        log=LogSettings(**groups["log"]),
        delivery=DeliverySettings(**groups["delivery"]),
        retry=RetrySettings(**groups["retry"]),
        callback=CallbackSettings(**groups["callback"]),
        digime=digime,
        dataswyft=DataswyftSettings(**groups["dataswyft"]),
    )
