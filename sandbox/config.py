"""Sandbox start-up configuration: command-line flags over an optional TOML file.

Everything a scripted client needs can be set here, so it can use the sandbox with no
knowledge of the control API: contracts, apps, PDAs with passwords, token lifetime and
auto-approve.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from .world import SandboxSettings

PDA_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


class SandboxConfigError(ValueError):
    """The sandbox configuration is invalid; the message names the key."""


@dataclass
class PdaSpec:
    name: str
    port: int = 0
    password: str | None = None
    apps: list[str] = field(default_factory=list)


@dataclass
class ContractSpec:
    application_id: str
    contract_id: str
    public_key_pem: str
    redirect_uris: list[str] | None = None


@dataclass
class SandboxConfig:
    settings: SandboxSettings = field(default_factory=SandboxSettings)
    pdas: list[PdaSpec] = field(default_factory=list)
    contracts: list[ContractSpec] = field(default_factory=list)
    apps: list[dict] = field(default_factory=list)


def _int(table: dict, key: str, where: str, low: int, high: int) -> int | None:
    if key not in table:
        return None
    value = table[key]
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise SandboxConfigError(f"{where}{key} must be an integer from {low} to {high}")
    return value


def parse_pda(value: object, where: str) -> PdaSpec:
    """A PDA from TOML (a table) or a flag (`name` or `name:port`)."""
    if isinstance(value, str):
        name, _, port = value.partition(":")
        value = {"name": name, **({"port": int(port)} if port.isdigit() else {})}
        if port and not port.isdigit():
            raise SandboxConfigError(f"{where}: port must be a number, got {port!r}")
    if not isinstance(value, dict):
        raise SandboxConfigError(f"{where} must be a table or 'name[:port]'")
    name = value.get("name")
    if not isinstance(name, str) or not PDA_NAME.match(name):
        raise SandboxConfigError(f"{where}.name must match {PDA_NAME.pattern}")
    port = _int(value, "port", f"{where}.", 0, 65535) or 0
    password = value.get("password")
    if password is not None and not isinstance(password, str):
        raise SandboxConfigError(f"{where}.password must be a string")
    apps = value.get("apps", [])
    if not isinstance(apps, list) or not all(isinstance(a, str) for a in apps):
        raise SandboxConfigError(f"{where}.apps must be a list of app ids")
    return PdaSpec(name=name, port=port, password=password, apps=apps)


def parse_contract(value: object, where: str, base: Path) -> ContractSpec:
    if not isinstance(value, dict):
        raise SandboxConfigError(f"{where} must be a table")
    for key in ("application_id", "contract_id"):
        if not isinstance(value.get(key), str) or not value[key]:
            raise SandboxConfigError(f"{where}.{key} must be a non-empty string")
    pem = value.get("public_key")
    if pem is None and "public_key_file" in value:
        path = base / str(value["public_key_file"])
        try:
            pem = path.read_text()
        except OSError as exc:
            raise SandboxConfigError(f"{where}.public_key_file: cannot read {path}: {exc.strerror}") from None
    if not isinstance(pem, str) or "-----BEGIN" not in pem:
        raise SandboxConfigError(f"{where} needs public_key (PEM) or public_key_file")
    uris = value.get("redirect_uris")
    if uris is not None and (not isinstance(uris, list) or not all(isinstance(u, str) for u in uris)):
        raise SandboxConfigError(f"{where}.redirect_uris must be a list of URLs")
    return ContractSpec(value["application_id"], value["contract_id"], pem, uris)


def parse_app(value: object, where: str) -> dict:
    if not isinstance(value, dict) or not isinstance(value.get("id"), str) or not value["id"]:
        raise SandboxConfigError(f"{where} must be a table with a non-empty id")
    roles = value.get("roles", [])
    if not isinstance(roles, list):
        raise SandboxConfigError(f"{where}.roles must be a list")
    return dict(value)


def load_config(path: Path | None) -> SandboxConfig:
    """Read a TOML file (or nothing) into a SandboxConfig."""
    config = SandboxConfig()
    if path is None:
        return config
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise SandboxConfigError(f"cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SandboxConfigError(f"{path} is not valid TOML: {exc}") from None
    s = config.settings
    if "host" in data:
        if not isinstance(data["host"], str):
            raise SandboxConfigError("host must be a string")
        s.host = data["host"]
    s.port = _int(data, "port", "", 0, 65535) or s.port
    for key in ("auto_approve", "keep_content"):
        if key in data:
            if not isinstance(data[key], bool):
                raise SandboxConfigError(f"{key} must be true or false")
            setattr(s, key, data[key])
    for key, low, high in (("access_token_ttl", 1, 10**8), ("refresh_token_ttl", 1, 10**9),
                           ("timestamp_window", 1, 86400)):
        value = _int(data, key, "", low, high)
        if value is not None:
            setattr(s, key, value)
    if "data_dir" in data:
        s.data_dir = Path(str(data["data_dir"]))
    base = path.parent
    config.pdas = [parse_pda(v, f"pdas[{i}]") for i, v in enumerate(data.get("pdas", []))]
    config.contracts = [parse_contract(v, f"contracts[{i}]", base)
                        for i, v in enumerate(data.get("contracts", []))]
    config.apps = [parse_app(v, f"apps[{i}]") for i, v in enumerate(data.get("apps", []))]
    known = {"host", "port", "auto_approve", "keep_content", "access_token_ttl",
             "refresh_token_ttl", "timestamp_window", "data_dir", "pdas", "contracts", "apps"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise SandboxConfigError(f"unknown key(s) in {path}: {', '.join(unknown)}")
    return config
