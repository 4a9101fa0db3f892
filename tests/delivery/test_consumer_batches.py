"""The Redis consumer fetches in batches: nothing while more than half its prefetch is held,
then the rest of the prefetch in one fetch."""

from __future__ import annotations

import uuid

import dramatiq

from worker.queue import DatapostRedisBroker


def test_consumer_refills_only_below_half_its_prefetch(redis_url):
    broker = DatapostRedisBroker(url=redis_url, namespace=f"test-{uuid.uuid4().hex[:8]}")
    queue = "batches"
    broker.declare_queue(queue)
    try:
        for i in range(40):
            broker.enqueue(dramatiq.Message(queue_name=queue, actor_name="a", args=(i,),
                                            kwargs={}, options={}))
        consumer = broker.consume(queue, prefetch=16, timeout=10)
        held = [next(consumer) for _ in range(16)]  # one fetch of 16
        assert all(m is not None for m in held) and not consumer.message_cache
        for message in held[:7]:
            consumer.ack(message)
        assert next(consumer) is None  # 9 held: no fetch of 7 single messages
        assert consumer.outstanding_message_count == 9
        consumer.ack(held[7])
        assert next(consumer) is not None  # 8 held: the other 8 come in one fetch
        assert len(consumer.message_cache) == 7
        for message in held[8:]:
            consumer.ack(message)
        consumer.close()
    finally:
        broker.flush_all()
        broker.close()
