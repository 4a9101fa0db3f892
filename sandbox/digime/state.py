"""Everything the emulated digi.me server remembers, behind one lock.

Handlers run on the event loop and in worker threads (decryption), so every read-modify-write
goes through `DigimeState` methods that take `self.lock`. Time always comes from
`world.clock`, which tests can move.
"""

from __future__ import annotations

import secrets
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from cryptography.hazmat.primitives.asymmetric import rsa

from .crypto import load_public_key, new_rsa_key, pkcs1_pem
from .tokens import ServerSigner

PREAUTH_TTL = 600  # seconds a preauthorization code (onboarding link) lives
AUTH_CODE_TTL = 600  # seconds an authorization code lives
SESSION_TTL = 1800  # seconds the session returned by oauth/authorize lives
POSTBOX_RETENTION = 30 * 86400  # `expires` of a postbox entry = received_at + this
STAT_NAMES = ("refresh_calls", "token_calls", "authorize_calls", "postbox_calls", "import_calls")

TokenStatus = Literal["valid", "expired", "invalid"]


@dataclass
class Contract:
    client_id: str
    application_id: str
    contract_id: str
    public_key: rsa.RSAPublicKey
    public_key_pem: str
    redirect_uris: list[str]

    def to_json(self) -> dict[str, Any]:
        return {"client_id": self.client_id, "application_id": self.application_id,
                "contract_id": self.contract_id, "redirect_uris": self.redirect_uris,
                "public_key": self.public_key_pem}


@dataclass
class Postbox:
    id: str
    user_id: str
    private_key: rsa.RSAPrivateKey
    public_pem: str  # PKCS#1


@dataclass
class User:
    id: str
    postbox_id: str
    account_reference: str


@dataclass
class Preauth:
    code: str
    client_id: str
    redirect_uri: str
    state: str | None
    code_challenge: str
    user_id: str | None
    expires_at: float
    used: bool = False


@dataclass
class AuthCode:
    code: str
    client_id: str
    user_id: str
    consent_id: str
    code_challenge: str
    expires_at: float
    used: bool = False


@dataclass
class AccessToken:
    value: str
    client_id: str
    user_id: str
    consent_id: str
    expires_on: int
    revoked: bool = False


@dataclass
class RefreshToken:
    value: str
    client_id: str
    user_id: str
    consent_id: str
    expires_on: int
    access_token: str
    used: bool = False
    revoked: bool = False


@dataclass
class Delivery:
    id: int
    mode: Literal["postbox", "import"]
    client_id: str
    user_id: str
    postbox_id: str | None
    fileName: str | None  # the control API's field name, as the SDK calls it
    size: int
    sha256: str
    metadata: Any
    status: Literal["delivered", "pending"]
    access_token_used: str
    received_at: float
    expires: int | None = None
    content_path: Path | None = field(default=None, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "mode": self.mode, "client_id": self.client_id,
                "user_id": self.user_id, "postbox_id": self.postbox_id,
                "fileName": self.fileName, "size": self.size, "sha256": self.sha256,
                "metadata": self.metadata, "status": self.status,
                "access_token_used": self.access_token_used, "received_at": self.received_at,
                "expires": self.expires, "has_content": self.content_path is not None}


def _token() -> str:
    return secrets.token_urlsafe(32)


