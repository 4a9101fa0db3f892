"""Where a worker's CPU goes per delivered digi.me postbox write (issue 7's CPU target).

Starts the bench harness (private Redis + sandbox in its own process), enqueues N 1 KiB
postbox writes, and delivers them inside this process. Only this process's CPU counts
(time.process_time: every thread; the sandbox and Redis are other processes):

* `engine`: `DeliveryEngine.run(job_id)` called directly, one job after another (datapost's
  own per-job path, without dramatiq);
* `dramatiq`: a dramatiq `Worker` (T threads, the prefetch and poll `datapost worker` uses)
  consuming the real messages, so the consumer's fetch, the Lua scripts and the ack count.

Each mode runs batches of N jobs: `--repeat` unprofiled (the CPU figure is the lowest: the
least disturbed by other work on the machine), one under a CPU sampler (SIGPROF on process
CPU time; each tick charges every thread's CPU since the last tick to that thread's current
Python stack: the breakdown in ms/job, unaffected by waiting for the sandbox or Redis), and
one under cProfile (calls per job: Redis commands, HTTP requests, log calls...). The worker is built as
`worker/entrypoint.py` builds it: `DeliveryService.build`, the settings' logging (level
warning, as in the benchmarks) and prometheus in multiprocess mode.

    python -m bench.profile_worker [--jobs 1000] [--threads 8] [--mode both] [--repeat 3] [--top 40]
"""

from __future__ import annotations

import os
import tempfile

# prometheus_client picks multiprocess mode when it is imported, as `datapost worker` sets it.
_METRICS_DIR = tempfile.mkdtemp(prefix="datapost-profile-metrics-")
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", _METRICS_DIR)

import argparse  # noqa: E402
import cProfile  # noqa: E402
import gc  # noqa: E402
import pstats  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections import defaultdict  # noqa: E402

import dramatiq  # noqa: E402
from dramatiq.middleware import Middleware  # noqa: E402

from producers import Datapost  # noqa: E402
from worker.logging import configure_logging  # noqa: E402
from worker.service import DeliveryService  # noqa: E402

from .digime_throughput import crypto_cost  # noqa: E402
from .harness import bench_env, emit, machine, small_writes, wait_until  # noqa: E402

GROUPS = (  # (path fragment, group), first match wins
    ("/httpx/", "http client (httpx, httpcore, h11)"), ("/httpcore/", "http client (httpx, httpcore, h11)"),
    ("/h11/", "http client (httpx, httpcore, h11)"), ("/redis/", "redis-py"),
    ("/jwt/", "pyjwt (incl. RSA PS512 sign)"), ("/cryptography/", "cryptography (python side)"),
    ("/dramatiq/", "dramatiq"), ("/structlog/", "structlog"), ("/prometheus_client/", "prometheus"),
    ("/tenacity/", "tenacity"), ("/json/", "json"), ("/logging/", "stdlib logging"),
    ("worker/digime/postbox.py", "digime postbox (incl. RSA OAEP wrap, AES)"),
    ("worker/delivery/", "datapost worker/delivery"), ("worker/digime/", "datapost worker/digime"),
    ("worker/store/", "datapost worker/store"), ("worker/crypto/", "datapost worker/crypto"),
    ("worker/", "datapost worker (other)"), ("/python3.11/", "stdlib (other)"),
)


def group_of(file: str) -> str:
    return next((group for fragment, group in GROUPS if fragment in file), "other")


def short(file: str) -> str:
    for marker in ("/site-packages/", "/work/main/", "/lib/python3.11/"):
        if marker in file:
            return file.split(marker, 1)[1]
    return file


