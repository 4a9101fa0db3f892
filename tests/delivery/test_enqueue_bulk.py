"""Bulk enqueue through the producer API: batches larger than one create call, idempotency
keys repeated within a batch and across batches, file payloads of duplicates, the queue
messages written with the jobs (Redis broker) and published after them (RabbitMQ)."""

from __future__ import annotations

import dramatiq
import pytest

from producers import DigimeWrite, ValidationError
from producers.client import InlineMessages
from worker.queue import ACTOR_NAME, MAX_DELAY_MS, Publisher
from worker.store.jobs import CREATE_CHUNK

from .conftest import deliveries, wait_for


@pytest.fixture
def user(mint_user):
    return mint_user()


def redis_queue_ids(datapost, queue_key: str) -> list[bytes]:
    return datapost.stores.redis.lrange(queue_key, 0, -1)


def test_inline_messages_match_the_publishers(datapost):
    publisher: Publisher = datapost.publisher
    messages = InlineMessages(publisher, 3)
    if not publisher.inline:  # RabbitMQ: the publisher sends after the jobs exist
        assert messages.build("0123456789abcdef0123456789abcdef", 0.0) is None
        return
    for delay in (0.0, 2.5, 10 * 86400.0):
        ours = messages.build("0123456789abcdef0123456789abcdef", delay)
        theirs = publisher.inline_message("0123456789abcdef0123456789abcdef",
                                          int(delay * 1000) or None)
        assert ours.queue_key == theirs.queue_key
        a, b = dramatiq.Message.decode(ours.data), dramatiq.Message.decode(theirs.data)
        assert (a.queue_name, a.actor_name, a.args, a.kwargs) == \
            (b.queue_name, b.actor_name, b.args, b.kwargs) == \
            (b.queue_name, ACTOR_NAME, ("0123456789abcdef0123456789abcdef",), {})
        assert a.options["redis_message_id"] == ours.message_id != a.message_id
        assert set(a.options) == set(b.options)
        if delay:
            assert abs(a.options["eta"] - b.options["eta"]) < 1000
            assert a.options["eta"] - a.message_timestamp <= MAX_DELAY_MS
        assert abs(a.message_timestamp - b.message_timestamp) < 1000


@pytest.mark.rabbitmq
def test_a_large_batch_with_repeated_keys(datapost, user, run_worker, sandbox, tmp_path):
    before = datapost.enqueue_digime(user["user"], b"earlier", file_name="e.txt",
                                     idempotency_key="earlier")
    big = tmp_path / "big.bin"
    big.write_bytes(b"b" * (datapost.stores.payloads.inline_limit + 10))
    count = CREATE_CHUNK + 60  # more than one create call
    writes = []
    for i in range(count):
        key = None
        if i % 10 == 0:
            key = f"every-tenth-{i // 20}"  # each key twice, 10 writes apart
        writes.append(DigimeWrite(user=user["user"], data=f"w{i}".encode(), file_name=f"{i}.txt",
                                  idempotency_key=key))
    writes.append(DigimeWrite(user=user["user"], data=big, file_name="big.bin",
                              idempotency_key="earlier"))  # a duplicate with a file payload
    writes.append(DigimeWrite(user=user["user"], data=big, file_name="big.bin",
                              idempotency_key="big-once"))
    ids = datapost.enqueue_many(writes)
    assert len(ids) == len(writes)
    for i in range(0, count, 20):
        assert ids[i] == ids[i + 10] != ids[i + 1]
    assert ids[-2] == before
    expected = {before} | set(ids)
    assert len(set(ids)) == len(writes) - count // 20  # the earlier key counts once
    payload_files = list(datapost.stores.payloads.directory.rglob("*.sealed"))
    assert [p.stem for p in payload_files] == [ids[-1]]  # the duplicate's file is gone
    if datapost.publisher.inline:
        queue_key = f"{datapost.publisher.broker.namespace}:{datapost.publisher.queue}"
        assert len(redis_queue_ids(datapost, queue_key)) == len(expected)
    run_worker()
    wait_for(datapost, sorted(expected), {"succeeded"}, timeout=120)
    assert len(deliveries(sandbox, user_id=user["user_id"])) == len(expected)


def test_invalid_write_in_a_large_batch_stores_nothing(datapost, user, redis_client):
    before = set(redis_client.scan_iter(count=1000))
    writes = [DigimeWrite(user=user["user"], data=b"x", file_name=f"{i}.txt")
              for i in range(CREATE_CHUNK * 2)]
    writes.append(DigimeWrite(user=user["user"], data=b"x", file_name=""))
    with pytest.raises(ValidationError, match="file_name"):
        datapost.enqueue_many(writes)
    assert set(redis_client.scan_iter(count=1000)) == before


@pytest.mark.parametrize("descriptor", [
    {"mimeType": "application/octet-stream", "accounts": [{"id": 1}]},
    {"mimeType": "application/octet-stream", "accounts": "none"},
    {"mimeType": "application/octet-stream", "accounts": [], "tags": "x"},
    {"mimeType": b"application/octet-stream", "accounts": []},
])
def test_descriptors_like_the_default_are_still_checked(descriptor):
    with pytest.raises(ValidationError, match="file descriptor"):
        DigimeWrite(user="u", data=b"x", file_name="f.txt", descriptor=descriptor).validated()
    default = DigimeWrite(user="u", data=b"x", file_name="f.txt").validated()
    assert default.descriptor == {"mimeType": "application/octet-stream", "accounts": []}


def test_a_bad_user_is_refused_every_time():
    for _ in range(2):  # the check is remembered for good names only
        with pytest.raises(ValidationError, match="control characters"):
            DigimeWrite(user="bad\nuser", data=b"x", file_name="f.txt").validated()
    with pytest.raises(ValidationError, match="user must be"):
        DigimeWrite(user=["not", "a", "string"], data=b"x", file_name="f.txt").validated()
