"""The dramatiq side: broker construction, message building and recovery of dead workers.

Producers never import the actor: a message is just (queue, actor name, job id). With the
Redis broker the job-creation script pushes the message itself, so a job and its message
are written in one atomic step; other brokers get the message right after the job.

`DATAPOST_BROKER_URL=amqp://…` moves the queue (and only the queue) to RabbitMQ; job records,
credentials and payloads stay in Redis.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Callable
from types import SimpleNamespace

import dramatiq
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.brokers.redis import RedisBroker, _RedisConsumer
from dramatiq.common import current_millis, dq_name
from dramatiq.errors import ConnectionClosed
from dramatiq.middleware import Middleware

from .store.jobs import QueuedMessage

ACTOR_NAME = "datapost_deliver"
NAMESPACE = "datapost-dramatiq"
MAX_DELAY_MS = 6 * 86400 * 1000  # dramatiq refuses delays of 7 days or more
HEARTBEAT_TIMEOUT_MS = 20_000
# dramatiq holds a delayed RabbitMQ message unacked in a worker until its eta; RabbitMQ closes
# a channel whose delivery stays unacked past consumer_timeout (30 min by default).
RABBITMQ_HOP_MS = 10 * 60 * 1000
DUE_OPTION = "datapost_due"


class DatapostRedisBroker(RedisBroker):
    """dramatiq's Redis broker with maintenance that can be run on demand.

    dramatiq requeues a dead worker's messages only when a random 0.1 % of calls happens to
    run maintenance on that queue, which can take many minutes. `run_maintenance()` forces
    it for every declared queue; the Recovery middleware calls it every few seconds.
    """

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("namespace", NAMESPACE)
        kwargs.setdefault("heartbeat_timeout", HEARTBEAT_TIMEOUT_MS)
        super().__init__(*args, **kwargs)
        self._forced = threading.local()

    @property
    def consumer_class(self):
        return _SelfHealingConsumer

    def connection_lost(self) -> None:
        """Take a new identity after a consumer lost its connection.

        On a connection error dramatiq's consumer thread throws away the messages it held in
        memory (prefetched, and delayed ones waiting for their eta) while their ids stay in
        this process's ack sets; the process goes on heartbeating, so no one would ever
        requeue them. Under a new `broker_id` the old identity falls silent, and the
        ordinary dead-worker recovery returns its messages after the heartbeat timeout.
        Messages still being processed may come round again; the job's claim drops them.
        """
        self.broker_id = str(uuid.uuid4())

    def _should_do_maintenance(self, command: str) -> int:
        if getattr(self._forced, "on", False) and command not in ("ack", "nack"):
            return 1
        return super()._should_do_maintenance(command)

    def run_maintenance(self) -> None:
        """Heartbeat, then requeue messages held by workers silent for the heartbeat timeout."""
        self._forced.on = True
        try:
            for queue in sorted(self.queues | self.delay_queues):
                self.do_qsize(queue)
        finally:
            self._forced.on = False


class _SelfHealingConsumer(_RedisConsumer):
    """dramatiq's Redis consumer, telling its broker when the connection broke, and fetching
    in batches.

    dramatiq's consumer fetches whenever it holds fewer messages than its prefetch, so once
    the workers are busy every finished message is followed by a fetch of one: a Lua round
    trip per message on top of its ack. This one waits (without polling: acks wake it)
    until at most half the prefetch is held, the workers still having the other half
    queued, then fetches the rest in one go.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._low = threading.Event()

    def _half_full(self) -> bool:
        return self.prefetch > 1 and self.outstanding_message_count > self.prefetch // 2

    def __next__(self):
        try:
            if not self.message_cache and self._half_full():
                self._low.clear()
                if self._half_full():  # an ack may have come in between
                    self._low.wait(self.timeout / 1000)
                return None
            return super().__next__()
        except ConnectionClosed:
            self.broker.connection_lost()
            raise

    def ack(self, message):
        try:
            super().ack(message)
        finally:
            if not self._half_full():
                self._low.set()

    def nack(self, message):
        try:
            super().nack(message)
        finally:
            if not self._half_full():
                self._low.set()


class Recovery(Middleware):
    """A thread per worker process: heartbeat + forced maintenance every `interval` seconds,
    and the `on_tick` callbacks (e.g. extending the leases of jobs in flight).

    dramatiq only heartbeats as a side effect of fetching; a process whose threads are all
    busy with long uploads would look dead. This thread keeps it alive and makes recovery
    of really dead processes take about heartbeat timeout + interval (~25 s), not minutes.
    """

    def __init__(self, interval: float = 5.0, on_tick: list[Callable[[], None]] | None = None):
        self.interval = interval
        self.on_tick = on_tick or []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def after_worker_boot(self, broker, worker) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, args=(broker,), daemon=True,
                                        name="datapost-recovery")
        self._thread.start()

    def before_worker_shutdown(self, broker, worker) -> None:
        self._stop.set()

    def _loop(self, broker) -> None:
        while not self._stop.wait(self.interval):
            self.tick(broker)

    def tick(self, broker) -> None:
        from .logging import get_logger

        try:
            if isinstance(broker, DatapostRedisBroker):
                broker.run_maintenance()
            for callback in self.on_tick:
                callback()
        except Exception:  # never let the keeper thread die
            get_logger("datapost.recovery").exception("recovery tick failed")


