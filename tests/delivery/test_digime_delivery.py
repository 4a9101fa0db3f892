"""digi.me writes end to end: enqueue -> Redis -> worker -> sandbox decrypts and stores."""

from __future__ import annotations

import hashlib
import os
import time

import httpx
import pytest

from producers import DigimeWrite

from .conftest import deliveries, stats, wait_for

DESCRIPTOR = {"mimeType": "text/plain", "accounts": [{"accountId": "acc-1"}],
              "reference": ["ref-1"], "tags": ["datapost", "test"]}


@pytest.fixture(autouse=True)
def no_faults(sandbox):
    sandbox.control("DELETE", "/faults")
    yield
    sandbox.control("DELETE", "/faults")


def content(sandbox, delivery_id: int) -> bytes:
    return httpx.get(f"{sandbox.control_url}/deliveries/{delivery_id}/content", timeout=60).content


@pytest.mark.rabbitmq
@pytest.mark.parametrize("mode", ["postbox", "import"])
def test_bytes_and_descriptor_arrive_exactly(sandbox, datapost, mint_user, run_worker, mode):
    user = mint_user()
    data = os.urandom(50_000) + b"end"
    job_id = datapost.enqueue_digime(user["user"], data, file_name="notes.txt",
                                     descriptor=DESCRIPTOR, mode=mode)
    run_worker()
    summary = wait_for(datapost, [job_id], {"succeeded"})[job_id]
    assert summary["result"]["delivery_status"] == "delivered"
    assert summary["result"]["mode"] == mode
    [got] = deliveries(sandbox, user_id=user["user_id"], mode=mode)
    assert got["metadata"] == DESCRIPTOR
    assert got["sha256"] == hashlib.sha256(data).hexdigest() and got["size"] == len(data)
    assert content(sandbox, got["id"]) == data
    if mode == "postbox":
        assert got["fileName"] == "notes.txt" and got["postbox_id"] == user["postbox_id"]
    attempts = datapost.status(job_id)["attempts_log"]
    assert len(attempts) == 1 and attempts[0]["decision"] == "succeeded"


@pytest.mark.rabbitmq
def test_large_file_from_a_path_streams(sandbox, datapost, mint_user, run_worker, tmp_path):
    user = mint_user()
    path = tmp_path / "big.bin"
    digest = hashlib.sha256()
    with path.open("wb") as f:
        for _ in range(24):
            chunk = os.urandom(1 << 20)
            digest.update(chunk)
            f.write(chunk)
    job_id = datapost.enqueue_digime(user["user"], path, file_name="big.bin")
    run_worker()
    wait_for(datapost, [job_id], {"succeeded"}, timeout=120)
    [got] = deliveries(sandbox, user_id=user["user_id"])
    assert got["sha256"] == digest.hexdigest() and got["size"] == 24 << 20


@pytest.mark.rabbitmq
def test_expired_token_with_200_jobs_refreshes_exactly_once(sandbox, contract, datapost,
                                                            mint_user, run_worker):
    user = mint_user(access_ttl=-60)  # the stored access token is already expired
    before = stats(sandbox, contract["client_id"])["refresh_calls"]
    job_ids = datapost.enqueue_many([
        DigimeWrite(user=user["user"], data=f"job {i}".encode(),
                                            file_name=f"f{i}.txt") for i in range(200)])
    run_worker(threads=8)
    run_worker(threads=8)  # two "processes" worth of threads contend for the refresh
    wait_for(datapost, job_ids, {"succeeded"}, timeout=120)
    assert stats(sandbox, contract["client_id"])["refresh_calls"] - before == 1
    assert len(deliveries(sandbox, user_id=user["user_id"], status="delivered")) == 200


def test_pending_refreshes_and_reuploads(sandbox, contract, datapost, mint_user, run_worker):
    user = mint_user()
    # The provider expires the token early: datapost still thinks it is valid, so the
    # postbox answers pending and the worker must refresh and upload again.
    sandbox.control("POST", "/tokens/expire", json={"access_token": user["access_token"]["value"]})
    job_id = datapost.enqueue_digime(user["user"], b"pending first", file_name="p.txt")
    run_worker()
    summary = wait_for(datapost, [job_id], {"succeeded"})[job_id]
    assert summary["result"]["refreshed"] is True
    rows = deliveries(sandbox, user_id=user["user_id"])
    assert [r["status"] for r in rows] == ["pending", "delivered"]
    assert rows[1]["access_token_used"] != user["access_token"]["value"]
    stored = datapost.stores.vault.load("digime", user["user"])
    assert stored.access_token == rows[1]["access_token_used"]  # the new token was persisted
    assert stored.refresh_token != user["refresh_token"]["value"]  # rotated, persisted


def test_import_401_refreshes_and_repushes(sandbox, datapost, mint_user, run_worker):
    user = mint_user()
    sandbox.control("POST", "/tokens/expire", json={"access_token": user["access_token"]["value"]})
    job_id = datapost.enqueue_digime(user["user"], b"import me", file_name="i.txt", mode="import")
    run_worker()
    summary = wait_for(datapost, [job_id], {"succeeded"})[job_id]
    assert summary["result"]["refreshed"] is True
    assert len(deliveries(sandbox, user_id=user["user_id"], mode="import")) == 1


