"""Dataswyft writes end to end: records, batches and files land in the right PDA."""

from __future__ import annotations

import hashlib
import os
import time
import uuid

import httpx
import pytest

from producers import Datapost, PdaFileWrite, PdaRecordWrite
from worker.config import load_settings
from worker.dataswyft import decode_claims

from .conftest import PDA_NS, InProcessWorker, pda_records, wait_for


@pytest.fixture(autouse=True)
def clean_sandbox(sandbox):
    sandbox.control("DELETE", "/faults")
    yield
    sandbox.control("DELETE", "/faults")
    sandbox.control("POST", "/clock", json={"offset_seconds": 0})


def unique(**fields):
    return {"id": uuid.uuid4().hex, **fields}


@pytest.mark.rabbitmq
def test_records_object_and_list_read_back_equal(datapost, pda_user, run_worker):
    user = pda_user()
    one = unique(kind="steps", value=4200)
    many = [unique(kind="sleep", hours=7.5), unique(kind="sleep", hours=6.0)]
    first = datapost.enqueue_records(user["user"], PDA_NS, "activity", one)
    second = datapost.enqueue_records(user["user"], PDA_NS, "activity/sleep", many)
    run_worker()
    done = wait_for(datapost, [first, second], {"succeeded"})
    stored = {r["recordId"]: r for r in pda_records(user["pda"])}
    [rid] = done[first]["result"]["recordIds"]
    assert stored[rid]["data"] == one and stored[rid]["endpoint"] == f"{PDA_NS}/activity"
    ids = done[second]["result"]["recordIds"]
    assert [stored[i]["data"] for i in ids] == many
    assert {stored[i]["endpoint"] for i in ids} == {f"{PDA_NS}/activity/sleep"}


@pytest.mark.rabbitmq
def test_batch_across_endpoints(datapost, pda_user, run_worker):
    user = pda_user()
    items = [{"endpoint": f"{PDA_NS}/profile", "data": unique(name="Ada")},
             {"endpoint": f"{PDA_NS}/notes", "data": unique(text="hello")}]
    job_id = datapost.enqueue_batch(user["user"], items)
    run_worker()
    result = wait_for(datapost, [job_id], {"succeeded"})[job_id]["result"]
    stored = {r["recordId"]: r for r in pda_records(user["pda"])}
    assert [stored[i]["data"] for i in result["recordIds"]] == [i["data"] for i in items]


@pytest.mark.rabbitmq
def test_file_upload_lands_with_metadata_and_content(datapost, pda_user, run_worker, tmp_path):
    user = pda_user()
    data = os.urandom(3 << 20)
    path = tmp_path / "scan.pdf"
    path.write_bytes(data)
    job_id = datapost.enqueue_file(user["user"], path, name="scan.pdf", source="datapost-tests",
                                   tags=["scan", "2026"], title="A scan",
                                   description="three megabytes", content_type="application/pdf")
    run_worker()
    result = wait_for(datapost, [job_id], {"succeeded"})[job_id]["result"]
    assert result["status"] == "Completed" and result["size"] == len(data)
    pda = user["pda"]
    files = httpx.get(pda["url"] + "/_control/files", timeout=30).json()["files"]
    [meta] = [f for f in files if f["fileId"] == result["fileId"]]
    assert meta["name"] == "scan.pdf" and meta["tags"] == ["scan", "2026"]
    assert meta["title"] == "A scan" and meta["contentType"] == "application/pdf"
    content = httpx.get(f"{pda['url']}/_control/files/{result['fileId']}/content", timeout=60)
    assert hashlib.sha256(content.content).digest() == hashlib.sha256(data).digest()


@pytest.mark.rabbitmq
def test_concurrent_jobs_leave_a_newest_working_token(datapost, pda_user, run_worker):
    user = pda_user()
    before = decode_claims(user["token"])
    time.sleep(1.1)  # renewed tokens get a later iat (seconds)
    ids = datapost.enqueue_many([PdaRecordWrite(user=user["user"], namespace=PDA_NS,
                                                endpoint="burst", data=unique(n=i))
                                 for i in range(40)])
    run_worker(threads=8)
    wait_for(datapost, ids, {"succeeded"})
    finished = time.time()
    stored = datapost.stores.vault.load("dataswyft", user["user"])
    assert stored.token != user["token"] and stored.token_iat > before.iat
    assert stored.token_iat >= int(finished) - 2  # a token from the end of the burst
    check = httpx.get(user["pda"]["url"] + "/users/access_token/validate",
                      headers={"X-Auth-Token": stored.token}, timeout=10)
    assert check.status_code == 200


