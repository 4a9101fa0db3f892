"""Commands that change jobs and credentials: replay (one, bulk by state), cancel, revoke,
each followed by a real worker delivering (or not) against the sandbox."""

from __future__ import annotations

import json
import time
import uuid

import httpx
import pytest

from producers import ValidationError
from worker.config import load_settings
from worker.store import keys

from .conftest import (
    PDA_NS,
    InProcessWorker,
    cli,
    cli_json,
    no_traceback,
    postbox_path,
    wait_for,
)


@pytest.fixture(autouse=True)
def no_faults(sandbox):
    sandbox.control("DELETE", "/faults")
    yield
    sandbox.control("DELETE", "/faults")


@pytest.fixture
def strict_worker(env, redis_url):
    """A worker that gives up after one retry and never retries inside an attempt."""
    started: list[InProcessWorker] = []

    def start() -> InProcessWorker:
        settings = load_settings({**env, "DATAPOST_RETRY_MAX": "1", "DATAPOST_HTTP_ATTEMPTS": "1"})
        worker = InProcessWorker(settings, redis_url).start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def deliveries_for(sandbox, user: dict) -> list[dict]:
    resp = httpx.get(sandbox.control_url + "/deliveries", params={"user_id": user["user_id"]},
                     timeout=30)
    return resp.json()["deliveries"]


def test_replay_one_failed_job_then_a_worker_delivers_it(sandbox, env, datapost, mint_user,
                                                         run_worker):
    user = mint_user()
    sandbox.control("POST", "/faults", json={"target": "digime", "path": postbox_path(user),
                                             "status": 400, "times": 1})
    job_id = datapost.enqueue_digime(user["user"], b"second time lucky", file_name="r.txt")
    run_worker()
    wait_for(datapost, [job_id], {"failed"})
    assert deliveries_for(sandbox, user) == []
    ttl = datapost.stores.redis.ttl(keys.payload(job_id))
    assert ttl > 0  # a failed job's payload expires with the record...

    got = cli_json(env, "jobs", "replay", job_id)
    assert got["replayed"] == 1 and got["skipped"] == 0
    assert got["jobs"] == [{"id": job_id, "replayed": True, "from": "failed", "reason": None}]
    summary = wait_for(datapost, [job_id], {"succeeded"})[job_id]
    assert summary["runs"] == 2
    [delivered] = deliveries_for(sandbox, user)
    assert delivered["size"] == len(b"second time lucky")

    shown = cli_json(env, "jobs", "show", job_id)
    assert [a["decision"] for a in shown["attempts"]] == ["failed", "succeeded"]  # history kept
    assert [(e["from"], e["to"]) for e in shown["events"]] == [
        (None, "queued"), ("queued", "running"), ("running", "failed"), ("failed", "queued"),
        ("queued", "running"), ("running", "succeeded")]
    assert shown["events"][3]["note"] == "replayed by an operator"


def test_replay_resets_the_retry_budget(sandbox, env, datapost, mint_user, strict_worker):
    user = mint_user()
    sandbox.control("POST", "/faults", json={"target": "digime", "path": postbox_path(user),
                                             "status": 500, "times": 3})
    job_id = datapost.enqueue_digime(user["user"], b"budget", file_name="b.txt")
    strict_worker()
    assert wait_for(datapost, [job_id], {"dead"})[job_id]["attempts"] == 2
    human = cli(env, "jobs", "replay", job_id)
    assert human.returncode == 0, human.stderr
    assert "Replayed 1 job(s)" in human.stdout and f"{job_id}  dead" in human.stdout
    # one more 500 is left: with a fresh budget the job retries once and then succeeds
    summary = wait_for(datapost, [job_id], {"succeeded"})[job_id]
    assert summary["attempts"] == 1
    decisions = [a["decision"] for a in datapost.status(job_id)["attempts_log"]]
    assert len(decisions) == 4 and decisions[1] == "dead" and decisions[3] == "succeeded"
    assert decisions[0].startswith("retry 1 in") and decisions[2].startswith("retry 1 in")


