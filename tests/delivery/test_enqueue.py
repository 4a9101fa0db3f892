"""The producer API: validation before anything is stored, idempotency, bulk, delay, status."""

from __future__ import annotations

import io
import time

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from producers import DigimeWrite, JobNotFound, PayloadError, ValidationError
from worker.config import load_settings

from .conftest import deliveries, wait_for


def keys_in(redis_client) -> set[bytes]:
    return set(redis_client.scan_iter(count=1000))


@pytest.fixture
def user(mint_user):
    return mint_user()


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"file_name": ""}, "file_name must be a non-empty string"),
    ({"file_name": 'a"b'}, "file_name must not contain quotes"),
    ({"descriptor": {"mimeType": 5, "accounts": []}}, "mimeType"),
    ({"descriptor": {"mimeType": "a", "accounts": [{"id": 1}]}}, "accountId"),
    ({"descriptor": {"mimeType": "a", "accounts": [], "tags": "x"}}, "tags"),
    ({"descriptor": "not a dict"}, "descriptor"),
    ({"mode": "fax"}, "mode must be one of postbox, import"),
    ({"idempotency_key": ""}, "idempotency_key"),
    ({"delay": -1}, "delay must be from 0"),
    ({"data": 12345}, "data must be bytes, a file path or a readable binary stream"),
    ({"data": io.StringIO("text")}, "text stream"),
])
def test_invalid_input_raises_and_stores_nothing(datapost, user, redis_client, kwargs, message):
    before = keys_in(redis_client)
    args = {"data": b"x", "file_name": "f.txt"} | kwargs
    data = args.pop("data")
    with pytest.raises(ValidationError, match=message):
        datapost.enqueue_digime(user["user"], data, **args)
    assert keys_in(redis_client) == before


def test_unknown_credential_and_missing_postbox(datapost, mint_user, redis_client):
    before = keys_in(redis_client)
    with pytest.raises(ValidationError, match=r"no digi\.me credential stored for user .nobody."):
        datapost.enqueue_digime("nobody", b"x", file_name="f.txt")
    minted = mint_user(store=False)
    datapost.store_digime_credential(
        "no-postbox", access_token=minted["access_token"]["value"],
        access_expires_at=minted["access_token"]["expires_on"],
        refresh_token=minted["refresh_token"]["value"],
        refresh_expires_at=minted["refresh_token"]["expires_on"])
    with pytest.raises(ValidationError, match=r"has no digi\.me postbox"):
        datapost.enqueue_digime("no-postbox", b"x", file_name="f.txt", mode="postbox")
    assert {k for k in keys_in(redis_client) - before if b"job" in k or b"payload" in k} == set()
    # without a mode, a credential without a postbox defaults to the import push
    job_id = datapost.enqueue_digime("no-postbox", b"x", file_name="f.txt")
    assert datapost.job(job_id).op == "import"


@pytest.mark.parametrize("bad_key", [
    "not a key",
    "-----BEGIN RSA PUBLIC KEY-----\nAAAA\n-----END RSA PUBLIC KEY-----\n",
    rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.PKCS1).decode(),
    ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode(),
])
def test_malformed_or_weak_postbox_keys_are_refused(datapost, user, bad_key):
    with pytest.raises(ValidationError, match="postbox_public_key"):
        datapost.store_digime_credential(
            "bad-key-user", access_token="a" * 20, access_expires_at=int(time.time()) + 60,
            refresh_token="r" * 20, refresh_expires_at=int(time.time()) + 600,
            postbox_id="pb-1", postbox_public_key=bad_key)
    assert datapost.stores.vault.load("digime", "bad-key-user") is None