@pytest.mark.parametrize("fault", [
    {"status": 500, "times": 2},
    {"status": 404, "times": 2},  # the sandbox answers 404 with "HAT unavailable"
    {"status": 503, "retry_after": "1", "times": 1},
    {"drop": True, "times": 2},
    {"delay_ms": 1200, "times": 1},
])
def test_injected_faults_end_in_succeeded(sandbox, datapost, pda_user, run_worker, fault):
    user = pda_user()
    sandbox.control("POST", "/faults", json={"target": "pda", "host": user["pda"]["domain"],
                                             "path": "/api/v2.6/data/", **fault})
    job_id = datapost.enqueue_records(user["user"], PDA_NS, "faults", unique(fault=str(fault)))
    run_worker()
    done = wait_for(datapost, [job_id], {"succeeded"}, timeout=60)[job_id]
    assert len(done["result"]["recordIds"]) == 1
    assert len([r for r in pda_records(user["pda"], "faults")
                if r["recordId"] in done["result"]["recordIds"]]) == 1


@pytest.mark.rabbitmq
def test_a_retried_write_that_already_landed_is_deduplicated(sandbox, env, redis_url, pda_user,
                                                             datapost):
    user = pda_user()
    # The PDA stores the record but the connection drops before the answer: the retry gets
    # 400 Duplicate data, which means the first try landed.
    sandbox.control("POST", "/faults", json={"target": "pda", "host": user["pda"]["domain"],
                                             "path": "/api/v2.6/data/", "drop": True,
                                             "after": True, "times": 1})
    record = unique(kind="once")
    job_id = datapost.enqueue_records(user["user"], PDA_NS, "dedup", record)
    worker = InProcessWorker(load_settings(env), redis_url).start()
    try:
        done = wait_for(datapost, [job_id], {"succeeded"}, timeout=60)[job_id]
    finally:
        worker.stop()
    assert done["result"]["deduplicated"] is True
    assert [r["data"] for r in pda_records(user["pda"], "dedup")].count(record) == 1


@pytest.mark.rabbitmq
def test_two_pdas_two_users_interleaved(datapost, pda_user, run_worker, sandbox):
    alice, bob = pda_user("alice"), pda_user("bob")
    writes = []
    for i in range(20):
        owner = alice if i % 2 == 0 else bob
        writes.append(PdaRecordWrite(user=owner["user"], namespace=PDA_NS, endpoint="mixed",
                                     data=unique(owner=owner["user"], n=i)))
    writes.append(PdaFileWrite(user=bob["user"], data=b"bob's file", name="bob.txt",
                               source="datapost-tests"))
    ids = datapost.enqueue_many(writes)
    run_worker(threads=6)
    wait_for(datapost, ids, {"succeeded"})
    for owner in (alice, bob):
        mine = [r["data"] for r in pda_records(owner["pda"], "mixed")
                if r["data"].get("owner") in (alice["user"], bob["user"])]
        assert {d["owner"] for d in mine} == {owner["user"]} and len(mine) == 10
    bob_files = httpx.get(bob["pda"]["url"] + "/_control/files", timeout=30).json()["files"]
    alice_files = httpx.get(alice["pda"]["url"] + "/_control/files", timeout=30).json()["files"]
    assert any(f["name"] == "bob.txt" for f in bob_files)
    assert not any(f["name"] == "bob.txt" for f in alice_files)


@pytest.mark.parametrize(("fault", "expected"), [
    ({"status": 413}, 413), ({"status": 415}, 415),
])
def test_413_and_415_fail_without_retries(sandbox, datapost, pda_user, run_worker, fault, expected):
    user = pda_user()
    sandbox.control("POST", "/faults", json={"target": "pda", "host": user["pda"]["domain"],
                                             "path": "/api/v2.6/data/", "times": 1, **fault})
    job_id = datapost.enqueue_records(user["user"], PDA_NS, "refused", unique())
    run_worker()
    done = wait_for(datapost, [job_id], {"failed"})[job_id]
    assert done["error"]["status"] == expected
    assert len(datapost.status(job_id)["attempts_log"]) == 1