def test_bulk_replay_by_state_and_user_with_progress(sandbox, env, datapost, mint_user,
                                                     strict_worker):
    mine, other = mint_user(), mint_user()
    for user in (mine, other):
        sandbox.control("POST", "/faults", json={"target": "digime", "path": postbox_path(user),
                                                 "status": 500, "probability": 1.0})
    ids = [datapost.enqueue_digime(mine["user"], f"bulk {i}".encode(), file_name="b.txt")
           for i in range(3)]
    theirs = datapost.enqueue_digime(other["user"], b"not yet", file_name="o.txt")
    strict_worker()
    wait_for(datapost, [*ids, theirs], {"dead"}, timeout=90)
    sandbox.control("DELETE", "/faults")

    done = cli(env, "jobs", "replay", "--state", "dead", "--user", mine["user"], "--since", "-10m",
               "--yes", "--json")
    assert done.returncode == 0, done.stderr
    for n in (1, 2, 3):
        assert f"[{n}/3] " in done.stderr
    assert "dead -> queued" in done.stderr and "[1/3]" not in done.stdout
    got = json.loads(done.stdout)
    assert got["matched"] == 3 and got["replayed"] == 3
    assert sorted(r["id"] for r in got["jobs"]) == sorted(ids)
    assert datapost.job(theirs).state == "dead"  # another user's job is left alone
    assert all(datapost.job(i).attempts in (0, 2) or datapost.job(i).state != "dead"
               for i in ids)  # reset to 0 (the worker may already be delivering them)

    # no --yes: a non-interactive run asks nothing; human progress also goes to stderr
    done = cli(env, "jobs", "replay", "--state", "dead", "--provider", "digime")
    assert done.returncode == 0, done.stderr
    assert "[1/1] " + theirs in done.stderr and "Replayed 1 job(s)" in done.stdout
    assert "[1/1]" not in done.stdout

    wait_for(datapost, [*ids, theirs], {"succeeded"}, timeout=90)
    assert len(deliveries_for(sandbox, mine)) == 3 and len(deliveries_for(sandbox, other)) == 1

    again = cli_json(env, "jobs", "replay", "--state", "dead", "--yes")
    assert again == {"matched": 0, "replayed": 0, "jobs": [], "filters": again["filters"]}


def test_bulk_replay_of_parked_pda_jobs(sandbox, env, datapost, pda_user, run_worker):
    user = pda_user("bob")
    sandbox.control("POST", "/faults", json={"target": "pda", "host": user["pda"]["domain"],
                                             "path": "/data/", "status": 401, "times": 1})
    first = datapost.enqueue_records(user["user"], PDA_NS, "parked", {"u": uuid.uuid4().hex})
    run_worker()
    wait_for(datapost, [first], {"parked"})  # the 401 marks the credential needs_signin...
    second = datapost.enqueue_records(user["user"], PDA_NS, "parked", {"u": uuid.uuid4().hex})
    wait_for(datapost, [second], {"parked"})  # ...so the next job parks without a request
    ids = [first, second]
    # an operator who knows the token is fine again (the 401 was the PDA's hiccup)
    assert datapost.stores.vault.set_status("dataswyft", user["user"], "active")
    got = cli_json(env, "jobs", "replay", "--state", "parked", "--provider", "dataswyft",
                   "--user", user["user"], "--yes")
    assert got["matched"] == 2 and got["replayed"] == 2
    assert datapost.stores.jobs.parked_ids("dataswyft", user["user"]) == []
    done = wait_for(datapost, ids, {"succeeded"})
    assert all(d["result"]["count"] == 1 for d in done.values())


def test_replay_refuses_bad_input_with_status_2(env, datapost, mint_user, run_worker):
    user = mint_user()
    job_id = datapost.enqueue_digime(user["user"], b"fine", file_name="f.txt")
    run_worker()
    wait_for(datapost, [job_id], {"succeeded"})
    unknown = uuid.uuid4().hex
    for args, message in (
            ([], "nothing to replay: give job ids, or --state dead|failed|parked"),
            (["--provider", "digime"], "nothing to replay"),
            ([job_id, "--state", "dead"], "not both"),
            ([unknown], f"no job {unknown!r}"),
            ([job_id], f"job {job_id} is succeeded: only dead, failed, parked jobs can be "
                       "replayed; nothing was changed"),
            (["../etc/passwd"], "is not a job id"),
            (["--state", "succeeded"], "invalid choice: 'succeeded'"),
            (["--state", "dead", "--since", "yesterday"], "--since 'yesterday' is neither"),
            (["--state", "dead", "--since", "-1h", "--until", "-2h"], "--since is later than"),
    ):
        for flag in ([], ["--json"]):
            done = cli(env, "jobs", "replay", *args, *flag)
            assert done.returncode == 2, (args, done.stdout, done.stderr)
            assert message in done.stderr, (args, done.stderr)
            assert done.stdout == ""
            no_traceback(done)
    assert datapost.job(job_id).state == "succeeded"