class DatapostRabbitmqBroker(RabbitmqBroker):
    """dramatiq's RabbitMQ broker, made safe for datapost's producers and long delays.

    - **Publisher confirms** (`confirm_delivery`, with `mandatory`): a publish returns once
      RabbitMQ has routed and accepted the message. The message goes out right after its job
      record is written, and a publishing connection that sat idle may have been dropped by
      the server; without confirms that publish could vanish silently (until the sweeper).
    - **One publishing connection per process**, used by one thread at a time. dramatiq keeps
      one per thread, and pika connections must not be shared between threads; but
      application threads come and go (a web server's pool), and each would leave an open
      connection behind. A lock makes the shared connection safe, and lets `close()` (e.g.
      `Datapost.close()`) close it from any thread; the next publish reconnects. Consumers
      keep their own connection per consumer thread, as in dramatiq.
    - **Long delays travel in hops** of at most `RABBITMQ_HOP_MS`. dramatiq holds a delayed
      message unacked in a worker's memory until its eta, and RabbitMQ closes a channel
      whose delivery stays unacked past `consumer_timeout` (30 min by default), so a 10 h
      retry would be bounced every 30 min. The message carries its real due time, and
      whenever it comes off the delay queue early it goes back with what remains.
    """

    def __init__(self, url: str, **kwargs) -> None:
        kwargs.setdefault("confirm_delivery", True)
        super().__init__(url=url, **kwargs)
        self.state = SimpleNamespace()  # not thread-local: one connection, behind the lock
        self._lock = threading.RLock()

    def enqueue(self, message: dramatiq.Message, *, delay: int | None = None) -> dramatiq.Message:
        message, delay = self.next_hop(message, delay)
        with self._lock:
            return super().enqueue(message, delay=delay)

    @staticmethod
    def next_hop(message: dramatiq.Message, delay: int | None,
                 now: int | None = None) -> tuple[dramatiq.Message, int | None]:
        """The message and delay to publish now. A message coming off the delay queue
        (no delay) before its due time is delayed again by what remains."""
        now = current_millis() if now is None else now
        due = message.options.get(DUE_OPTION)
        if delay is None and due is not None and due > now:
            delay = due - now
        if delay is not None and delay > RABBITMQ_HOP_MS:
            return message.copy(options={DUE_OPTION: now + delay}), RABBITMQ_HOP_MS
        if due is not None:
            message = message.copy()
            del message.options[DUE_OPTION]
        return message, delay

    def _ensure_queue(self, canonical_queue_name: str) -> None:
        with self._lock:
            super()._ensure_queue(canonical_queue_name)

    def get_queue_message_counts(self, queue_name: str) -> tuple[int, int, int]:
        with self._lock:
            return super().get_queue_message_counts(queue_name)

    def flush(self, queue_name: str) -> None:
        with self._lock:
            super().flush(queue_name)

    def close(self) -> None:
        """Close the publishing connection (any thread may call this; a later publish
        opens a new one)."""
        self._ignore_pika_logs()
        with self._lock:
            del self.connection  # closes the channel, then the connection
            for leftover in [*self.channels, *self.connections]:
                with contextlib.suppress(Exception):  # already broken: nothing to release
                    leftover.close()
            self.channels.clear()
            self.connections.clear()


def build_broker(url: str) -> dramatiq.Broker:
    """Redis (default) or RabbitMQ by URL scheme."""
    if url.startswith(("amqp://", "amqps://")):
        return DatapostRabbitmqBroker(url)
    return DatapostRedisBroker(url=url)


class Publisher:
    """Builds and sends `deliver(job_id)` messages for one queue."""

    def __init__(self, broker: dramatiq.Broker, queue: str) -> None:
        self.broker = broker
        self.queue = queue
        broker.declare_queue(queue)

    @property
    def inline(self) -> bool:
        """True when job creation can push the message itself (Redis broker)."""
        return isinstance(self.broker, RedisBroker)

    def message(self, job_id: str, delay_ms: int | None = None) -> dramatiq.Message:
        return dramatiq.Message(queue_name=self.queue, actor_name=ACTOR_NAME, args=(job_id,),
                                kwargs={}, options={})

    def inline_message(self, job_id: str, delay_ms: int | None = None) -> QueuedMessage | None:
        """The raw Redis entries for the create script, or None for other brokers."""
        if not self.inline:
            return None
        queue = self.queue
        options: dict = {"redis_message_id": str(uuid.uuid4())}
        if delay_ms:
            queue = dq_name(queue)
            options["eta"] = int(time.time() * 1000) + min(delay_ms, MAX_DELAY_MS)
        message = dramatiq.Message(queue_name=queue, actor_name=ACTOR_NAME, args=(job_id,),
                                   kwargs={}, options=options)
        return QueuedMessage(queue_key=f"{self.broker.namespace}:{queue}",
                             message_id=options["redis_message_id"], data=message.encode())

    def publish(self, job_id: str, delay_ms: int | None = None) -> None:
        """Send through the broker (retries, sweeps, non-Redis brokers)."""
        delay = min(int(delay_ms), MAX_DELAY_MS) if delay_ms else None
        self.broker.enqueue(self.message(job_id), delay=delay)
