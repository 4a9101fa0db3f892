"""The credential vault against a real Redis: round trips, CAS races, rotation, tampering."""

from __future__ import annotations

import os
import random
import secrets
import threading
from collections.abc import Callable
from typing import Any

import pytest
import redis

from worker.crypto import Keyring
from worker.errors import CredentialNotFound, ValidationError, VaultError
from worker.store import CredentialVault, DataswyftCredential, DigimeCredential, keys


@pytest.fixture
def keyring() -> Keyring:
    return Keyring(os.urandom(32))


@pytest.fixture
def vault(redis_client: redis.Redis, keyring: Keyring) -> CredentialVault:
    return CredentialVault(redis_client, keyring)


def digime(user: str = "alice", **overrides: Any) -> DigimeCredential:
    fields: dict[str, Any] = dict(
        user=user, access_token="at-" + secrets.token_hex(16), access_expires_at=2_000_000_000,
        refresh_token="rt-" + secrets.token_hex(16), refresh_expires_at=2_100_000_000,
        postbox_id="pb-" + secrets.token_hex(4), postbox_public_key=None,
        digime_user_id="du-1", consent_id="c-1")
    return DigimeCredential(**{**fields, **overrides})


def dataswyft(user: str = "bob", iat: int = 1_700_000_000, **overrides: Any) -> DataswyftCredential:
    fields: dict[str, Any] = dict(
        user=user, pda_domain=f"{user}.hubat.net", token="tok-" + secrets.token_hex(16),
        token_iat=iat, token_exp=iat + 30 * 86400, application_id="app-1")
    return DataswyftCredential(**{**fields, **overrides})