def test_cancel_queued_retrying_and_parked_jobs(sandbox, env, datapost, mint_user, pda_user,
                                                run_worker):
    user, throttled = mint_user(), mint_user()
    pda = pda_user("alice")
    started = time.monotonic()
    queued = datapost.enqueue_digime(user["user"], b"never", file_name="n.txt", delay=6)
    sandbox.control("POST", "/faults", json={"target": "digime", "path": postbox_path(throttled),
                                             "status": 429, "retry_after": "3600", "times": 1})
    retrying = datapost.enqueue_digime(throttled["user"], b"later", file_name="l.txt")
    sandbox.control("POST", "/faults", json={"target": "pda", "host": pda["pda"]["domain"],
                                             "path": "/data/", "status": 401, "times": 1})
    parked = datapost.enqueue_records(pda["user"], PDA_NS, "c", {"u": uuid.uuid4().hex})
    run_worker()
    wait_for(datapost, [retrying], {"retrying"})
    wait_for(datapost, [parked], {"parked"})
    assert datapost.job(queued).state == "queued"

    got = cli_json(env, "jobs", "cancel", queued, retrying, parked)
    assert got["cancelled"] == 3 and got["skipped"] == 0
    assert {r["id"]: r["from"] for r in got["jobs"]} == {queued: "queued", retrying: "retrying",
                                                         parked: "parked"}
    for job_id in (queued, retrying, parked):
        assert datapost.job(job_id).state == "cancelled"
        assert not datapost.stores.redis.exists(keys.payload(job_id))  # payload deleted
    assert datapost.stores.jobs.parked_ids("dataswyft", pda["user"]) == []

    time.sleep(max(0.0, started + 8 - time.monotonic()))  # its message came due: dropped
    assert datapost.job(queued).state == "cancelled" and datapost.job(queued).runs == 0
    assert deliveries_for(sandbox, user) == []

    done = cli(env, "jobs", "cancel", queued)
    assert done.returncode == 2 and "is cancelled: only parked, queued, retrying" in done.stderr
    done = cli(env, "jobs", "cancel", uuid.uuid4().hex, "--json")
    assert done.returncode == 2 and "no job" in done.stderr and done.stdout == ""
    done = cli(env, "jobs", "cancel")
    assert done.returncode == 2 and "JOB_ID" in done.stderr
    human = cli(env, "jobs", "show", queued)
    assert "cancelled by an operator" in human.stdout