class CpuSampler:
    """A statistical CPU profiler for every thread of this process.

    SIGPROF fires every `interval` seconds of process CPU time. The handler reads each
    thread's own CPU clock and charges what it used since the last tick to the thread's
    current Python stack (leaf = `own`, every function on the stack once = `cum`). Blocked
    threads use no CPU and get nothing. Python runs the handler between bytecodes, so CPU
    spent inside a C call (an RSA signature, a socket syscall) is charged to the Python
    function that made it. With several busy threads the handler mostly runs when another
    thread lets the GIL go, i.e. blocks, so their CPU is charged to blocking calls: trust
    its breakdown in `engine` mode (one thread), and use `--cpu-only` under
    `py-spy record --gil` for the dramatiq mode.
    """

    def __init__(self, interval: float = 0.0005) -> None:
        self.interval = interval
        self.own: dict[tuple, float] = defaultdict(float)
        self.cum: dict[tuple, float] = defaultdict(float)
        self.total = 0.0
        self._last: dict[int, float] = {}
        self._clocks: dict[int, int] = {}
        self._previous = None

    def _clock(self, ident: int) -> int | None:
        clock = self._clocks.get(ident)
        if clock is None:
            try:
                clock = self._clocks[ident] = time.pthread_getcpuclockid(ident)
            except OSError:
                return None
        return clock

    def _tick(self, signum, frame) -> None:
        me = threading.get_ident()
        # A collection started inside sys._current_frames() can deadlock on the interpreter's
        # thread-list lock (CPython 3.11), so none may start while it runs.
        collecting = gc.isenabled()
        gc.disable()
        try:
            frames = sys._current_frames()
        finally:
            if collecting:
                gc.enable()
        for ident, top in frames.items():
            clock = self._clock(ident)
            if clock is None:
                continue
            try:
                now = time.clock_gettime(clock)
            except OSError:
                continue
            used = now - self._last.get(ident, now)
            self._last[ident] = now
            if used <= 0:
                continue
            if ident == me:
                top = frame  # below the handler
            self.total += used
            seen = set()
            leaf = True
            f = top
            while f is not None:
                code = f.f_code
                key = (code.co_filename, code.co_firstlineno, code.co_name)
                if leaf:
                    self.own[key] += used
                    leaf = False
                if key not in seen:
                    seen.add(key)
                    self.cum[key] += used
                f = f.f_back

    def start(self) -> None:
        for ident in sys._current_frames():
            clock = self._clock(ident)
            if clock is not None:
                self._last[ident] = time.clock_gettime(clock)
        self._previous = signal.signal(signal.SIGPROF, self._tick)
        signal.setitimer(signal.ITIMER_PROF, self.interval, self.interval)

    def stop(self) -> None:
        signal.setitimer(signal.ITIMER_PROF, 0, 0)
        signal.signal(signal.SIGPROF, self._previous or signal.SIG_DFL)

    def report(self, jobs: int, top: int) -> dict:
        per = 1000 / jobs
        grouped: dict[str, float] = defaultdict(float)
        for (file, _line, _name), t in self.own.items():
            grouped[group_of(file)] += t
        return {
            "sampled_ms_per_job": round(self.total * per, 3),
            "groups": [{"group": g, "ms_per_job": round(t * per, 3)}
                       for g, t in sorted(grouped.items(), key=lambda kv: -kv[1])],
            "cumulative": [{"function": f"{short(f)}:{line}({name})",
                            "ms_per_job": round(t * per, 3)}
                           for (f, line, name), t in sorted(self.cum.items(),
                                                            key=lambda kv: -kv[1])[:top]],
            "own": [{"function": f"{short(f)}:{line}({name})", "ms_per_job": round(t * per, 3)}
                    for (f, line, name), t in sorted(self.own.items(),
                                                     key=lambda kv: -kv[1])[:top]],
        }


class ThreadProfiles(Middleware):
    """One cProfile per dramatiq consumer/worker thread, enabled inside that thread."""

    def __init__(self) -> None:
        self.enabled = False
        self.profiles: list[cProfile.Profile] = []
        self._local = threading.local()
        self._lock = threading.Lock()

    def _start(self) -> None:
        if not self.enabled:
            return
        prof = cProfile.Profile()
        with self._lock:
            self.profiles.append(prof)
        self._local.prof = prof
        prof.enable()

    def _stop(self) -> None:
        prof = getattr(self._local, "prof", None)
        if prof is not None:
            prof.disable()
            self._local.prof = None

    def after_consumer_thread_boot(self, broker, thread) -> None:
        self._start()

    def after_worker_thread_boot(self, broker, thread) -> None:
        self._start()

    def before_consumer_thread_shutdown(self, broker, thread) -> None:
        self._stop()

    def before_worker_thread_shutdown(self, broker, thread) -> None:
        self._stop()


def calls(stats: pstats.Stats, jobs: int, top: int) -> list[dict]:
    """The most frequently called functions, calls per job (cProfile)."""
    rows = [{"function": f"{short(file)}:{line}({name})", "calls_per_job": round(nc / jobs, 2)}
            for (file, line, name), (_cc, nc, _tt, _ct, _callers)
            in stats.stats.items()]  # type: ignore[attr-defined]
    rows.sort(key=lambda r: -r["calls_per_job"])
    return rows[:top]


