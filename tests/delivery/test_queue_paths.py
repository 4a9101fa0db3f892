"""Queue paths that differ by broker: graceful shutdown, the sweeper, and RabbitMQ's
long delays (in hops) and shared publishing connection."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest
from dramatiq.brokers.rabbitmq import RabbitmqBroker

from worker.queue import DatapostRabbitmqBroker

from .conftest import deliveries, wait_for


@pytest.fixture(autouse=True)
def no_faults(sandbox):
    sandbox.control("DELETE", "/faults")
    yield
    sandbox.control("DELETE", "/faults")


def messages_left(datapost) -> int:
    """Messages the broker still holds for the queue: ready, delayed or delivered but not
    acknowledged (RabbitMQ returns unacked messages to ready once their consumer is gone)."""
    broker, queue = datapost.publisher.broker, datapost.publisher.queue
    if isinstance(broker, RabbitmqBroker):
        return sum(broker.get_queue_message_counts(queue))
    prefix = f"{broker.namespace}:{queue}"
    return broker.client.hlen(f"{prefix}.msgs") + broker.client.hlen(f"{prefix}.DQ.msgs")


@pytest.mark.rabbitmq
def test_sigterm_finishes_the_running_job_and_acknowledges_it(sandbox, datapost, mint_user,
                                                              spawn_worker):
    user = mint_user()
    sandbox.control("POST", "/faults", json={"target": "digime", "path": "permission-access/postbox",
                                             "delay_ms": 3000, "times": 1})
    job_id = datapost.enqueue_digime(user["user"], b"finish me", file_name="term.txt")
    worker = spawn_worker(threads=1)
    deadline = time.monotonic() + 60
    while datapost.job(job_id).state != "running":
        assert time.monotonic() < deadline, "the worker never picked the job up"
        time.sleep(0.05)
    time.sleep(0.5)  # the upload is waiting at the sandbox
    os.kill(worker.pid, signal.SIGTERM)  # as docker/k8s stop it: `datapost worker` passes it on
    assert worker.wait(60) == 0
    summary = datapost.job(job_id).summary()
    assert summary["state"] == "succeeded" and summary["runs"] == 1
    assert len(deliveries(sandbox, user_id=user["user_id"])) == 1
    assert messages_left(datapost) == 0  # acknowledged before the process left


@pytest.mark.rabbitmq
def test_the_sweeper_resends_a_lost_message(datapost, mint_user, run_worker):
    user = mint_user()
    job_id = datapost.enqueue_digime(user["user"], b"lost", file_name="lost.txt")
    datapost.publisher.broker.flush(datapost.publisher.queue)  # the message is gone
    worker = run_worker()
    time.sleep(0.5)
    assert datapost.job(job_id).state == "queued"
    # the recovery thread runs the sweep; any thread other than the workers' will do
    sweeper = threading.Thread(target=worker.service.engine.sweep, kwargs={"grace": 0})
    sweeper.start()
    sweeper.join(30)
    wait_for(datapost, [job_id], {"succeeded"}, timeout=30)


@pytest.mark.rabbitmq(only=True)
def test_long_delays_travel_in_hops(datapost, mint_user, run_worker, monkeypatch):
    monkeypatch.setattr("worker.queue.RABBITMQ_HOP_MS", 700)
    hops: list[int | None] = []
    original = DatapostRabbitmqBroker.next_hop

    def spy(message, delay, now=None):
        out = original(message, delay, now)
        hops.append(out[1])
        return out

    monkeypatch.setattr(DatapostRabbitmqBroker, "next_hop", staticmethod(spy))
    user = mint_user()
    job_id = datapost.enqueue_digime(user["user"], b"much later", file_name="hop.txt", delay=2.5)
    run_worker()
    time.sleep(1.5)  # past the first hop
    assert datapost.job(job_id).state == "queued"
    summary = wait_for(datapost, [job_id], {"succeeded"}, timeout=30)[job_id]
    assert summary["updated_at"] - summary["created_at"] >= 2.5
    delays = [d for d in hops if d is not None]
    assert len(delays) >= 4 and max(delays) <= 700, hops  # 700, 700, 700, ~400
    assert hops[-1] is None  # the last hop goes to the queue itself


@pytest.mark.rabbitmq(only=True)
def test_publishing_threads_share_one_connection_that_any_thread_can_close(datapost, mint_user,
                                                                           run_worker):
    user = mint_user()
    broker = datapost.publisher.broker
    ids: list[str] = []

    def enqueue(i: int) -> None:
        ids.append(datapost.enqueue_digime(user["user"], f"t{i}".encode(), file_name="t.txt"))

    for batch in range(3):  # short-lived threads, as in a web server's pool
        threads = [threading.Thread(target=enqueue, args=(batch * 10 + i,)) for i in range(10)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert len(ids) == 30 and len(broker.connections) == 1
    closer = threading.Thread(target=broker.close)
    closer.start()
    closer.join()
    assert not broker.connections
    ids.append(datapost.enqueue_digime(user["user"], b"after close", file_name="t.txt"))
    run_worker()
    wait_for(datapost, ids, {"succeeded"})
    assert messages_left(datapost) == 0