def test_revoke_deletes_tokens_and_jobs_fail_until_the_user_connects_again(
        sandbox, contract, env, datapost, mint_user, pda_user, run_worker):
    user = mint_user()
    pda = pda_user("alice")
    sandbox.control("POST", "/faults", json={"target": "pda", "host": pda["pda"]["domain"],
                                             "path": "/data/", "status": 401, "times": 1})
    parked = datapost.enqueue_records(pda["user"], PDA_NS, "r", {"u": uuid.uuid4().hex})
    waiting = datapost.enqueue_digime(user["user"], b"after revoke", file_name="w.txt", delay=8)
    run_worker()
    wait_for(datapost, [parked], {"parked"})

    got = cli_json(env, "credentials", "revoke", "digime", user["user"])
    assert got == {"provider": "digime", "user": user["user"], "status": "revoked",
                   "tokens_deleted": True, "parked_jobs": 0}
    record = datapost.stores.redis.hgetall(keys.credential("digime", user["user"]))
    assert b"sealed" not in record and record[b"status"] == b"revoked"
    assert datapost.stores.vault.load("digime", user["user"]) is None
    listed = {c["user"]: c for c in cli_json(env, "credentials", "list")["credentials"]}
    assert listed[user["user"]]["status"] == "revoked"

    human = cli(env, "credentials", "revoke", "dataswyft", pda["user"])
    assert human.returncode == 0, human.stderr
    assert "its tokens are deleted" in human.stdout
    assert "1 parked job(s) stay parked" in human.stdout
    for secret in (user["access_token"]["value"], user["refresh_token"]["value"], pda["token"]):
        assert secret not in human.stdout + str(listed)

    # the queued job fails at its attempt: no credential, nothing delivered
    summary = wait_for(datapost, [waiting], {"failed"})[waiting]
    assert "no digi.me credential" in summary["error"]["message"]
    assert deliveries_for(sandbox, user) == []
    assert datapost.job(parked).state == "parked"
    with pytest.raises(ValidationError):
        datapost.enqueue_digime(user["user"], b"refused", file_name="x.txt")

    # the user connects again: a fresh credential replaces the revoked entry
    resp = sandbox.control("POST", "/tokens", json={"client_id": contract["client_id"]})
    minted = resp.json()
    datapost.store_digime_credential(
        user["user"], access_token=minted["access_token"]["value"],
        access_expires_at=minted["access_token"]["expires_on"],
        refresh_token=minted["refresh_token"]["value"],
        refresh_expires_at=minted["refresh_token"]["expires_on"],
        postbox_id=minted["postbox_id"], postbox_public_key=minted["public_key"],
        digime_user_id=minted["user_id"])
    listed = {c["user"]: c for c in cli_json(env, "credentials", "list")["credentials"]}
    assert listed[user["user"]]["status"] == "active"
    assert cli_json(env, "jobs", "replay", waiting)["replayed"] == 1
    wait_for(datapost, [waiting], {"succeeded"})
    assert len(deliveries_for(sandbox, {"user_id": minted["user_id"]})) == 1

    for args, message in ((["digime", "nobody-" + uuid.uuid4().hex], "no digime credential"),
                          (["dropbox", "u"], "invalid choice: 'dropbox'")):
        done = cli(env, "credentials", "revoke", *args)
        assert done.returncode == 2 and message in done.stderr, done.stderr
        no_traceback(done)


def test_revoke_wins_over_a_token_renewal_in_flight(datapost, pda_user):
    """A PDA renews its token on every answer: one arriving after the revoke must not bring
    the tokens back."""
    import dataclasses

    user = pda_user("alice")
    before = datapost.stores.vault.load("dataswyft", user["user"])
    assert datapost.stores.vault.revoke("dataswyft", user["user"])
    renewed = dataclasses.replace(before, token_iat=before.token_iat + 60)
    assert datapost.stores.vault.store_if_newer(renewed) is False
    digime_like = datapost.stores.redis.hgetall(keys.credential("dataswyft", user["user"]))
    assert b"sealed" not in digime_like
    assert datapost.stores.vault.list("dataswyft")[0].status == "revoked"


def test_bulk_replay_asks_first_on_a_terminal(sandbox, env, datapost, mint_user, run_worker):
    import os
    import pty

    user = mint_user()
    sandbox.control("POST", "/faults", json={"target": "digime", "path": postbox_path(user),
                                             "status": 400, "times": 1})
    job_id = datapost.enqueue_digime(user["user"], b"ask me", file_name="a.txt")
    run_worker()
    wait_for(datapost, [job_id], {"failed"})
    for answer, status, state in ((b"n\n", 1, "failed"), (b"y\n", 0, "succeeded")):
        master, replica = pty.openpty()
        try:
            os.write(master, answer)
            done = cli(env, "jobs", "replay", "--state", "failed", "--user", user["user"],
                       stdin=replica)
        finally:
            os.close(replica)
            os.close(master)
        assert done.returncode == status, done.stderr
        assert "Replay 1 failed job(s)? [y/N]" in done.stderr
        wait_for(datapost, [job_id], {state})
    assert "nothing replayed (1 job(s) matched)" not in done.stderr


def test_revoke_wins_over_a_digime_refresh_in_flight(datapost, mint_user):
    import dataclasses

    user = mint_user()
    seen = datapost.stores.vault.load("digime", user["user"])
    assert datapost.stores.vault.revoke("digime", user["user"])
    rotated = dataclasses.replace(seen, access_token="new-access", refresh_token="new-refresh")
    assert datapost.stores.vault.replace_tokens(rotated, expected_version=seen.version) is False
    assert datapost.stores.vault.load("digime", user["user"]) is None
    assert datapost.stores.vault.revoke("digime", "never-" + uuid.uuid4().hex) is False
