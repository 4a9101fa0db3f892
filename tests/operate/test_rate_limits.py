"""Rate and concurrency limits hold across worker threads and processes, and being throttled
does not use the retry budget."""

from __future__ import annotations

import itertools

import httpx

from producers import Datapost, DigimeWrite
from tests.delivery.conftest import InProcessWorker, wait_for
from worker.config import load_settings


def postbox_calls(sandbox) -> list[dict]:
    log = httpx.get(sandbox.control_url + "/requests", params={"path": "postbox"},
                    timeout=30).json()["requests"]
    return [r for r in log if r["status"] == 200]


def test_rate_limit_spreads_requests_and_keeps_the_budget(env, redis_url, mint_user, sandbox):
    sandbox.control("DELETE", "/requests")
    limited = load_settings({**env, "DATAPOST_RATE_LIMITS": "digime=5/s",
                             "DATAPOST_RETRY_MAX": "0"})
    with Datapost.connect(limited, redis_url) as client:
        user = mint_user()
        ids = client.enqueue_many([DigimeWrite(user=user["user"], data=f"r{i}".encode(),
                                               file_name="r.txt") for i in range(20)])
        workers = [InProcessWorker(limited, redis_url, threads=4).start() for _ in range(2)]
        try:
            done = wait_for(client, ids, {"succeeded"}, timeout=60)
        finally:
            for worker in workers:
                worker.stop()
    assert all(d["attempts"] == 0 for d in done.values())  # no budget used (RETRY_MAX=0)
    times = sorted(r["at"] for r in postbox_calls(sandbox))
    assert len(times) == 20
    for i, start in enumerate(times):  # never more than burst (5) + 5/s in any second
        assert sum(1 for t in times[i:] if t < start + 1.0) <= 10
    assert times[-1] - times[0] >= 2.0  # 20 requests at 5/s after a burst of 5


def test_concurrency_limit_of_one_serialises_requests(env, redis_url, mint_user, sandbox):
    sandbox.control("DELETE", "/requests")
    sandbox.control("DELETE", "/faults")
    sandbox.control("POST", "/faults", json={"target": "digime", "path": "postbox",
                                             "delay_ms": 200, "probability": 1.0})
    limited = load_settings({**env, "DATAPOST_RATE_LIMITS": "digime=:1"})
    try:
        with Datapost.connect(limited, redis_url) as client:
            user = mint_user()
            ids = client.enqueue_many([DigimeWrite(user=user["user"], data=f"c{i}".encode(),
                                                   file_name="c.txt") for i in range(6)])
            worker = InProcessWorker(limited, redis_url, threads=4).start()
            try:
                wait_for(client, ids, {"succeeded"}, timeout=60)
            finally:
                worker.stop()
    finally:
        sandbox.control("DELETE", "/faults")
    spans = sorted((r["at"], r["at"] + r["duration_ms"] / 1000) for r in postbox_calls(sandbox))
    assert len(spans) == 6
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert start >= end - 0.01, "two requests were in flight at once"


def test_bad_rate_limit_settings_are_refused(env):
    import pytest

    from worker.errors import ConfigError

    for bad in ("digime=fast", "everyone=5/s", "digime=5/s:0", "digime="):
        with pytest.raises(ConfigError, match="DATAPOST_RATE_LIMITS"):
            load_settings({**env, "DATAPOST_RATE_LIMITS": bad})
