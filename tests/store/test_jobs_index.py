"""Per-state indexes of finished jobs follow their records out after the result TTL."""

from __future__ import annotations

import os

from worker.crypto import Keyring
from worker.store.jobs import JobState, JobStore, new_job_id


def test_prune_drops_expired_terminal_entries_only(redis_client):
    jobs = JobStore(redis_client, Keyring(os.urandom(32)), result_ttl=100)
    old, fresh, queued = new_job_id(), new_job_id(), new_job_id()
    for job_id in (old, fresh, queued):
        jobs.create(job_id=job_id, provider="digime", op="import", user="u", spec={},
                    payload_fields={"payload_kind": "inline", "payload_size": 1}, now=1000.0)
    for job_id, at in ((old, 1000.0), (fresh, 1950.0)):
        jobs.claim(job_id, "w", 30, now=at)
        jobs.move(job_id, JobState.SUCCEEDED, allowed_from=[JobState.RUNNING], now=at)
    assert jobs.prune_expired(now=2000.0) == 1
    assert jobs.ids_in_state(JobState.SUCCEEDED) == [fresh]
    assert jobs.ids_in_state(JobState.QUEUED) == [queued]  # unfinished jobs are never pruned