def test_403_namespace_not_granted_fails_with_the_reason(datapost, pda_user, run_worker):
    user = pda_user()
    job_id = datapost.enqueue_records(user["user"], "someone-else", "x", unique())
    run_worker()
    done = wait_for(datapost, [job_id], {"failed"})[job_id]
    assert done["error"]["status"] == 403 and "Forbidden" in done["error"]["message"]
    assert len(datapost.status(job_id)["attempts_log"]) == 1


def test_disabled_app_fails_with_403(datapost, pda_user, run_worker, sandbox):
    user = pda_user("bob")
    httpx.post(user["pda"]["url"] + "/_control/apps/datapost-tests/disable", timeout=30)
    try:
        job_id = datapost.enqueue_records(user["user"], PDA_NS, "disabled", unique())
        run_worker()
        assert wait_for(datapost, [job_id], {"failed"})[job_id]["error"]["status"] == 403
    finally:
        httpx.post(user["pda"]["url"] + "/_control/apps/datapost-tests/enable", timeout=30)


def test_an_idle_credential_is_kept_alive_across_five_days(sandbox, datapost, pda_user,
                                                           run_worker, redis_url, settings):
    from worker.dataswyft import DataswyftClient
    from worker.delivery.dataswyft_tokens import PdaKeepAlive, PdaTokenKeeper

    user = pda_user()
    offset = 0.0
    with httpx.Client(timeout=10) as http:
        keeper = PdaTokenKeeper(vault=datapost.stores.vault, clock=lambda: time.time() + offset)
        keep_alive = PdaKeepAlive(vault=datapost.stores.vault,
                                  client=DataswyftClient(http, scheme="http"), keeper=keeper,
                                  allowed_suffixes=("localhost",), sandbox_mode=True,
                                  clock=lambda: time.time() + offset)
        renewed = 0
        for _ in range(5):  # five days, one keep-alive pass a day
            offset += 86400
            sandbox.control("POST", "/clock", json={"offset_seconds": offset})
            renewed += keep_alive.run_once()["renewed"]
    assert renewed >= 2
    stored = datapost.stores.vault.load("dataswyft", user["user"])
    assert stored.status == "active" and stored.token_iat > time.time() + 4 * 86400 - 120
    job_id = datapost.enqueue_records(user["user"], PDA_NS, "after-gap", unique())
    run_worker()
    assert wait_for(datapost, [job_id], {"succeeded"})[job_id]["state"] == "succeeded"


def test_an_idle_expired_credential_parks_its_jobs(sandbox, datapost, pda_user, run_worker):
    user = pda_user()
    sandbox.control("POST", "/clock", json={"offset_seconds": 4 * 86400})  # nobody kept it alive
    ids = [datapost.enqueue_records(user["user"], PDA_NS, "parked", unique()) for _ in range(2)]
    run_worker()
    done = wait_for(datapost, ids, {"parked"})
    assert any("refused the token" in d["error"]["message"] for d in done.values())
    assert datapost.stores.vault.load("dataswyft", user["user"]).status == "needs_signin"
    assert sorted(datapost.stores.jobs.parked_ids("dataswyft", user["user"])) == sorted(ids)


def test_a_token_known_to_be_expired_parks_without_calling_the_pda(sandbox, datapost, pda_user,
                                                                    run_worker):
    user = pda_user(iat_offset=-(72 * 3600 - 10))  # goes idle-expired within seconds
    time.sleep(11)
    sandbox.control("DELETE", "/requests")
    job_id = datapost.enqueue_records(user["user"], PDA_NS, "never", unique())
    run_worker()
    done = wait_for(datapost, [job_id], {"parked"})[job_id]
    assert "idle for more than 72 hours" in done["error"]["message"]
    calls = sandbox.control("GET", "/requests", params={"target": "pda"}).json()["requests"]
    assert not [c for c in calls if c["host"] == user["pda"]["domain"] and "/data/" in c["path"]]