class DigimeState:
    """Contracts, users/postboxes, codes, tokens, nonces, deliveries and counters."""

    def __init__(self, world: Any) -> None:
        self.world = world
        self.lock = threading.RLock()
        self.signer = ServerSigner()
        self.contracts: dict[str, Contract] = {}
        self.users: dict[str, User] = {}
        self.postboxes: dict[str, Postbox] = {}
        self.preauths: dict[str, Preauth] = {}
        self.auth_codes: dict[str, AuthCode] = {}
        self.access_tokens: dict[str, AccessToken] = {}
        self.refresh_tokens: dict[str, RefreshToken] = {}
        self.deliveries: list[Delivery] = []
        self._nonces: dict[str, dict[str, float]] = defaultdict(dict)
        self._stats: dict[str, Counter[str]] = defaultdict(Counter)
        self._content_dir: Path | None = None

    # -- time ------------------------------------------------------------------------------
    def now(self) -> float:
        return self.world.clock.now()

    # -- contracts -------------------------------------------------------------------------
    def register_contract(self, application_id: str, contract_id: str, public_key_pem: str,
                          redirect_uris: list[str] | None = None) -> str:
        """Register (or replace) a contract; returns `<applicationId>_<contractId>`."""
        if not isinstance(application_id, str) or not application_id:
            raise ValueError("application_id must be a non-empty string")
        if not isinstance(contract_id, str) or not contract_id:
            raise ValueError("contract_id must be a non-empty string")
        uris = list(redirect_uris or [])
        if not all(isinstance(u, str) and u for u in uris):
            raise ValueError("redirect_uris must be a list of non-empty strings")
        key = load_public_key(public_key_pem)
        client_id = f"{application_id}_{contract_id}"
        with self.lock:
            self.contracts[client_id] = Contract(client_id, application_id, contract_id, key,
                                                 public_key_pem.strip() + "\n", uris)
        return client_id

    def contract(self, client_id: object) -> Contract | None:
        return self.contracts.get(client_id) if isinstance(client_id, str) else None

    # -- nonces and counters ---------------------------------------------------------------
    def use_nonce(self, client_id: str, nonce: str, issued_at: float) -> bool:
        """Record `nonce`; False when this client already used it.

        A nonce is forgotten only once its JWT timestamp is too old for either clock the
        freshness check accepts, so a replay can never pass both checks.
        """
        horizon = min(self.now(), time.time()) - int(self.world.settings.timestamp_window) - 60
        with self.lock:
            seen = self._nonces[client_id]
            if len(seen) > 1000:
                for old in [n for n, at in seen.items() if at < horizon]:
                    del seen[old]
            if nonce in seen:
                return False
            seen[nonce] = issued_at
            return True

    def count(self, client_id: str, name: str) -> None:
        with self.lock:
            self._stats[client_id][name] += 1

    def stats(self, client_id: str | None) -> dict[str, int]:
        with self.lock:
            clients = [client_id] if client_id else list(self._stats)
            out = {name: sum(self._stats[c][name] for c in clients if c in self._stats)
                   for name in STAT_NAMES}
            rows = [d for d in self.deliveries if not client_id or d.client_id == client_id]
        out["delivered"] = sum(d.status == "delivered" for d in rows)
        out["pending"] = sum(d.status == "pending" for d in rows)
        return out

    # -- users and postboxes ---------------------------------------------------------------
    def create_user(self, user_id: str | None = None) -> User:
        """A new library with its own postbox and a fresh RSA-2048 postbox key."""
        key = new_rsa_key()  # slow-ish (~0.1 s): outside the lock
        with self.lock:
            uid = user_id or f"user-{uuid.uuid4().hex[:12]}"
            if uid in self.users:
                raise ValueError(f"user {uid} already exists")
            box = Postbox(f"pb-{uuid.uuid4().hex[:16]}", uid, key, pkcs1_pem(key.public_key()))
            user = User(uid, box.id, f"acct-{secrets.token_hex(8)}")
            self.postboxes[box.id] = box
            self.users[uid] = user
            return user

    def postbox_of(self, user: User) -> Postbox:
        return self.postboxes[user.postbox_id]

    # -- preauthorization and authorization codes ------------------------------------------
    def new_preauth(self, client_id: str, redirect_uri: str, state: str | None,
                    code_challenge: str, user_id: str | None) -> Preauth:
        pre = Preauth(_token(), client_id, redirect_uri, state, code_challenge, user_id,
                      self.now() + PREAUTH_TTL)
        with self.lock:
            self.preauths[pre.code] = pre
        return pre

    def preauth_problem(self, code: object) -> tuple[Preauth | None, str | None]:
        """The preauth for an onboarding link, or why it cannot be used."""
        pre = self.preauths.get(code) if isinstance(code, str) else None
        if pre is None:
            return None, "This authorization link is not known to digi.me."
        if pre.used:
            return None, "This authorization link has already been used."
        if self.now() > pre.expires_at:
            return None, "This authorization link has expired."
        return pre, None

    def take_preauth(self, code: str) -> tuple[Preauth | None, str | None]:
        """Consume a preauth code (single use) under the lock."""
        with self.lock:
            pre, problem = self.preauth_problem(code)
            if pre is not None:
                pre.used = True
            return pre, problem

    def new_auth_code(self, pre: Preauth, user_id: str) -> AuthCode:
        code = AuthCode(_token(), pre.client_id, user_id, str(uuid.uuid4()), pre.code_challenge,
                        self.now() + AUTH_CODE_TTL)
        with self.lock:
            self.auth_codes[code.code] = code
        return code

    def take_auth_code(self, code: object, client_id: str) -> tuple[AuthCode | None, bool]:
        """(code, expired): consumes it; (None, False) when unknown, used or another client's."""
        with self.lock:
            found = self.auth_codes.get(code) if isinstance(code, str) else None
            if found is None or found.used or found.client_id != client_id:
                return None, False
            found.used = True
            return found, self.now() > found.expires_at

    # -- tokens ----------------------------------------------------------------------------
    def issue_tokens(self, client_id: str, user_id: str, consent_id: str, *,
                     access_ttl: int | None = None, refresh_ttl: int | None = None,
                     access_expires_on: int | None = None) -> tuple[AccessToken, RefreshToken]:
        settings = self.world.settings
        now = int(self.now())
        a_exp = access_expires_on if access_expires_on is not None else now + int(
            settings.access_token_ttl if access_ttl is None else access_ttl)
        r_exp = now + int(settings.refresh_token_ttl if refresh_ttl is None else refresh_ttl)
        access = AccessToken(_token(), client_id, user_id, consent_id, a_exp)
        refresh = RefreshToken(_token(), client_id, user_id, consent_id, r_exp, access.value)
        with self.lock:
            self.access_tokens[access.value] = access
            self.refresh_tokens[refresh.value] = refresh
        return access, refresh

    def access_status(self, value: object, client_id: str | None
                      ) -> tuple[AccessToken | None, TokenStatus]:
        """Whether an access token may be used by `client_id` (any client if None) right now."""
        tok = self.access_tokens.get(value) if isinstance(value, str) else None
        if tok is None or tok.revoked or (client_id is not None and tok.client_id != client_id):
            return None, "invalid"
        if self.now() >= tok.expires_on:
            return tok, "expired"
        return tok, "valid"

    def rotate(self, value: object, client_id: str
               ) -> tuple[tuple[AccessToken, RefreshToken] | None, TokenStatus]:
        """Refresh grant: the old pair dies, a new pair with the same user and consent is born."""
        with self.lock:
            old = self.refresh_tokens.get(value) if isinstance(value, str) else None
            if old is None or old.used or old.revoked or old.client_id != client_id:
                return None, "invalid"
            if self.now() >= old.expires_on:
                return None, "expired"
            old.used = True
            paired = self.access_tokens.get(old.access_token)
            if paired is not None:
                paired.revoked = True
            return self.issue_tokens(old.client_id, old.user_id, old.consent_id), "valid"

    # -- deliveries ------------------------------------------------------------------------
    def content_dir(self) -> Path:
        """Where decrypted uploads go: <data_dir>/digime/deliveries (a temp dir if unset)."""
        with self.lock:
            if self._content_dir is None:
                base = self.world.settings.data_dir
                root = Path(base) if base else Path(tempfile.mkdtemp(prefix="datapost-digime-"))
                self._content_dir = root / "digime" / "deliveries"
                self._content_dir.mkdir(parents=True, exist_ok=True)
            return self._content_dir

    def staging_path(self) -> Path:
        return self.content_dir() / f"incoming-{uuid.uuid4().hex}.part"

    def add_delivery(self, **fields: Any) -> Delivery:
        content: Path | None = fields.pop("content_path", None)
        with self.lock:
            delivery = Delivery(id=len(self.deliveries) + 1, **fields)
            if content is not None:
                final = self.content_dir() / f"{delivery.id}.bin"
                content.replace(final)
                delivery.content_path = final
            self.deliveries.append(delivery)
            return delivery

    def delivery(self, delivery_id: int) -> Delivery | None:
        with self.lock:
            if 1 <= delivery_id <= len(self.deliveries):
                return self.deliveries[delivery_id - 1]
            return None
