"""Registry of apps (the "DEX"), the PDAs, and what each PDA holds.

Everything a PDA knows lives on its `Pda` object: key pair and token service, owner
password, per-app setup/enabled flags, records and files. The app registry is global,
as Dataswift's is: an app registered once can be enabled on any PDA.
"""

from __future__ import annotations

import re
import secrets
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .filestore import FileStore
from .ratelimit import TokenBucketLimiter
from .records import RecordStore
from .s3 import ObjectStore, Presigner
from .tokens import SubjectCrypter, TokenService, new_private_key

DEFAULT_PASSWORD = "sandbox-password"
APP_KINDS = ("App", "DataPlug", "Tool")
_APP_ID = re.compile(r"^[0-9a-z][0-9a-z._-]{0,99}$")
_PDA_NAME = re.compile(r"^[0-9a-z][0-9a-z-]{0,62}$")


@dataclass(frozen=True)
class Role:
    """A granted role: `namespacewrite:probe` is Role("namespacewrite", "probe")."""

    role: str
    detail: str | None = None

    def to_json(self) -> dict[str, str]:
        if self.detail is None:
            return {"role": self.role}
        return {"role": self.role, "detail": self.detail}

    def __str__(self) -> str:
        return self.role if self.detail is None else f"{self.role}:{self.detail}"


@dataclass
class AppSpec:
    """One registry application, as the sandbox's DEX knows it."""

    id: str
    version: str = "1.0.0"
    kind: str = "App"
    roles: list[Role] = field(default_factory=list)
    valid_redirect_uris: list[str] = field(default_factory=list)
    name: str = ""

    def has_role(self, role: str) -> bool:
        return any(r.role == role for r in self.roles)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "version": self.version, "kind": self.kind, "name": self.name,
                "roles": [str(r) for r in self.roles],
                "validRedirectUris": list(self.valid_redirect_uris)}


def parse_role(raw: object) -> Role:
    if isinstance(raw, str) and raw.strip():
        role, sep, detail = raw.strip().partition(":")
        return Role(role, detail if sep else None)
    if isinstance(raw, dict) and isinstance(raw.get("role"), str) and raw["role"]:
        detail = raw.get("detail")
        if detail is not None and not isinstance(detail, str):
            raise ValueError("role detail must be a string")
        return Role(raw["role"], detail)
    raise ValueError(f"invalid role {raw!r}: use \"role:detail\" or {{\"role\", \"detail\"}}")


def parse_app_spec(spec: object) -> AppSpec:
    """Validate a registration (config file or control API); ValueError names the field."""
    if not isinstance(spec, dict):
        raise ValueError("app spec must be a JSON object")
    app_id = spec.get("id")
    if not isinstance(app_id, str) or not _APP_ID.match(app_id):
        raise ValueError("id: required, lower-case letters, digits, '.', '_' or '-' "
                         "(the login page lower-cases app ids)")
    version = spec.get("version", "1.0.0")
    if not isinstance(version, str) or not version:
        raise ValueError("version must be a non-empty string")
    kind = spec.get("kind", "App")
    if isinstance(kind, dict):
        kind = kind.get("kind")
    if kind not in APP_KINDS:
        raise ValueError(f"kind must be one of {', '.join(APP_KINDS)}")
    raw_roles = spec.get("roles", spec.get("rolesGranted", []))
    if not isinstance(raw_roles, list):
        raise ValueError("roles must be a list")
    uris = spec.get("validRedirectUris", spec.get("valid_redirect_uris", []))
    if not isinstance(uris, list) or not all(isinstance(u, str) for u in uris):
        raise ValueError("validRedirectUris must be a list of strings")
    name = spec.get("name", app_id)
    if not isinstance(name, str):
        raise ValueError("name must be a string")
    return AppSpec(app_id, version, kind, [parse_role(r) for r in raw_roles], list(uris), name)


@dataclass
class Enablement:
    """An app set up on one PDA; `version` is the one the owner agreed to."""

    version: str
    enabled: bool = True


