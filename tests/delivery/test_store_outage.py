"""Redis going away under a worker (issue 7's chaos findings): the result of an upload that
landed is written once Redis is back, a message whose run met the outage is retried rather
than dead-lettered, and a running job orphaned for minutes is re-sent by the sweeper."""

from __future__ import annotations

import threading
import time

import pytest
import redis

from worker.delivery.engine import ORPHAN_GRACE, retry_on_store_outage, through_outage
from worker.store.jobs import JobState

from .conftest import deliveries, wait_for


def test_a_restart_mid_upload_records_the_result_once_redis_is_back(
        sandbox, datapost, mint_user, spawn_worker, redis_server):
    sandbox.control("DELETE", "/faults")
    user = mint_user()
    sandbox.control("POST", "/faults", json={"target": "digime", "path": "permission-access/postbox",
                                             "delay_ms": 3000, "times": 1})
    try:
        job_id = datapost.enqueue_digime(user["user"], b"through the outage", file_name="o.txt")
        spawn_worker(threads=1)
        deadline = time.monotonic() + 60
        while datapost.job(job_id).state != "running":
            assert time.monotonic() < deadline, "the worker never picked the job up"
            time.sleep(0.05)
        redis_server.stop()  # the upload is held at the sandbox; Redis goes down meanwhile
        time.sleep(4)        # the upload lands while Redis is down
        redis_server.start()
        summary = wait_for(datapost, [job_id], {"succeeded"}, timeout=90)[job_id]
    finally:
        sandbox.control("DELETE", "/faults")
    assert summary["runs"] == 1  # one run, no re-delivery
    assert len(deliveries(sandbox, user_id=user["user_id"])) == 1
    assert len(datapost.stores.jobs.attempts(job_id)) == 1


def test_actor_retries_only_store_outages():
    assert retry_on_store_outage(0, redis.ConnectionError("down"))
    assert retry_on_store_outage(5, redis.TimeoutError("slow"))
    assert retry_on_store_outage(0, redis.BusyLoadingError("loading AOF"))
    assert not retry_on_store_outage(0, ValueError("a bug"))
    assert not retry_on_store_outage(0, redis.ResponseError("WRONGTYPE"))


def test_through_outage_waits_for_the_store_then_gives_its_answer():
    calls = []

    def flaky() -> str:
        calls.append(time.monotonic())
        if len(calls) < 3:
            raise redis.ConnectionError("restarting")
        return "written"

    assert through_outage(flaky) == "written"
    assert len(calls) == 3
    bad = []

    def buggy() -> None:
        bad.append(1)
        raise ValueError("bug")

    with pytest.raises(ValueError):
        through_outage(buggy)
    assert bad == [1]  # other errors are not retried


def test_sweeper_resends_a_running_job_orphaned_past_its_lease(datapost, mint_user, run_worker):
    user = mint_user()
    job_id = datapost.enqueue_digime(user["user"], b"orphan", file_name="orphan.txt")
    jobs = datapost.stores.jobs
    datapost.publisher.broker.flush(datapost.publisher.queue)  # its message is gone
    long_ago = time.time() - ORPHAN_GRACE - 60
    claimed, _, _ = jobs.claim(job_id, "dead-host:1:abc", 30, long_ago)  # a worker that died
    assert claimed and jobs.get(job_id).state is JobState.RUNNING
    jobs.redis.zadd("datapost:jobs:running", {job_id: long_ago})
    worker = run_worker()
    sweeper = threading.Thread(target=worker.service.engine.sweep)  # the default grace
    sweeper.start()
    sweeper.join(30)
    wait_for(datapost, [job_id], {"succeeded"}, timeout=60)


def test_messages_held_in_memory_come_back_after_a_redis_restart(
        sandbox, datapost, mint_user, spawn_worker, redis_server):
    """dramatiq's consumer drops the delayed messages it holds when its connection breaks;
    the worker's new identity lets dead-worker recovery bring them back."""
    user = mint_user()
    spawn_worker(threads=2)
    time.sleep(3)  # booted and polling
    job_id = datapost.enqueue_digime(user["user"], b"held", file_name="held.txt", delay=6)
    client = datapost.stores.redis
    deadline = time.monotonic() + 30
    while not any(client.scard(k) for k in client.scan_iter("datapost-dramatiq:__acks__.*DQ")):
        assert time.monotonic() < deadline, "the worker never took the delayed message"
        time.sleep(0.05)
    redis_server.stop()
    time.sleep(2)
    redis_server.start()
    summary = wait_for(datapost, [job_id], {"succeeded"}, timeout=90)[job_id]
    assert summary["runs"] == 1
    assert len(deliveries(sandbox, user_id=user["user_id"])) == 1
