"""The credential vault: one sealed record per (provider, app user) in Redis.

Every token and key lives only inside the sealed blob; the hash beside it holds what
operators list (status, version, key id, expiry). Updates that race go through Lua:

* `store` (sign-in) replaces unconditionally and bumps the version;
* `replace_tokens` is compare-and-set on the version (digi.me refresh: the rotated refresh
  token must be persisted before the new access token is used);
* `store_if_newer` writes a Dataswyft token only if its `iat` is newer than the stored one,
  so an older token never overwrites a newer one.

Layout (see `keys`): hash `datapost:cred:<provider>:<user>` with fields sealed, kid, version,
status, updated_at, expires_at, cas, provider, user and pda_domain (Dataswyft) or has_postbox
(digi.me); set `datapost:creds:<provider>` of users.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator, Sequence

import redis

from ..crypto import Keyring
from ..errors import CredentialNotFound, SealError, VaultError
from . import keys
from .credentials import (
    PROVIDERS,
    Credential,
    CredentialInfo,
    DataswyftCredential,
    aad,
    check_credential,
    check_provider,
    check_status,
    check_user,
    from_plaintext,
    to_plaintext,
)

# KEYS: record, index. ARGV: user, field/value pairs.
_STORE = """
local old = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'version', old + 1, 'status', 'active', unpack(ARGV, 2))
redis.call('SADD', KEYS[2], ARGV[1])
return old + 1
"""

# KEYS: record. ARGV: expected version, field/value pairs.
_REPLACE = """
local v = redis.call('HGET', KEYS[1], 'version')
if not v or tonumber(v) ~= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'version', tonumber(v) + 1, unpack(ARGV, 2))
return 1
"""

# KEYS: record, index. ARGV: user, iat, field/value pairs.
_STORE_IF_NEWER = """
local cas = redis.call('HGET', KEYS[1], 'cas')
if cas and tonumber(cas) >= tonumber(ARGV[2]) then return 0 end
local v = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
local status = redis.call('HGET', KEYS[1], 'status') or 'active'
redis.call('HSET', KEYS[1], 'version', v + 1, 'status', status, unpack(ARGV, 3))
redis.call('SADD', KEYS[2], ARGV[1])
return 1
"""

# KEYS: record. ARGV: status, updated_at.
_SET_STATUS = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'updated_at', ARGV[2])
return 1
"""

# KEYS: record, index. ARGV: user.
_DELETE = """
redis.call('SREM', KEYS[2], ARGV[1])
return redis.call('DEL', KEYS[1])
"""

# KEYS: record. ARGV: updated_at, cas floor. Drops every sealed field (the tokens) and leaves
# a tombstone that lists as `revoked`: the version moves on, so a refresh that read the old
# record loses its compare-and-set, and the cas floor makes `store_if_newer` refuse any
# renewed PDA token that was still in flight. A sign-in (`store`) replaces the tombstone.
_REVOKE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local keep = redis.call('HMGET', KEYS[1], 'version', 'provider', 'user')
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'version', tonumber(keep[1] or '0') + 1, 'status', 'revoked',
           'updated_at', ARGV[1], 'expires_at', 0, 'cas', ARGV[2],
           'provider', keep[2] or '', 'user', keep[3] or '')