class Pda:
    """One Personal Data Account: its own host, key pair, owner, apps, records and files."""

    def __init__(self, name: str, domain: str, password: str, crypter: SubjectCrypter) -> None:
        self.name = name
        self.domain = domain
        self.password = password
        self.user_id = str(uuid.uuid4())
        self.tokens = TokenService(domain, name, new_private_key(), crypter)
        self.apps: dict[str, Enablement] = {}
        self.records = RecordStore()
        self.files = FileStore()

    @property
    def url(self) -> str:
        return "http://" + self.domain

    @property
    def owner(self) -> str:
        return self.name

    def is_enabled(self, app_id: str) -> bool:
        entry = self.apps.get(app_id)
        return bool(entry and entry.enabled)

    def enable(self, app: AppSpec) -> None:
        self.apps[app.id] = Enablement(app.version, True)

    def disable(self, app_id: str) -> None:
        if app_id in self.apps:
            self.apps[app_id].enabled = False

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "domain": self.domain, "url": self.url}


class DataswyftState:
    """All PDAs of the sandbox plus the shared app registry, S3 stand-in and login limiter."""

    def __init__(self, world: Any) -> None:
        self.world = world
        self.apps: dict[str, AppSpec] = {}
        self.pdas: dict[str, Pda] = {}
        self._by_domain: dict[str, Pda] = {}
        self.crypter = SubjectCrypter()
        self.form_key = secrets.token_bytes(32)  # CSRF tokens of the consent form
        self.presigner = Presigner()
        self.login_limiter = TokenBucketLimiter(capacity=10, refill_seconds=2.0)
        self._objects: ObjectStore | None = None

    def now(self) -> float:
        return float(self.world.clock.now())

    @property
    def objects(self) -> ObjectStore:
        """The S3 stand-in, created on first use under settings.data_dir (or a temp dir)."""
        if self._objects is None:
            settings = getattr(self.world, "settings", None)
            base = getattr(settings, "data_dir", None)
            root = Path(base) / "dataswyft-s3" if base else Path(
                tempfile.mkdtemp(prefix="datapost-pda-s3-"))
            keep = bool(getattr(settings, "keep_content", True))
            self._objects = ObjectStore(root, keep_content=keep)
        return self._objects

    def add_pda(self, name: str, domain: str, password: str | None = None) -> Pda:
        """Create a PDA with a fresh RSA-2048 key; `domain` is its Host, port included."""
        if not isinstance(name, str) or not _PDA_NAME.match(name):
            raise ValueError("PDA name: lower-case letters, digits and '-'")
        if name in self.pdas:
            raise ValueError(f"PDA {name!r} already exists")
        domain = domain.lower()
        if not domain or domain in self._by_domain:
            raise ValueError(f"domain {domain!r} is empty or already taken")
        if password is not None and (not isinstance(password, str) or not password):
            raise ValueError("password must be a non-empty string")
        pda = Pda(name, domain, password or DEFAULT_PASSWORD, self.crypter)
        self.pdas[name] = pda
        self._by_domain[domain] = pda
        return pda

    def register_app(self, spec: dict) -> None:
        """Add or replace an app in the global registry (ValueError on a bad spec)."""
        self.register(spec)

    def register(self, spec: object) -> AppSpec:
        app = parse_app_spec(spec)
        self.apps[app.id] = app
        return app

    def enable_app(self, pda_name: str, app_id: str) -> None:
        """Set an app up on a PDA (config file `pdas[].apps`); ValueError when unknown."""
        pda = self.pdas.get(pda_name)
        app = self.apps.get(app_id)
        if pda is None or app is None:
            raise ValueError(f"unknown PDA {pda_name!r} or app {app_id!r}")
        pda.enable(app)

    def pda_for_host(self, host: str) -> Pda | None:
        return self._by_domain.get(host.strip().lower())

    def pda_for_domain(self, domain: str) -> Pda | None:
        return self._by_domain.get(domain.lower())
