"""The credentials the vault keeps: what each provider's sign-in leaves us, and how it is
split between the sealed blob (every secret) and clear metadata (what `datapost credentials`
lists without the master key).
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass, fields
from typing import Any, ClassVar

from ..errors import ValidationError

PROVIDERS = ("digime", "dataswyft")
STATUSES = frozenset({"active", "needs_signin", "revoked"})
MAX_USER_LENGTH = 200

# Kept in clear beside the blob (they change without new tokens), never inside it.
CLEAR_FIELDS = ("version", "status", "updated_at")


class _Redacted:
    """A repr that shows `***` for secret fields, so a credential can be logged or printed."""

    secret_fields: ClassVar[tuple[str, ...]] = ()

    def __repr__(self) -> str:
        parts = []
        for f in fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            shown = "'***'" if f.name in self.secret_fields and value is not None else repr(value)
            parts.append(f"{f.name}={shown}")
        return f"{type(self).__name__}({', '.join(parts)})"


@dataclass(repr=False)
class DigimeCredential(_Redacted):
    """A digi.me user's tokens and postbox; the refresh token rotates on every refresh."""

    provider: ClassVar[str] = "digime"
    secret_fields: ClassVar[tuple[str, ...]] = ("access_token", "refresh_token", "postbox_public_key")

    user: str
    access_token: str
    access_expires_at: int
    refresh_token: str
    refresh_expires_at: int
    postbox_id: str | None = None
    postbox_public_key: str | None = None  # PKCS#1 PEM
    digime_user_id: str | None = None
    consent_id: str | None = None
    version: int = 0
    status: str = "active"
    updated_at: float = 0.0

    @property
    def expires_at(self) -> int:
        return self.access_expires_at

    @property
    def cas(self) -> int:
        return 0

    def metadata(self) -> dict[str, str]:
        return {"has_postbox": "1" if self.postbox_id else "0"}


@dataclass(repr=False)
class DataswyftCredential(_Redacted):
    """A PDA's newest application token; a newer `token_iat` always wins."""

    provider: ClassVar[str] = "dataswyft"
    secret_fields: ClassVar[tuple[str, ...]] = ("token",)

    user: str
    pda_domain: str
    token: str
    token_iat: int
    token_exp: int
    application_id: str
    version: int = 0
    status: str = "active"
    updated_at: float = 0.0

    @property
    def expires_at(self) -> int:
        return self.token_exp

    @property
    def cas(self) -> int:
        return self.token_iat

    def metadata(self) -> dict[str, str]:
        return {"pda_domain": self.pda_domain}


Credential = DigimeCredential | DataswyftCredential
CREDENTIAL_TYPES: dict[str, type[DigimeCredential] | type[DataswyftCredential]] = {
    "digime": DigimeCredential, "dataswyft": DataswyftCredential,
}


@dataclass(frozen=True)
class CredentialInfo:
    """What may be listed without opening anything: no token, no key."""

    provider: str
    user: str
    status: str
    version: int
    kid: str
    updated_at: float
    expires_at: int
    pda_domain: str | None = None
    has_postbox: bool | None = None


def check_provider(provider: str) -> str:
    if provider not in CREDENTIAL_TYPES:
        raise ValidationError(f"unknown provider {provider!r}: expected one of {', '.join(PROVIDERS)}")
    return provider


def check_status(status: str) -> str:
    if status not in STATUSES:
        raise ValidationError(f"unknown credential status {status!r}: expected one of "
                              f"{', '.join(sorted(STATUSES))}")
    return status


def check_user(user: Any) -> str:
    """An app user id: non-empty, at most 200 characters, no control characters."""
    if not isinstance(user, str) or not user:
        raise ValidationError("user must be a non-empty string")
    if len(user) > MAX_USER_LENGTH:
        raise ValidationError(f"user is longer than {MAX_USER_LENGTH} characters")
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp") for ch in user):
        raise ValidationError("user contains control characters")
    return user


def check_credential(cred: Any) -> Credential:
    if not isinstance(cred, DigimeCredential | DataswyftCredential):
        raise ValidationError(f"not a credential: {type(cred).__name__}")
    check_user(cred.user)
    check_status(cred.status)
    return cred


def aad(provider: str, user: str) -> bytes:
    """Binds a sealed credential to its record: a blob copied to another user fails to open."""
    return f"cred:{provider}:{user}".encode()


_SEALED_NAMES = {provider: frozenset(f.name for f in fields(cls)) - set(CLEAR_FIELDS)
                 for provider, cls in CREDENTIAL_TYPES.items()}  # every job opens one


def to_plaintext(cred: Credential) -> bytes:
    """The sealed part: every field but the clear ones."""
    data = {f.name: getattr(cred, f.name) for f in fields(cred) if f.name not in CLEAR_FIELDS}
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()


def from_plaintext(provider: str, plaintext: bytes, *, version: int, status: str,
                   updated_at: float) -> Credential:
    """Rebuild a credential from its opened blob and clear fields (ValueError when malformed)."""
    cls = CREDENTIAL_TYPES[provider]
    data = json.loads(plaintext)
    if not isinstance(data, dict):
        raise ValueError("sealed credential is not an object")
    names = _SEALED_NAMES[provider]
    try:
        return cls(**{k: v for k, v in data.items() if k in names},
                   version=version, status=status, updated_at=updated_at)
    except TypeError:
        raise ValueError("sealed credential lacks required fields") from None