return 1
"""

# KEYS: record. ARGV: the blob that was read, the new blob, its kid. Skips a record that
# changed in between (it was rewritten under the current key anyway).
_RESEAL = """
if redis.call('HGET', KEYS[1], 'sealed') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'sealed', ARGV[2], 'kid', ARGV[3])
return 1
"""

REVOKED_CAS = 2**62  # above any real token iat: no renewal is written over a tombstone

LOAD_FIELDS = ("sealed", "version", "status", "updated_at")  # what `load` reads
_INFO_FIELDS = ("status", "version", "kid", "updated_at", "expires_at", "pda_domain", "has_postbox")


class CredentialVault:
    """Sealed credentials in Redis. Needs a client with `decode_responses=False`."""

    def __init__(self, redis: redis.Redis, keyring: Keyring, *,
                 clock: Callable[[], float] = time.time) -> None:
        if redis.connection_pool.connection_kwargs.get("decode_responses"):
            raise ValueError("CredentialVault needs a Redis client with decode_responses=False")
        self.redis = redis
        self.keyring = keyring
        self.clock = clock
        self._store = redis.register_script(_STORE)
        self._replace = redis.register_script(_REPLACE)
        self._store_if_newer = redis.register_script(_STORE_IF_NEWER)
        self._set_status = redis.register_script(_SET_STATUS)
        self._delete = redis.register_script(_DELETE)
        self._reseal = redis.register_script(_RESEAL)
        self._revoke = redis.register_script(_REVOKE)

    # -- writes --

    def store(self, cred: Credential) -> Credential:
        """Sign-in: replace whatever is stored; returns the stored copy (new version, active)."""
        check_credential(cred)
        now = self.clock()
        key = keys.credential(cred.provider, cred.user)
        version = self._store(keys=[key, keys.credential_index(cred.provider)],
                              args=[cred.user, *self._fields(cred, now)])
        return dataclasses.replace(cred, version=int(version), status="active", updated_at=now)

    def replace_tokens(self, cred: Credential, *, expected_version: int) -> bool:
        """Write `cred` only if the stored version is still `expected_version` (then it becomes
        expected + 1). False means someone else wrote first: re-read and decide again."""
        check_credential(cred)
        key = keys.credential(cred.provider, cred.user)
        return bool(self._replace(keys=[key],
                                  args=[int(expected_version), *self._fields(cred, self.clock())]))

    def store_if_newer(self, cred: DataswyftCredential) -> bool:
        """Write a Dataswyft token only if its iat is newer than the stored one; keeps status."""
        check_credential(cred)
        if not isinstance(cred, DataswyftCredential):
            raise TypeError("store_if_newer takes a DataswyftCredential")
        key = keys.credential(cred.provider, cred.user)
        return bool(self._store_if_newer(
            keys=[key, keys.credential_index(cred.provider)],
            args=[cred.user, int(cred.token_iat), *self._fields(cred, self.clock())]))

    def set_status(self, provider: str, user: str, status: str) -> bool:
        """Mark a credential active, needs_signin or revoked; False if none is stored."""
        key = self._key(provider, user)
        check_status(status)
        return bool(self._set_status(keys=[key], args=[status, repr(self.clock())]))

    def revoke(self, provider: str, user: str) -> bool:
        """Forget a credential's tokens but keep a `revoked` entry in the listing (one atomic
        step; see _REVOKE). `load` then returns None, as for a user who never connected, so
        jobs for this user fail ("no credential") and new enqueues are refused until the user
        signs in again. False if nothing is stored."""
        key = self._key(provider, user)
        return bool(self._revoke(keys=[key], args=[repr(self.clock()), REVOKED_CAS]))

    def delete(self, provider: str, user: str) -> bool:
        key = self._key(provider, user)
        return bool(self._delete(keys=[key, keys.credential_index(provider)], args=[user]))

    # -- reads --

    def load(self, provider: str, user: str) -> Credential | None:
        """The stored credential, or None. VaultError if it cannot be opened."""
        key = self._key(provider, user)
        return self.from_row(provider, user, self.redis.hmget(key, LOAD_FIELDS))

    def from_row(self, provider: str, user: str,
                 row: Sequence[bytes | None]) -> Credential | None:
        """`load` for a row read elsewhere: the values of `LOAD_FIELDS`, in order, of the
        record at `keys.credential(provider, user)` (the job claim script reads it in the
        same round trip as the job)."""
        check_provider(provider)
        sealed, version, status, updated_at = row
        if sealed is None:
            return None
        try:
            plaintext = self.keyring.open(sealed, aad(provider, user))
            return from_plaintext(provider, plaintext, version=int(version or 0),
                                  status=(status or b"active").decode(),
                                  updated_at=float(updated_at or 0))
        except SealError as exc:
            raise VaultError(f"credential {provider}/{user} cannot be opened: {exc}") from None
        except ValueError as exc:
            raise VaultError(f"credential {provider}/{user} is malformed: {exc}") from None

    def get(self, provider: str, user: str) -> Credential:
        """Like `load`, but CredentialNotFound when nothing is stored."""
        cred = self.load(provider, user)
        if cred is None:
            raise CredentialNotFound(f"no {provider} credential for user {user}")
        return cred

    def list(self, provider: str | None = None, *, batch: int = 500) -> list[CredentialInfo]:
        """Metadata of every credential (of one provider), sorted; opens nothing."""
        infos: list[CredentialInfo] = []
        for prov in (check_provider(provider),) if provider else PROVIDERS:
            for users in self._user_batches(prov, batch):
                pipe = self.redis.pipeline(transaction=False)
                for user in users:
                    pipe.hmget(keys.credential(prov, user), _INFO_FIELDS)
                for user, row in zip(users, pipe.execute(), strict=True):
                    if row[0] is not None:
                        infos.append(_info(prov, user, row))
        return sorted(infos, key=lambda i: (i.provider, i.user))

    # -- rotation --

    def reseal(self, batch: int = 500) -> int:
        """Re-seal every record not under the current key; returns how many moved.

        Records that cannot be opened (their key is gone) are skipped, then reported in one
        VaultError after the rest are done.
        """
        moved, failed = 0, []
        current = self.keyring.current_kid
        for provider in PROVIDERS:
            for users in self._user_batches(provider, batch):
                read = self.redis.pipeline(transaction=False)
                for user in users:
                    read.hget(keys.credential(provider, user), "sealed")
                write = self.redis.pipeline(transaction=False)
                for user, sealed in zip(users, read.execute(), strict=True):
                    if sealed is None or self._kid_or_none(sealed) == current:
                        continue
                    try:
                        plaintext = self.keyring.open(sealed, aad(provider, user))
                    except SealError as exc:
                        failed.append(f"{provider}/{user}: {exc}")
                        continue
                    fresh = self.keyring.seal(plaintext, aad(provider, user))
                    self._reseal(keys=[keys.credential(provider, user)],
                                 args=[sealed, fresh, current], client=write)
                moved += sum(int(r) for r in write.execute())
        if failed:
            raise VaultError(f"resealed {moved} credential(s); {len(failed)} could not be opened, "
                             f"first {failed[0]}")
        return moved

    # -- helpers --

    def _key(self, provider: str, user: str) -> str:
        return keys.credential(check_provider(provider), check_user(user))

    def _fields(self, cred: Credential, now: float) -> list[str | bytes | int]:
        """Field/value pairs written with every sealed credential (version and status aside)."""
        sealed = self.keyring.seal(to_plaintext(cred), aad(cred.provider, cred.user))
        pairs: dict[str, str | bytes | int] = {
            "sealed": sealed, "kid": self.keyring.current_kid, "updated_at": repr(now),
            "expires_at": int(cred.expires_at), "cas": int(cred.cas),
            "provider": cred.provider, "user": cred.user, **cred.metadata(),
        }
        return [item for pair in pairs.items() for item in pair]

    def _user_batches(self, provider: str, size: int) -> Iterator[list[str]]:
        users: list[str] = []
        seen: set[bytes] = set()  # SSCAN may return a member twice
        for member in self.redis.sscan_iter(keys.credential_index(provider), count=size):
            if member in seen:
                continue
            seen.add(member)
            users.append(member.decode())
            if len(users) >= size:
                yield users
                users = []
        if users:
            yield users

    @staticmethod
    def _kid_or_none(sealed: bytes) -> str | None:
        try:
            return Keyring.kid_of(sealed)
        except SealError:
            return None


def _info(provider: str, user: str, row: list[bytes | None]) -> CredentialInfo:
    status, version, kid, updated_at, expires_at, pda_domain, has_postbox = row
    return CredentialInfo(
        provider=provider, user=user, status=(status or b"").decode(),
        version=int(version or 0), kid=(kid or b"").decode(), updated_at=float(updated_at or 0),
        expires_at=int(expires_at or 0),
        pda_domain=pda_domain.decode() if pda_domain is not None else None,
        has_postbox=(has_postbox == b"1") if provider == "digime" else None,
    )