def key_calls(stats: pstats.Stats, jobs: int) -> dict[str, float]:
    """Calls per job of a few functions that say how many round trips a job makes."""
    wanted = {
        "redis commands/pipelines sent": [("redis/client.py", "_execute_command"),
                                          ("redis/client.py", "_execute_pipeline"),
                                          ("redis/client.py", "_execute_transaction")],
        "redis Lua scripts (evalsha)": [("redis/commands/core.py", "evalsha")],
        "http requests": [("httpx/_client.py", "send")],
        "structlog calls": [("structlog/_native.py", "meth")],
        "prometheus inc/observe": [("prometheus_client/metrics.py", "inc"),
                                   ("prometheus_client/metrics.py", "observe")],
    }
    out = {}
    for label, names in wanted.items():
        n = 0
        for (file, _line, name), (_cc, nc, *_rest) in stats.stats.items():  # type: ignore[attr-defined]
            if any(file.endswith(f) and name == fn for f, fn in names):
                n += nc
        out[label] = round(n / jobs, 2)
    return out


def enqueue(datapost: Datapost, users: list[str], count: int, size: int, tag: str) -> list[str]:
    writes = small_writes(users, count, size, tag=f"{tag}-")
    ids: list[str] = []
    for i in range(0, count, 500):
        ids += datapost.enqueue_many(writes[i:i + 500])
    return ids


def succeeded(datapost: Datapost) -> int:
    return datapost.stores.redis.zcard("datapost:jobs:succeeded")


def run_engine(service: DeliveryService, ids: list[str], profiler=None) -> float:
    """CPU seconds of delivering `ids` by calling the engine directly."""
    run = service.engine.run
    started = time.process_time()
    if profiler is not None:
        (profiler.enable if isinstance(profiler, cProfile.Profile) else profiler.start)()
    for job_id in ids:
        run(job_id)
    if profiler is not None:
        (profiler.disable if isinstance(profiler, cProfile.Profile) else profiler.stop)()
    return time.process_time() - started


def run_dramatiq(service: DeliveryService, datapost: Datapost, target: int, threads: int, *,
                 sampler: CpuSampler | None = None,
                 profiles: ThreadProfiles | None = None) -> float:
    """CPU seconds of this process while a dramatiq Worker delivers the queued messages
    until `target` jobs have succeeded."""
    if profiles is not None:
        profiles.enabled = True
    worker = dramatiq.Worker(service.broker, worker_threads=threads, worker_timeout=100)
    started = time.process_time()
    if sampler is not None:
        sampler.start()
    worker.start()
    wait_until(lambda: succeeded(datapost) >= target, timeout=600, interval=0.1)
    if sampler is not None:
        sampler.stop()
    worker.stop(timeout=60_000)
    cpu = time.process_time() - started
    # a stopped Worker leaves its middleware on the broker; the next one adds its own
    service.broker.middleware[:] = [m for m in service.broker.middleware
                                    if type(m).__name__ != "_WorkerMiddleware"]
    if profiles is not None:
        profiles.enabled = False
    return cpu


def cpu_figures(cpus: list[float], jobs: int) -> dict:
    per_job = sorted(round(c / jobs * 1000, 3) for c in cpus)
    return {"cpu_ms_per_job": per_job[0], "cpu_ms_per_job_runs": per_job}


