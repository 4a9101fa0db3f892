"""Bulk job creation (`JobStore.create_many`, the create script) against a real Redis: records,
indexes, events, payloads and messages per job; idempotency across and within calls; calls
split into chunks; failures."""

from __future__ import annotations

import json
import os

import pytest
import redis

from worker.crypto import Keyring
from worker.store.jobs import (
    PREFIX,
    JobState,
    JobStore,
    NewJob,
    QueuedMessage,
    new_job_id,
    new_job_ids,
    parse_create,
)

QUEUE = "test-ns:default"
NOW = 1_700_000_000.25


@pytest.fixture
def keyring() -> Keyring:
    return Keyring(os.urandom(32))


@pytest.fixture
def jobs(redis_client: redis.Redis, keyring: Keyring) -> JobStore:
    return JobStore(redis_client, keyring)


def new(job_id: str | None = None, *, key: str | None = None, delay: float = 0.0,
        message: bool = True, payload: bytes | None = b"sealed-bytes", user: str = "alice",
        provider: str = "digime") -> NewJob:
    job_id = job_id or new_job_id()
    return NewJob(job_id=job_id, provider=provider, op="postbox", user=user,
                  spec={"file_name": f"{job_id}.txt", "descriptor": {"mimeType": "text/plain"}},
                  payload_fields={"payload_kind": "inline", "payload_size": 12},
                  idempotency_key=key, run_at=NOW + delay if delay else 0.0,
                  message=QueuedMessage(QUEUE, f"msg-{job_id}", f"message of {job_id}".encode())
                  if message else None, payload=payload)


def queued_messages(client: redis.Redis) -> list[bytes]:
    return client.lrange(QUEUE, 0, -1)


def test_each_job_is_created_whole(jobs, redis_client):
    batch = [new(), new(delay=30), new(payload=None, user="bob ü")]
    result = jobs.create_many(batch, now=NOW)
    assert result == [(True, j.job_id) for j in batch]
    for job in batch:
        stored = jobs.require(job.job_id)
        assert (stored.state, stored.provider, stored.op, stored.user) == \
            (JobState.QUEUED, "digime", "postbox", job.user)
        assert stored.spec == job.spec
        assert (stored.created_at, stored.updated_at) == (NOW, NOW)
        assert (stored.attempts, stored.throttles, stored.runs) == (0, 0, 0)
        assert (stored.payload_kind, stored.payload_size) == ("inline", 12)
        assert stored.run_at == job.run_at
        raw = redis_client.hgetall(jobs.key(job.job_id))
        assert b"file_name" not in raw[b"spec"]  # sealed, never clear
    assert redis_client.get(f"{PREFIX}payload:{batch[0].job_id}") == b"sealed-bytes"
    assert redis_client.get(f"{PREFIX}payload:{batch[2].job_id}") is None  # a file payload
    assert jobs.ids_in_state(JobState.QUEUED) == sorted(j.job_id for j in batch)
    due = dict(redis_client.zrange(f"{PREFIX}due", 0, -1, withscores=True))
    assert due[batch[0].job_id.encode()] == NOW and due[batch[1].job_id.encode()] == NOW + 30
    assert queued_messages(redis_client) == [f"msg-{j.job_id}".encode() for j in batch]
    assert redis_client.hget(f"{QUEUE}.msgs", f"msg-{batch[1].job_id}") == \
        f"message of {batch[1].job_id}".encode()
    events = list(reversed(jobs.events()))
    assert [(e["job"], e["from"], e["to"], e["provider"], e["at"]) for e in events] == \
        [(j.job_id, "", "queued", "digime", repr(NOW)) for j in batch]


def test_idempotency_keys_across_and_within_calls(jobs, redis_client):
    first = new(key="order-1")
    assert jobs.create_many([first], now=NOW) == [(True, first.job_id)]
    batch = [new(key="order-2"), new(key="order-1"), new(), new(key="order-2"),
             new(key="order-2", provider="dataswyft")]
    result = jobs.create_many(batch, now=NOW)
    assert result == [(True, batch[0].job_id), (False, first.job_id), (True, batch[2].job_id),
                      (False, batch[0].job_id), (True, batch[4].job_id)]  # keys are per provider
    for duplicate in (batch[1], batch[3]):  # nothing of a duplicate is stored
        assert jobs.get(duplicate.job_id) is None
        assert redis_client.get(f"{PREFIX}payload:{duplicate.job_id}") is None
        assert redis_client.hget(f"{QUEUE}.msgs", f"msg-{duplicate.job_id}") is None
    assert len(queued_messages(redis_client)) == 4
    assert len(jobs.ids_in_state(JobState.QUEUED)) == 4
    assert len(jobs.events(100)) == 4
    assert jobs.find_idempotent("digime", ["order-1", "order-2", "order-3"]) == \
        [first.job_id, batch[0].job_id, None]
    assert 0 < redis_client.ttl(jobs.idempotency_key("digime", "order-2")) <= jobs.idempotency_ttl
    assert jobs.require(batch[0].job_id).idempotency_key == "order-2"