def race(count: int, work: Callable[[int], Any]) -> list[Any]:
    """Run `work(i)` in `count` threads released together; returns the results in order."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count
    errors: list[BaseException] = []

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work(i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    return results


# -- round trips --

def test_store_and_load_digime(vault: CredentialVault) -> None:
    cred = digime(postbox_public_key="-----BEGIN RSA PUBLIC KEY-----\nMIIB\n-----END RSA PUBLIC KEY-----\n")
    stored = vault.store(cred)
    assert stored.version == 1 and stored.status == "active" and stored.updated_at > 0
    loaded = vault.load("digime", "alice")
    assert loaded == stored
    assert loaded.provider == "digime" and loaded.expires_at == cred.access_expires_at


def test_store_and_load_dataswyft(vault: CredentialVault) -> None:
    stored = vault.store(dataswyft())
    assert vault.load("dataswyft", "bob") == stored
    assert vault.load("digime", "bob") is None


def test_store_replaces_and_bumps_the_version(vault: CredentialVault) -> None:
    vault.store(digime())
    vault.set_status("digime", "alice", "needs_signin")
    again = vault.store(digime(postbox_id=None))
    assert again.version == 2 and again.status == "active"
    loaded = vault.load("digime", "alice")
    assert loaded.version == 2 and loaded.status == "active" and loaded.postbox_id is None
    assert loaded.access_token == again.access_token


def test_missing_credential(vault: CredentialVault) -> None:
    assert vault.load("digime", "nobody") is None
    with pytest.raises(CredentialNotFound, match=r"digime.*nobody"):
        vault.get("digime", "nobody")


def test_users_with_colons_and_unicode(vault: CredentialVault) -> None:
    for user in ("team:alice", "ünïcødé user", "a" * 200):
        vault.store(dataswyft(user))
        assert vault.load("dataswyft", user).user == user


def test_repr_hides_tokens() -> None:
    cred = digime(postbox_public_key="-----BEGIN RSA PUBLIC KEY-----\nAAAA\n-----END RSA PUBLIC KEY-----")
    text = repr(cred) + str(cred)
    assert cred.access_token not in text and cred.refresh_token not in text
    assert "BEGIN" not in text and "access_token='***'" in text and "user='alice'" in text
    ds = dataswyft()
    assert ds.token not in repr(ds) and "token='***'" in repr(ds) and "bob.hubat.net" in repr(ds)


# -- validation --

@pytest.mark.parametrize("user", ["", "x" * 201, "a\nb", "a\x00b", "a\u200bb", "tab\there", 42])
def test_invalid_users_are_refused(vault: CredentialVault, user: Any) -> None:
    with pytest.raises(ValidationError):
        vault.store(dataswyft(user=user))
    with pytest.raises(ValidationError):
        vault.load("dataswyft", user)


def test_invalid_provider_status_and_type(vault: CredentialVault) -> None:
    with pytest.raises(ValidationError, match="unknown provider"):
        vault.load("facebook", "alice")
    vault.store(digime())
    with pytest.raises(ValidationError, match="status"):
        vault.set_status("digime", "alice", "sleeping")
    with pytest.raises(ValidationError):
        vault.store({"user": "alice"})  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        vault.store_if_newer(digime())  # type: ignore[arg-type]


def test_a_decoding_client_is_refused(redis_url: str, keyring: Keyring) -> None:
    with pytest.raises(ValueError, match="decode_responses"):
        CredentialVault(redis.Redis.from_url(redis_url, decode_responses=True), keyring)


# -- compare-and-set --

def test_replace_tokens_compare_and_set(vault: CredentialVault) -> None:
    stored = vault.store(digime())
    refreshed = digime(refresh_token="rt-new", access_token="at-new")
    assert vault.replace_tokens(refreshed, expected_version=stored.version)
    loaded = vault.load("digime", "alice")
    assert loaded.version == 2 and loaded.refresh_token == "rt-new"
    assert not vault.replace_tokens(digime(refresh_token="rt-stale"), expected_version=1)
    assert vault.load("digime", "alice").refresh_token == "rt-new"
    assert not vault.replace_tokens(digime("carol"), expected_version=0)
    assert vault.load("digime", "carol") is None


def test_replace_tokens_keeps_the_status(vault: CredentialVault) -> None:
    vault.store(digime())
    vault.set_status("digime", "alice", "revoked")
    assert vault.replace_tokens(digime(), expected_version=1)
    assert vault.load("digime", "alice").status == "revoked"


def test_concurrent_replace_tokens_exactly_one_wins(vault: CredentialVault) -> None:
    stored = vault.store(digime())
    candidates = [digime(refresh_token=f"rt-{i}") for i in range(20)]
    results = race(20, lambda i: vault.replace_tokens(candidates[i], expected_version=stored.version))
    assert results.count(True) == 1
    winner = candidates[results.index(True)]
    loaded = vault.load("digime", "alice")
    assert loaded.version == stored.version + 1
    assert loaded.refresh_token == winner.refresh_token


def test_store_if_newer_ordering(vault: CredentialVault) -> None:
    first = dataswyft(iat=1000)
    assert vault.store_if_newer(first)  # nothing stored yet
    assert vault.load("dataswyft", "bob").status == "active"
    assert not vault.store_if_newer(dataswyft(iat=999))
    assert not vault.store_if_newer(dataswyft(iat=1000))
    assert vault.load("dataswyft", "bob").token == first.token
    newer = dataswyft(iat=1001)
    vault.set_status("dataswyft", "bob", "needs_signin")
    assert vault.store_if_newer(newer)
    loaded = vault.load("dataswyft", "bob")
    assert loaded.token == newer.token and loaded.version == 2 and loaded.status == "needs_signin"
    assert [i.user for i in vault.list("dataswyft")] == ["bob"]


def test_concurrent_store_if_newer_leaves_the_newest(vault: CredentialVault) -> None:
    for round_ in range(3):
        iats = list(range(5000 + 100 * round_, 5020 + 100 * round_))
        random.shuffle(iats)
        creds = [dataswyft(iat=iat) for iat in iats]
        results = race(20, lambda i, creds=creds: vault.store_if_newer(creds[i]))
        assert any(results)
        newest = max(creds, key=lambda c: c.token_iat)
        loaded = vault.load("dataswyft", "bob")
        assert loaded.token_iat == newest.token_iat and loaded.token == newest.token
        assert results[creds.index(newest)] is True


# -- status, delete, list --

def test_set_status_and_delete(vault: CredentialVault, redis_client: redis.Redis) -> None:
    assert not vault.set_status("digime", "alice", "revoked")
    vault.store(digime())
    assert vault.set_status("digime", "alice", "needs_signin")
    assert vault.load("digime", "alice").status == "needs_signin"
    assert vault.delete("digime", "alice")
    assert not vault.delete("digime", "alice")
    assert vault.load("digime", "alice") is None
    assert redis_client.keys("*") == []


def test_list_shows_metadata_only(vault: CredentialVault, keyring: Keyring) -> None:
    a = vault.store(digime("alice"))
    vault.store(digime("carol", postbox_id=None))
    b = vault.store(dataswyft("bob"))
    vault.set_status("digime", "carol", "needs_signin")
    infos = vault.list()
    assert [(i.provider, i.user) for i in infos] == [
        ("dataswyft", "bob"), ("digime", "alice"), ("digime", "carol")]
    bob, alice, carol = infos
    assert bob.pda_domain == "bob.hubat.net" and bob.has_postbox is None
    assert bob.expires_at == b.token_exp and bob.kid == keyring.current_kid and bob.version == 1
    assert alice.has_postbox is True and carol.has_postbox is False and alice.pda_domain is None
    assert alice.expires_at == a.access_expires_at and carol.status == "needs_signin"
    assert alice.updated_at == pytest.approx(a.updated_at)
    text = repr(infos)
    assert a.access_token not in text and a.refresh_token not in text and b.token not in text
    assert [i.user for i in vault.list("digime")] == ["alice", "carol"]


def test_list_in_batches(vault: CredentialVault) -> None:
    for n in range(23):
        vault.store(dataswyft(f"user{n:02}"))
    assert [i.user for i in vault.list("dataswyft", batch=5)] == [f"user{n:02}" for n in range(23)]


# -- binding and tampering --

def test_a_blob_swapped_between_users_does_not_open(vault: CredentialVault,
                                                    redis_client: redis.Redis) -> None:
    alice = vault.store(digime("alice"))
    vault.store(digime("mallory"))
    blob = redis_client.hget(keys.credential("digime", "alice"), "sealed")
    redis_client.hset(keys.credential("digime", "mallory"), "sealed", blob)
    with pytest.raises(VaultError) as info:
        vault.load("digime", "mallory")
    message = str(info.value)
    assert "digime/mallory" in message and "authentication" in message
    assert alice.access_token not in message and alice.refresh_token not in message


def test_a_tampered_blob_does_not_open(vault: CredentialVault, redis_client: redis.Redis) -> None:
    vault.store(dataswyft())
    key = keys.credential("dataswyft", "bob")
    blob = bytearray(redis_client.hget(key, "sealed"))
    blob[30] ^= 1
    redis_client.hset(key, "sealed", bytes(blob))
    with pytest.raises(VaultError, match="dataswyft/bob"):
        vault.load("dataswyft", "bob")


# -- rotation --

def test_rotation_and_reseal(redis_client: redis.Redis) -> None:
    old, new = os.urandom(32), os.urandom(32)
    before = CredentialVault(redis_client, Keyring(old))
    stored = [before.store(digime(f"d{n}")) for n in range(4)] + \
             [before.store(dataswyft(f"p{n}")) for n in range(3)]
    old_kid = Keyring(old).current_kid

    rotated = CredentialVault(redis_client, Keyring(new, [old]))
    assert {i.kid for i in rotated.list()} == {old_kid}
    assert rotated.load("digime", "d0") == stored[0]
    rotated.store(digime("d9"))  # new writes use the new key at once
    assert rotated.reseal(batch=2) == 7
    assert {i.kid for i in rotated.list()} == {rotated.keyring.current_kid}
    assert rotated.reseal() == 0

    after = CredentialVault(redis_client, Keyring(new))  # old key retired
    for cred in stored:
        loaded = after.load(cred.provider, cred.user)
        assert loaded == cred  # version untouched: tokens did not change


def test_reseal_reports_records_it_cannot_open(redis_client: redis.Redis) -> None:
    lost, old, new = os.urandom(32), os.urandom(32), os.urandom(32)
    CredentialVault(redis_client, Keyring(lost)).store(digime("gone"))
    CredentialVault(redis_client, Keyring(old)).store(digime("kept"))
    vault = CredentialVault(redis_client, Keyring(new, [old]))
    with pytest.raises(VaultError, match=r"resealed 1 .*1 could not be opened, first digime/gone"):
        vault.reseal()
    assert vault.load("digime", "kept").user == "kept"
    with pytest.raises(VaultError, match="not in the keyring"):
        vault.load("digime", "gone")