def test_oversized_and_unreadable_payloads(env, redis_url, user, redis_client, tmp_path):
    from producers import Datapost

    small = load_settings({**env, "DATAPOST_MAX_PAYLOAD_BYTES": "1000",
                           "DATAPOST_INLINE_PAYLOAD_MAX": "100"})
    with Datapost.connect(small, redis_url) as client:
        before = keys_in(redis_client)
        with pytest.raises(ValidationError, match="1000"):
            client.enqueue_digime(user["user"], b"x" * 1001, file_name="f.txt")
        with pytest.raises(ValidationError, match="1000"):
            client.enqueue_digime(user["user"], io.BytesIO(b"x" * 5000), file_name="f.txt")
        big = tmp_path / "big.bin"
        big.write_bytes(b"x" * 2000)
        with pytest.raises(ValidationError, match="larger than"):
            client.enqueue_digime(user["user"], big, file_name="f.txt")
        with pytest.raises(PayloadError, match="cannot read"):
            client.enqueue_digime(user["user"], tmp_path / "missing.bin", file_name="f.txt")
        assert keys_in(redis_client) == before
        payload_dir = small.delivery.payload_dir
        assert not payload_dir.exists() or not any(p.is_file() for p in payload_dir.rglob("*"))


@pytest.mark.rabbitmq
def test_idempotency_key_returns_the_same_job(datapost, user, sandbox, run_worker):
    first = datapost.enqueue_digime(user["user"], b"once only", file_name="a.txt",
                                    idempotency_key="order-42")
    again = datapost.enqueue_digime(user["user"], b"once only", file_name="a.txt",
                                    idempotency_key="order-42")
    assert first == again
    bulk = datapost.enqueue_many([
        DigimeWrite(user=user["user"], data=b"b", file_name="b.txt", idempotency_key="order-43"),
        DigimeWrite(user=user["user"], data=b"b", file_name="b.txt", idempotency_key="order-43"),
        DigimeWrite(user=user["user"], data=b"c", file_name="c.txt", idempotency_key="order-42"),
    ])
    assert bulk[0] == bulk[1] and bulk[2] == first
    run_worker()
    wait_for(datapost, [first, bulk[0]], {"succeeded"})
    assert len(deliveries(sandbox, user_id=user["user_id"])) == 2


@pytest.mark.rabbitmq
def test_bulk_enqueue_is_one_pipeline_and_keeps_order(datapost, user, run_worker, sandbox):
    writes = [DigimeWrite(user=user["user"], data=f"bulk {i}".encode(), file_name=f"{i}.txt")
              for i in range(50)]
    pool = datapost.stores.redis.connection_pool
    checkouts = []
    original = pool.get_connection

    def counting_get_connection(*args, **kwargs):
        checkouts.append(1)
        return original(*args, **kwargs)

    pool.get_connection = counting_get_connection
    try:
        datapost.stores.vault.load("digime", user["user"])
        per_credential = len(checkouts)
        checkouts.clear()
        ids = datapost.enqueue_many(writes)
    finally:
        pool.get_connection = original
    assert len(ids) == 50 and len(set(ids)) == 50
    # the credential read, then everything else (payloads, records, indexes, messages) in
    # one pipelined round trip
    assert len(checkouts) == per_credential + 1
    run_worker()
    wait_for(datapost, ids, {"succeeded"})
    assert len(deliveries(sandbox, user_id=user["user_id"])) == 50


@pytest.mark.rabbitmq
def test_delay_holds_the_job_back(datapost, user, run_worker):
    job_id = datapost.enqueue_digime(user["user"], b"later", file_name="d.txt", delay=2)
    run_worker()
    time.sleep(1.0)
    assert datapost.job(job_id).state == "queued"
    summary = wait_for(datapost, [job_id], {"succeeded"}, timeout=30)[job_id]
    assert summary["updated_at"] - summary["created_at"] >= 2


@pytest.mark.rabbitmq
def test_status_lookup(datapost, user, run_worker):
    job_id = datapost.enqueue_digime(user["user"], b"status", file_name="s.txt")
    status = datapost.status(job_id)
    assert status["state"] == "queued" and status["provider"] == "digime"
    assert status["attempts_log"] == []
    assert "spec" not in status and "status" not in str(status.get("result"))
    with pytest.raises(JobNotFound):
        datapost.status("0" * 32)
