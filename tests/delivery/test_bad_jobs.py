"""Problems only discoverable at delivery: `failed` with the reason, and the worker goes on.
Throttling reschedules without using the retry budget."""

from __future__ import annotations

import base64
import os
import time

import pytest

from producers import Datapost
from worker.config import load_settings
from worker.store.payloads import PayloadRef

from .conftest import InProcessWorker, deliveries, wait_for

pytestmark = pytest.mark.rabbitmq  # every test here also runs on RabbitMQ


def test_bad_jobs_fail_with_a_reason_and_the_worker_keeps_going(sandbox, datapost, mint_user,
                                                                run_worker):
    gone, victim, fine = mint_user(), mint_user(), mint_user()
    no_cred = datapost.enqueue_digime(gone["user"], b"a", file_name="a.txt")
    datapost.stores.vault.delete("digime", gone["user"])  # credential revoked after enqueue
    no_payload = datapost.enqueue_digime(victim["user"], b"b", file_name="b.txt")
    job = datapost.job(no_payload)
    datapost.stores.payloads.delete(no_payload, PayloadRef(job.payload_kind, job.payload_size))
    worker = run_worker()
    worker.service.engine.publisher.publish("f" * 32)  # a message for a job that never existed
    ok = datapost.enqueue_digime(fine["user"], b"c", file_name="c.txt")
    states = wait_for(datapost, [no_cred, no_payload, ok], {"failed", "succeeded"})
    assert states[no_cred]["state"] == "failed"
    assert "no digi.me credential stored" in states[no_cred]["error"]["message"]
    assert states[no_payload]["state"] == "failed"
    assert "payload missing" in states[no_payload]["error"]["message"]
    assert states[ok]["state"] == "succeeded"
    assert len(deliveries(sandbox, user_id=fine["user_id"])) == 1
    assert deliveries(sandbox, user_id=victim["user_id"]) == []


def test_long_throttling_reschedules_without_using_the_budget(sandbox, env, redis_url, mint_user):
    sandbox.control("DELETE", "/faults")
    strict = load_settings({**env, "DATAPOST_MAX_INLINE_WAIT": "0.5", "DATAPOST_RETRY_MAX": "0"})
    with Datapost.connect(strict, redis_url) as client:
        user = mint_user()
        sandbox.control("POST", "/faults", json={"target": "digime", "path": "postbox",
                                                 "status": 429, "retry_after": "2", "times": 2})
        job_id = client.enqueue_digime(user["user"], b"throttled", file_name="t.txt")
        worker = InProcessWorker(strict, redis_url).start()
        try:
            started = time.monotonic()
            summary = wait_for(client, [job_id], {"succeeded"}, timeout=60)[job_id]
        finally:
            worker.stop()
        # RETRY_MAX=0 means any budget-consuming failure would have made it dead
        assert summary["throttles"] == 2 and summary["attempts"] == 0
        assert time.monotonic() - started >= 4  # it waited as long as the provider asked
        decisions = [a["decision"] for a in client.status(job_id)["attempts_log"]]
        assert decisions[:2] == ["throttled: retry in 2 s (budget kept)"] * 2
    sandbox.control("DELETE", "/faults")


def test_a_job_sealed_under_a_lost_master_key_fails_instead_of_hanging(datapost, mint_user,
                                                                        env, redis_url):
    user = mint_user()
    job_id = datapost.enqueue_digime(user["user"], b"x", file_name="k.txt")
    other = load_settings({**env, "DATAPOST_MASTER_KEY": base64.b64encode(os.urandom(32)).decode()})
    worker = InProcessWorker(other, redis_url).start()
    try:
        deadline = time.monotonic() + 30
        while datapost.stores.redis.hget(f"datapost:job:{job_id}", "state") != b"failed":
            assert time.monotonic() < deadline, "the job did not fail"
            time.sleep(0.05)
    finally:
        worker.stop()
    error = datapost.stores.redis.hget(f"datapost:job:{job_id}", "error").decode()
    assert "job record unreadable" in error
