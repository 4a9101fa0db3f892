"""The numbers that say whether delivery is healthy: queue depth, jobs in flight and by
state, and the success rate by provider over recent windows (from the event stream)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from dramatiq.brokers.redis import RedisBroker

from worker.queue import HEARTBEAT_TIMEOUT_MS
from worker.store.jobs import PREFIX

from .client import Datapost
from .ops_input import window_label

DEFAULT_WINDOWS = (300, 3600, 86400)
EVENT_PAGE = 2000
SUCCESS_STATES = ("succeeded",)
FAILURE_STATES = ("failed", "dead")


class HealthNumbers:
    def __init__(self, datapost: Datapost, *, clock: Callable[[], float] = time.time) -> None:
        self.datapost = datapost
        self.redis = datapost.stores.redis
        self.jobs = datapost.stores.jobs
        self.clock = clock

    def stats(self, windows: Sequence[int] = DEFAULT_WINDOWS) -> dict[str, Any]:
        """Queue depth, jobs in flight, jobs by state and the success rate by provider over
        each window (terminal events in the stream: succeeded vs failed + dead)."""
        now = self.clock()
        pipe = self.redis.pipeline(transaction=False)
        pipe.zcount(f"{PREFIX}due", f"({now}", "+inf")
        pipe.zrange(f"{PREFIX}jobs:queued", 0, 0, withscores=True)
        due_later, oldest = pipe.execute()
        counts = self.jobs.counts()
        success, covered = self._success(now, sorted(set(windows)))
        return {
            "at": now,
            "queue": self._queue(now),
            "in_flight": counts.get("running", 0),
            "jobs": counts,
            "scheduled_later": due_later,
            "oldest_queued_age": round(now - oldest[0][1], 3) if oldest else None,
            "success": success,
            "events_from": covered,
        }

    def _queue(self, now: float) -> dict[str, Any]:
        broker = self.datapost.publisher.broker
        queue = self.datapost.publisher.queue
        if isinstance(broker, RedisBroker):
            ns, client = broker.namespace, broker.client
            heartbeats = f"{ns}:__heartbeats__"
            pipe = client.pipeline(transaction=False)
            pipe.llen(f"{ns}:{queue}")
            pipe.llen(f"{ns}:{queue}.DQ")
            pipe.zcard(f"{ns}:{queue}.XQ")
            pipe.zrangebyscore(heartbeats, (now * 1000) - HEARTBEAT_TIMEOUT_MS, "+inf")
            pipe.zrange(heartbeats, 0, -1)
            ready, delayed, dead_letter, alive, every = pipe.execute()
            pipe = client.pipeline(transaction=False)
            for worker in every:
                for name in (queue, f"{queue}.DQ"):
                    pipe.scard(f"{ns}:__acks__.{worker.decode()}.{name}")
            unacked = sum(pipe.execute()) if every else 0
            return {"name": queue, "broker": "redis", "ready": ready, "delayed": delayed,
                    "unacked": unacked, "dead_letter": dead_letter, "workers": len(alive)}
        try:
            ready, delayed, dead_letter = broker.get_queue_message_counts(queue)
        except Exception as exc:  # the broker is another service; say so, keep the rest
            return {"name": queue, "broker": type(broker).__name__, "error": str(exc)}
        return {"name": queue, "broker": "rabbitmq", "ready": ready, "delayed": delayed,
                "unacked": None, "dead_letter": dead_letter, "workers": None}

    def _success(self, now: float, windows: Sequence[int]) -> tuple[list[dict[str, Any]],
                                                                       float | None]:
        counts = {w: {} for w in windows}  # window -> provider -> {state: n}
        if windows:
            stream = f"{PREFIX}events"
            low = f"{int((now - max(windows)) * 1000)}-0"
            high = "+"
            while True:
                page = self.redis.xrevrange(stream, max=high, min=low, count=EVENT_PAGE)
                for entry_id, raw in page:
                    to = raw.get(b"to", b"").decode()
                    at = _number(raw.get(b"at")) or _ms(entry_id) / 1000
                    if to not in SUCCESS_STATES + FAILURE_STATES:
                        continue
                    provider = raw.get(b"provider", b"").decode() or "unknown"
                    for window in windows:
                        if at >= now - window:
                            by_state = counts[window].setdefault(
                                provider, dict.fromkeys(SUCCESS_STATES + FAILURE_STATES, 0))
                            by_state[to] += 1
                if len(page) < EVENT_PAGE:
                    break
                high = "(" + page[-1][0].decode()
        out = []
        for window in windows:
            providers = {}
            for provider, by_state in sorted(counts[window].items()):
                ok = sum(by_state[s] for s in SUCCESS_STATES)
                bad = sum(by_state[s] for s in FAILURE_STATES)
                providers[provider] = {**by_state, "finished": ok + bad,
                                       "rate": round(ok / (ok + bad), 4) if ok + bad else None}
            out.append({"window_seconds": window, "label": window_label(window),
                        "providers": providers})
        first = self.redis.xrange(f"{PREFIX}events", count=1)
        covered = _ms(first[0][0]) / 1000 if first else None
        return out, covered


def _ms(entry_id: bytes) -> int:
    """The millisecond time in a stream entry id."""
    return int(entry_id.decode().split("-")[0])




def _number(value: bytes | None) -> float:
    try:
        return float(value) if value else 0.0
    except ValueError:
        return 0.0