def test_enqueue_validation(datapost, pda_user, redis_client, env, redis_url):
    from producers import ValidationError

    user = pda_user()
    before = set(redis_client.scan_iter(count=1000))
    bad = [
        dict(namespace="Bad_NS", endpoint="x", data={}),
        dict(namespace="ok", endpoint="/lead", data={}),
        dict(namespace="ok", endpoint="a//b", data={}),
        dict(namespace="ok", endpoint="x", data={"n": float("nan")}),
        dict(namespace="ok", endpoint="x", data={"s": {1, 2}}),
        dict(namespace="ok", endpoint="x", data={"big": "x" * (10 * 1024 * 1024)}),
    ]
    for case in bad:
        with pytest.raises(ValidationError):
            datapost.enqueue_records(user["user"], case["namespace"], case["endpoint"],
                                     case["data"])
    with pytest.raises(ValidationError, match="no Dataswyft credential"):
        datapost.enqueue_records("nobody", PDA_NS, "x", {})
    with pytest.raises(ValidationError, match="name"):
        datapost.enqueue_file(user["user"], b"x", name="", source="s")
    with pytest.raises(ValidationError):
        datapost.enqueue_batch(user["user"], [{"data": {}}])
    assert set(redis_client.scan_iter(count=1000)) == before
    strict = load_settings({**env, "DATAPOST_SANDBOX": "false",
                            "DATAPOST_DATASWYFT_ALLOWED_DOMAINS": "hubat.net"})
    with Datapost.connect(strict, redis_url) as client:
        for domain in ("evil.example.com", "127.0.0.1", user["pda"]["domain"], "hubat.net"):
            with pytest.raises(ValidationError):
                client.store_dataswyft_credential("x", pda_domain=domain, token=user["token"])


def pda_file(pda: dict, file_id: str) -> bytes:
    return httpx.get(f"{pda['url']}/_control/files/{file_id}/content", timeout=60).content


def test_a_refused_presigned_put_starts_again_from_upload(sandbox, datapost, pda_user, run_worker):
    user = pda_user()
    sandbox.control("POST", "/faults", json={
        "target": "s3", "host": user["pda"]["domain"], "method": "PUT", "status": 403,
        "times": 1, "body": "<Error><Code>AccessDenied</Code><Message>Request has expired"
                            "</Message></Error>"})
    job_id = datapost.enqueue_file(user["user"], b"retry me" * 1000, name="r.txt", source="t")
    run_worker()
    result = wait_for(datapost, [job_id], {"succeeded"})[job_id]["result"]
    steps = [s["step"] for a in datapost.status(job_id)["attempts_log"] for s in a["steps"]]
    assert steps == ["file-upload", "file-put", "restart", "file-upload", "file-put",
                     "file-complete"]
    assert pda_file(user["pda"], result["fileId"]) == b"retry me" * 1000


def test_an_incomplete_upload_at_complete_starts_again(sandbox, datapost, pda_user, run_worker):
    user = pda_user()
    sandbox.control("POST", "/faults", json={
        "target": "pda", "host": user["pda"]["domain"], "path": "/complete$", "status": 400,
        "times": 1, "body": {"message": "File not available",
                             "cause": "Not fully uploaded file can not be completed"}})
    job_id = datapost.enqueue_file(user["user"], b"again" * 1000, name="a.txt", source="t")
    run_worker()
    result = wait_for(datapost, [job_id], {"succeeded"})[job_id]["result"]
    steps = [s["step"] for a in datapost.status(job_id)["attempts_log"] for s in a["steps"]]
    assert steps.count("file-upload") == 2 and "restart" in steps
    assert pda_file(user["pda"], result["fileId"]) == b"again" * 1000


def test_a_retry_after_the_put_only_completes(sandbox, datapost, pda_user, run_worker):
    user = pda_user()
    sandbox.control("POST", "/faults", json={
        "target": "pda", "host": user["pda"]["domain"], "path": "/complete$", "status": 502,
        "times": 3})  # more than one attempt's quick retries: the job is rescheduled
    job_id = datapost.enqueue_file(user["user"], b"resume" * 1000, name="c.txt", source="t")
    run_worker()
    result = wait_for(datapost, [job_id], {"succeeded"}, timeout=60)[job_id]["result"]
    log = datapost.status(job_id)["attempts_log"]
    assert len(log) == 2
    assert [s["step"] for s in log[1]["steps"]] == ["file-complete"]
    assert pda_file(user["pda"], result["fileId"]) == b"resume" * 1000