def test_rejected_refresh_token_parks_every_job(sandbox, contract, datapost, mint_user,
                                                run_worker):
    user = mint_user()
    before = stats(sandbox, contract["client_id"])["refresh_calls"]
    sandbox.control("POST", "/tokens/revoke", json={"refresh_token": user["refresh_token"]["value"]})
    sandbox.control("POST", "/tokens/expire", json={"access_token": user["access_token"]["value"]})
    ids = [datapost.enqueue_digime(user["user"], f"p{i}".encode(), file_name="p.txt")
           for i in range(3)]
    run_worker()
    summaries = wait_for(datapost, ids, {"parked"})
    messages = sorted(s["error"]["message"] for s in summaries.values())
    assert sum("refresh token rejected: InvalidToken" in m for m in messages) == 1
    assert sum("must connect digi.me again" in m for m in messages) == 2
    assert stats(sandbox, contract["client_id"])["refresh_calls"] - before == 1
    assert datapost.stores.vault.load("digime", user["user"]).status == "needs_signin"
    assert sorted(datapost.stores.jobs.parked_ids("digime", user["user"])) == sorted(ids)


@pytest.mark.parametrize("fault", [
    {"status": 500, "times": 2},
    {"status": 503, "retry_after": "1", "times": 2},
    {"status": 429, "retry_after": "1", "times": 1},
    {"drop": True, "times": 2},
    {"delay_ms": 1500, "times": 1},
])
def test_injected_faults_end_in_succeeded_with_attempts_recorded(sandbox, datapost, mint_user,
                                                                 run_worker, fault):
    user = mint_user()
    sandbox.control("POST", "/faults", json={"target": "digime", "path": "permission-access/postbox",
                                             **fault})
    job_id = datapost.enqueue_digime(user["user"], b"through the storm", file_name="s.txt")
    run_worker()
    summary = wait_for(datapost, [job_id], {"succeeded"}, timeout=90)[job_id]
    assert summary["result"]["delivery_status"] == "delivered"
    steps = [s for a in datapost.status(job_id)["attempts_log"] for s in a["steps"]]
    uploads = [s for s in steps if s["step"] == "postbox"]
    expected = 1 + fault.get("times", 0) if "status" in fault or "drop" in fault else 1
    assert len(uploads) >= expected
    assert uploads[-1]["status"] == 200
    if "status" in fault:
        assert uploads[0]["status"] == fault["status"]


@pytest.mark.rabbitmq
def test_transient_failures_beyond_one_attempt_reschedule_the_job(sandbox, datapost, mint_user,
                                                                  run_worker):
    user = mint_user()
    sandbox.control("POST", "/faults", json={"target": "digime", "path": "postbox",
                                             "status": 502, "times": 5})
    job_id = datapost.enqueue_digime(user["user"], b"later", file_name="l.txt")
    run_worker()
    summary = wait_for(datapost, [job_id], {"succeeded"}, timeout=90)[job_id]
    log = datapost.status(job_id)["attempts_log"]
    assert len(log) >= 2 and log[0]["decision"].startswith("retry 1")
    assert summary["attempts"] >= 1


def test_a_400_fails_at_once_with_the_providers_message(sandbox, datapost, mint_user, run_worker):
    user = mint_user()
    sandbox.control("POST", "/faults", json={
        "target": "digime", "path": "postbox", "status": 400, "times": 1,
        "body": {"error": {"code": "ValidationErrors", "message": "The file is not allowed",
                           "reference": "r-1"}}})
    job_id = datapost.enqueue_digime(user["user"], b"refused", file_name="r.txt")
    run_worker()
    summary = wait_for(datapost, [job_id], {"failed"})[job_id]
    assert summary["error"]["status"] == 400
    assert summary["error"]["message"] == "ValidationErrors: The file is not allowed"
    assert len(datapost.status(job_id)["attempts_log"]) == 1


def test_exhausted_retries_end_dead(sandbox, env, redis_url, mint_user, run_worker, datapost):
    user = mint_user()
    sandbox.control("POST", "/faults", json={"target": "digime", "path": "postbox",
                                             "status": 500, "probability": 1.0})
    job_id = datapost.enqueue_digime(user["user"], b"doomed", file_name="d.txt")
    run_worker()
    summary = wait_for(datapost, [job_id], {"dead"}, timeout=90)[job_id]
    assert summary["attempts"] == 10  # 9 retries after the first failure (the default budget)


@pytest.mark.rabbitmq
def test_a_finished_job_delivered_again_does_not_upload_again(sandbox, contract, datapost,
                                                              mint_user, run_worker):
    user = mint_user()
    job_id = datapost.enqueue_digime(user["user"], b"once", file_name="o.txt")
    worker = run_worker()
    wait_for(datapost, [job_id], {"succeeded"})
    calls = stats(sandbox, contract["client_id"])["postbox_calls"]
    for _ in range(3):  # the broker redelivers the same job
        worker.service.engine.publisher.publish(job_id)
    time.sleep(1.5)
    assert stats(sandbox, contract["client_id"])["postbox_calls"] == calls
    assert len(deliveries(sandbox, user_id=user["user_id"])) == 1
    assert datapost.job(job_id).runs == 1
