"""The contract's RSA private key: loaded once per process, then used to sign client JWTs.

Parsing a PEM key costs ~30 ms and signing ~0.3 ms, so a worker keeps the parsed key in a
`KeyCache` it owns and passes down; nothing here is a module global.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path
from typing import Any

import jwt
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ..config import DigimeSettings
from ..errors import ConfigError
from .assertion import build_assertion

MIN_KEY_BITS = 2048
_FILE_SETTING = "digime.private_key_file (DATAPOST_DIGIME_PRIVATE_KEY_FILE)"
_INLINE_SETTING = "digime.private_key (DATAPOST_DIGIME_PRIVATE_KEY)"


class ContractKey:
    """A parsed contract key plus the ids that make its `client_id`. Never prints the key."""

    __slots__ = ("_key", "application_id", "contract_id")

    def __init__(self, private_key: rsa.RSAPrivateKey, application_id: str, contract_id: str) -> None:
        if not isinstance(private_key, rsa.RSAPrivateKey):
            raise ConfigError("the digi.me contract key must be an RSA private key")
        if private_key.key_size < MIN_KEY_BITS:
            raise ConfigError(f"the digi.me contract key has {private_key.key_size} bits; "
                              f"PS512 needs at least {MIN_KEY_BITS}")
        self._key = private_key
        self.application_id = application_id
        self.contract_id = contract_id

    @classmethod
    def load(cls, settings: DigimeSettings) -> ContractKey:
        """Read and parse the key named in settings; ConfigError says what is missing or wrong."""
        app_id, contract_id = _ids(settings)
        if settings.private_key is not None and settings.private_key_file is not None:
            raise ConfigError(f"{_INLINE_SETTING} and {_FILE_SETTING}: set one, not both")
        if settings.private_key is not None:
            data, where = settings.private_key.reveal(), _INLINE_SETTING
        elif settings.private_key_file is not None:
            data, where = _read_key_file(Path(settings.private_key_file)), _FILE_SETTING
        else:
            raise ConfigError(f"digi.me needs the contract private key: set {_FILE_SETTING} "
                              f"or {_INLINE_SETTING}")
        return cls(_parse_private_key(data, where), app_id, contract_id)

    @property
    def client_id(self) -> str:
        return f"{self.application_id}_{self.contract_id}"

    @property
    def key_size(self) -> int:
        return self._key.key_size

    def sign(self, claims: dict[str, Any]) -> str:
        """A compact PS512 JWS (RSASSA-PSS, SHA-512, MGF1-SHA-512, salt 64 = PyJWT's choice),
        header exactly `{"alg":"PS512","typ":"JWT"}`: no kid, the server finds us by client_id."""
        return jwt.encode(claims, self._key, algorithm="PS512")

    def assertion(self, extra: dict[str, Any] | None = None) -> str:
        """A fresh client assertion (new nonce, current ms timestamp); see `assertion.py`."""
        return build_assertion(self, extra or {})

    def public_key_pem(self) -> str:
        """SPKI PEM of the public half, for registering the contract."""
        return self._key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()

    def __repr__(self) -> str:
        return f"ContractKey(client_id={self.client_id!r}, bits={self._key.key_size})"

    __str__ = __repr__

    def __reduce__(self):
        raise TypeError("ContractKey holds a private key and must not be pickled")


class KeyCache:
    """Parsed contract keys of one process, keyed by (file path, mtime, size) or by a hash of
    the inline key, so a rotated key file is picked up and an unchanged one parsed once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys: dict[tuple, tuple[tuple, ContractKey]] = {}

    def get(self, settings: DigimeSettings) -> ContractKey:
        slot, stamp = _cache_key(settings)
        with self._lock:
            cached = self._keys.get(slot)
            if cached is not None and cached[0] == stamp:
                return cached[1]
        key = ContractKey.load(settings)  # parse outside the lock; a rare double parse is harmless
        with self._lock:
            self._keys[slot] = (stamp, key)
        return key

    def clear(self) -> None:
        with self._lock:
            self._keys.clear()

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return f"KeyCache(entries={len(self._keys)})"


def _cache_key(settings: DigimeSettings) -> tuple[tuple, tuple]:
    ids = (settings.application_id, settings.contract_id)
    if settings.private_key is not None:
        digest = hashlib.sha256(settings.private_key.reveal()).hexdigest()
        return ("inline", digest, *ids), ()
    if settings.private_key_file is not None:
        path = Path(settings.private_key_file)
        try:
            st = os.stat(path)
            stamp: tuple = (st.st_mtime_ns, st.st_size, st.st_ino)
        except OSError:
            stamp = ("missing",)  # load() below raises the proper ConfigError
        return ("file", str(path.resolve()), *ids), stamp
    return ("none", *ids), ()


def _ids(settings: DigimeSettings) -> tuple[str, str]:
    missing = [name for name, value in (("application_id", settings.application_id),
                                        ("contract_id", settings.contract_id))
               if not isinstance(value, str) or not value.strip()]
    if missing:
        envs = " and ".join(f"digime.{m} (DATAPOST_DIGIME_{m.upper()})" for m in missing)
        raise ConfigError(f"digi.me needs {envs}")
    return settings.application_id.strip(), settings.contract_id.strip()  # type: ignore[union-attr]


def _read_key_file(path: Path) -> bytes:
    try:
        return path.expanduser().read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{_FILE_SETTING}: file {path} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"{_FILE_SETTING}: {path} is a directory, not a key file") from None
    except OSError as exc:
        raise ConfigError(f"{_FILE_SETTING}: cannot read {path}: {exc.strerror}") from None


def _parse_private_key(data: bytes, where: str) -> rsa.RSAPrivateKey:
    """PEM (PKCS#1 or PKCS#8), or DER; messages never include the bytes."""
    loader = (serialization.load_pem_private_key if b"-----BEGIN" in data
              else serialization.load_der_private_key)
    try:
        key = loader(data, password=None)
    except TypeError:
        raise ConfigError(f"{where}: the private key is encrypted; give an unencrypted PEM "
                          "key") from None
    except (ValueError, UnsupportedAlgorithm):
        raise ConfigError(f"{where}: not a readable private key (expected an unencrypted PEM "
                          "RSA key, PKCS#1 or PKCS#8)") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigError(f"{where}: the key is {_kind(key)}, but digi.me contracts use RSA "
                          "(PS512)")
    if key.key_size < MIN_KEY_BITS:
        raise ConfigError(f"{where}: the RSA key has {key.key_size} bits; PS512 needs at least "
                          f"{MIN_KEY_BITS}")
    return key


def _kind(key: object) -> str:
    from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, x448, x25519
    for name, cls in (("an EC key", ec.EllipticCurvePrivateKey), ("a DSA key", dsa.DSAPrivateKey),
                      ("an Ed25519 key", ed25519.Ed25519PrivateKey),
                      ("an Ed448 key", ed448.Ed448PrivateKey),
                      ("an X25519 key", x25519.X25519PrivateKey),
                      ("an X448 key", x448.X448PrivateKey)):
        if isinstance(key, cls):
            return name
    return "not an RSA key"