def show(title: str, report: dict) -> None:
    lines = [f"==== {title}: {report['cpu_ms_per_job']} ms CPU/job unprofiled; sampled "
             f"{report['sampled']['sampled_ms_per_job']} ms/job ===="]
    lines += [f"{r['ms_per_job']:8.3f}  {r['group']}" for r in report["sampled"]["groups"]]
    lines.append("-- cumulative (ms/job) --")
    lines += [f"{r['ms_per_job']:8.3f}  {r['function']}" for r in report["sampled"]["cumulative"]]
    lines.append("-- own (ms/job) --")
    lines += [f"{r['ms_per_job']:8.3f}  {r['function']}" for r in report["sampled"]["own"]]
    lines.append("-- calls per job (cProfile) --")
    lines += [f"{v:8.2f}  {k}" for k, v in report["round_trips"].items()]
    lines += [f"{r['calls_per_job']:8.2f}  {r['function']}" for r in report["calls"]]
    print("\n".join(lines), file=sys.stderr)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--jobs", type=int, default=1000, help="jobs per measured batch")
    p.add_argument("--threads", type=int, default=8, help="dramatiq worker threads")
    p.add_argument("--size", type=int, default=1024, help="bytes per write")
    p.add_argument("--users", type=int, default=10)
    p.add_argument("--mode", choices=("engine", "dramatiq", "both"), default="both")
    p.add_argument("--repeat", type=int, default=3,
                   help="unprofiled batches per mode; the figure is the lowest (least disturbed "
                        "by other work on the machine), all are reported")
    p.add_argument("--cpu-only", action="store_true",
                   help="only the unprofiled batches (e.g. under an outside sampler such as "
                        "`py-spy record --gil`, which attributes threads' CPU better than "
                        "this script's sampler does with many threads)")
    p.add_argument("--top", type=int, default=40, help="functions listed per table")
    p.add_argument("--dump", help="write each mode's cProfile stats to DUMP.<mode>.prof")
    args = p.parse_args()
    os.environ.setdefault("dramatiq_queue_prefetch", str(max(8, 2 * args.threads)))
    result: dict = {"benchmark": "profile_worker", "machine": machine(), "jobs": args.jobs,
                    "bytes_per_job": args.size, "threads": args.threads}
    try:
        with bench_env() as bench:
            settings = bench.settings()
            redactor = configure_logging(settings.log)
            profiles = ThreadProfiles()
            with Datapost.connect(settings, bench.redis.url) as datapost:
                users = bench.mint_users(datapost, args.users)
                service = DeliveryService.build(settings, bench.redis.url, redactor=redactor)
                service.broker.add_middleware(profiles)
                service.declare_actor()
                queue = settings.delivery.queue
                # warm-up: key parse, JWKS, connections, first-call caches
                warm = enqueue(datapost, users, 20, args.size, "warm")
                service.broker.flush(queue)
                run_engine(service, warm)
                done = len(warm)
                n = args.jobs
                if args.mode in ("engine", "both"):
                    def batch(tag: str) -> list[str]:
                        ids = enqueue(datapost, users, n, args.size, tag)
                        service.broker.flush(queue)  # delivered directly, not by dramatiq
                        return ids

                    cpus = [run_engine(service, batch(f"engine{r}")) for r in range(args.repeat)]
                    done += args.repeat * n
                    result["engine"] = cpu_figures(cpus, n)
                    if not args.cpu_only:
                        sampler = CpuSampler()
                        run_engine(service, batch("engine-sampled"), sampler)
                        prof = cProfile.Profile()
                        run_engine(service, batch("engine-cprofile"), prof)
                        done += 2 * n
                        stats = pstats.Stats(prof)
                        result["engine"] |= {"sampled": sampler.report(n, args.top),
                                             "round_trips": key_calls(stats, n),
                                             "calls": calls(stats, n, args.top)}
                        show("engine (direct calls)", result["engine"])
                        if args.dump:
                            stats.dump_stats(f"{args.dump}.engine.prof")
                if args.mode in ("dramatiq", "both"):
                    cpus = []
                    for r in range(args.repeat):
                        enqueue(datapost, users, n, args.size, f"dq{r}")
                        done += n
                        cpus.append(run_dramatiq(service, datapost, done, args.threads))
                    result["dramatiq"] = cpu_figures(cpus, n)
                    if not args.cpu_only:
                        sampler = CpuSampler()
                        enqueue(datapost, users, n, args.size, "dq-sampled")
                        done += n
                        run_dramatiq(service, datapost, done, args.threads, sampler=sampler)
                        enqueue(datapost, users, n, args.size, "dq-cprofile")
                        done += n
                        run_dramatiq(service, datapost, done, args.threads, profiles=profiles)
                        stats = pstats.Stats()
                        for prof in profiles.profiles:
                            stats.add(prof)
                        result["dramatiq"] |= {"sampled": sampler.report(n, args.top),
                                               "round_trips": key_calls(stats, n),
                                               "calls": calls(stats, n, args.top)}
                        show("dramatiq worker (all threads)", result["dramatiq"])
                        if args.dump:
                            stats.dump_stats(f"{args.dump}.dramatiq.prof")
                result["states"] = {k: v for k, v in datapost.stores.jobs.counts().items() if v}
                service.close()
    finally:
        shutil.rmtree(_METRICS_DIR, ignore_errors=True)
    crypto = crypto_cost()
    result["crypto_ms_per_job"] = round(crypto * 1000, 3)
    for mode in ("engine", "dramatiq"):
        if mode in result:
            result[mode]["cpu_over_crypto"] = round(
                result[mode]["cpu_ms_per_job"] / result["crypto_ms_per_job"], 2)
    print(f"crypto {result['crypto_ms_per_job']} ms/job; "
          + "; ".join(f"{m} {result[m]['cpu_ms_per_job']} ms/job = {result[m]['cpu_over_crypto']}x"
                      for m in ("engine", "dramatiq") if m in result), file=sys.stderr)
    emit(result)


if __name__ == "__main__":
    main()