@pytest.mark.parametrize(("chunk", "chunk_bytes"), [(1, 1 << 20), (3, 1 << 20), (500, 1)])
def test_calls_split_into_chunks_keep_order_and_keys(jobs, redis_client, chunk, chunk_bytes):
    batch = [new(key=f"k{i % 4}" if i % 3 == 0 else None) for i in range(10)]
    result = jobs.create_many(batch, now=NOW, chunk=chunk, chunk_bytes=chunk_bytes)
    assert result == jobs_in_order(batch)
    created = [j.job_id for j in batch if (True, j.job_id) in result]
    assert queued_messages(redis_client) == [f"msg-{i}".encode() for i in created]


def jobs_in_order(batch: list[NewJob]) -> list[tuple[bool, str]]:
    """What create_many must answer for `batch` in an empty store."""
    holders: dict[str, str] = {}
    out = []
    for job in batch:
        if job.idempotency_key and job.idempotency_key in holders:
            out.append((False, holders[job.idempotency_key]))
            continue
        if job.idempotency_key:
            holders[job.idempotency_key] = job.job_id
        out.append((True, job.job_id))
    return out


def test_without_messages_nothing_is_queued(jobs, redis_client):
    """The RabbitMQ path: the caller publishes after creating."""
    batch = [new(message=False) for _ in range(3)]
    assert jobs.create_many(batch, now=NOW) == [(True, j.job_id) for j in batch]
    assert not redis_client.exists(QUEUE, f"{QUEUE}.msgs")
    assert len(jobs.ids_in_state(JobState.QUEUED)) == 3


def test_single_create_and_pipelined_create(jobs, redis_client):
    job_id = new_job_id()
    kwargs = {"provider": "digime", "op": "import", "user": "u", "spec": {"a": 1},
              "payload_fields": {"payload_kind": "inline", "payload_size": 1}}
    assert jobs.create(job_id=job_id, idempotency_key="one", **kwargs) == (True, job_id)
    assert jobs.create(job_id=new_job_id(), idempotency_key="one", **kwargs) == (False, job_id)
    pipe = redis_client.pipeline(transaction=False)
    other = new_job_id()
    assert jobs.create(job_id=other, pipe=pipe, **kwargs) is None
    assert parse_create(pipe.execute()[0]) == (True, other)
    assert jobs.require(other).spec == {"a": 1}


def test_a_failing_call_is_raised_after_the_others_ran(jobs, redis_client):
    redis_client.hset(jobs.idempotency_key("digime", "broken"), "x", "y")  # GET fails on it
    batch = [new(), new(), new(key="broken"), new(), new(), new()]
    with pytest.raises(redis.ResponseError, match="WRONGTYPE") as failure:
        jobs.create_many(batch, now=NOW, chunk=2)
    ok = [batch[i].job_id for i in (0, 1, 4, 5)]
    assert failure.value.created == ok  # the other calls ran
    assert jobs.ids_in_state(JobState.QUEUED) == sorted(ok)
    assert queued_messages(redis_client) == [f"msg-{i}".encode() for i in ok]
    # the connection went back to the pool in step
    assert jobs.create_many([new()], now=NOW)[0][0] is True
    assert redis_client.ping()


def test_a_job_that_cannot_be_encoded_stops_before_its_call(jobs, redis_client):
    good = [new() for _ in range(2)]
    bad = new()._replace(spec={"not json": object()})
    with pytest.raises(TypeError) as failure:
        jobs.create_many([*good, bad, new()], now=NOW, chunk=2)
    assert failure.value.created == [j.job_id for j in good]
    assert [jobs.get(j.job_id) is not None for j in good] == [True, True]
    assert jobs.get(bad.job_id) is None
    assert jobs.create_many([new()], now=NOW)[0][0] is True


def test_an_empty_batch_does_nothing(jobs):
    assert jobs.create_many([]) == []


def test_bulk_ids_are_random_uuid4_hex():
    import uuid

    ids = new_job_ids(200)
    assert len(set(ids)) == 200
    for job_id in ids:
        parsed = uuid.UUID(hex=job_id)
        assert parsed.hex == job_id and parsed.version == 4 and parsed.variant == uuid.RFC_4122


def test_header_survives_any_text(jobs):
    odd = 'quote " back \\ slash, comma \u2028 and \U0001f600'
    job = new(user=odd, key=odd)
    assert jobs.create_many([job], now=NOW) == [(True, job.job_id)]
    stored = jobs.require(job.job_id)
    assert (stored.user, stored.idempotency_key) == (odd, odd)
    assert json.loads(json.dumps(stored.spec)) == job.spec
