"""A delivery attempt's two round trips: the claim that also reads what the attempt needs,
and the move that writes the attempt record and cleans up with the state change."""

from __future__ import annotations

import os

from worker.crypto import Keyring
from worker.store import CredentialVault, DigimeCredential, keys
from worker.store.jobs import JobState, JobStore, new_job_id
from worker.store.vault import LOAD_FIELDS


def _stores(redis_client):
    keyring = Keyring(os.urandom(32))
    return JobStore(redis_client, keyring, result_ttl=100), CredentialVault(redis_client, keyring)


def _job(jobs, user="u", kind="inline"):
    job_id = new_job_id()
    jobs.create(job_id=job_id, provider="digime", op="postbox", user=user, spec={"mode": "postbox"},
                payload_fields={"payload_kind": kind, "payload_size": 3})
    return job_id


def test_claim_and_load_reads_job_credential_and_payload(redis_client):
    jobs, vault = _stores(redis_client)
    user = f"user-{new_job_id()}"
    vault.store(DigimeCredential(user=user, access_token="a" * 20, access_expires_at=2,
                                 refresh_token="r" * 20, refresh_expires_at=3, postbox_id="p"))
    job_id = _job(jobs, user)
    redis_client.set(keys.payload(job_id), b"sealed-bytes")
    claim = jobs.claim_and_load(job_id, "w", 30, credential_fields=LOAD_FIELDS)
    assert claim.claimed and claim.previous == "queued"
    job = claim.job()
    assert job.state is JobState.RUNNING and job.runs == 1 and job.spec == {"mode": "postbox"}
    assert job.preloaded["payload"] == b"sealed-bytes"
    cred = vault.from_row("digime", user, job.preloaded["credential"])
    assert cred == vault.load("digime", user)
    again = jobs.claim_and_load(job_id, "w2", 30, credential_fields=LOAD_FIELDS)
    assert not again.claimed and again.previous == "running" and again.lease_until > 0


def test_claim_and_load_without_credential_or_inline_payload(redis_client):
    jobs, vault = _stores(redis_client)
    job_id = _job(jobs, user=f"nobody-{new_job_id()}", kind="file")
    job = jobs.claim_and_load(job_id, "w", 30, credential_fields=LOAD_FIELDS).job()
    assert job.preloaded["payload"] is None
    assert vault.from_row("digime", job.user, job.preloaded["credential"]) is None
    assert not jobs.claim_and_load(new_job_id(), "w", 30, credential_fields=LOAD_FIELDS).claimed


def test_move_writes_the_attempt_with_the_state_and_cleans_up(redis_client):
    jobs, _ = _stores(redis_client)
    job_id = _job(jobs)
    payload, other = keys.payload(job_id), f"datapost:test:{job_id}"
    redis_client.set(payload, b"x")
    redis_client.set(other, b"y")
    jobs.claim(job_id, "w", 30)
    moved, previous = jobs.move(job_id, JobState.FAILED, allowed_from=[JobState.RUNNING],
                                worker="w", attempt={"decision": "failed"}, delete=[payload],
                                expire=[other])
    assert (moved, previous) == (True, "running")
    assert jobs.attempts(job_id) == [{"decision": "failed"}]
    assert not redis_client.exists(payload)
    assert 0 < redis_client.ttl(other) <= 100
    assert 0 < redis_client.ttl(f"{jobs.key(job_id)}:attempts") <= 100


def test_a_refused_move_still_records_the_attempt_but_cleans_nothing(redis_client):
    jobs, _ = _stores(redis_client)
    job_id = _job(jobs)
    redis_client.set(keys.payload(job_id), b"x")
    jobs.claim(job_id, "w", 30)
    moved, state = jobs.move(job_id, JobState.SUCCEEDED, allowed_from=[JobState.RUNNING],
                             worker="someone-else", attempt={"decision": "succeeded"},
                             delete=[keys.payload(job_id)])
    assert (moved, state) == (False, "running")
    assert jobs.attempts(job_id) == [{"decision": "succeeded"}]
    assert redis_client.exists(keys.payload(job_id))
    assert not jobs.move(new_job_id(), JobState.SUCCEEDED, allowed_from=[JobState.RUNNING],
                         attempt={"decision": "x"})[0]
