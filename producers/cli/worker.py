"""`datapost worker`: run delivery workers (dramatiq processes x threads).

Without DATAPOST_REDIS_URL the embedded server is started first and handed to the worker
processes. SIGTERM/SIGINT are passed on, so dramatiq finishes or requeues in-flight jobs.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from worker.config import Settings, queue_name
from worker.redis_server import redis_for_cli

from ..callback.serve import serve_in_thread
from .output import Output
from .worker_http import metrics_app


def register(sub) -> None:
    p = sub.add_parser("worker", help="run delivery workers")
    p.add_argument("--processes", "-p", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--threads", "-t", type=int, default=8, help="threads per process (default 8)")
    p.add_argument("--queue", help="queue to consume (default DATAPOST_QUEUE, 'datapost'); "
                                   "producers must enqueue to the same name")
    p.add_argument("--prefetch", type=int, default=0,
                   help="messages each process holds ahead (default 2 x threads, at least 8)")
    p.add_argument("--poll-ms", type=int, default=100,
                   help="idle poll interval in ms (dramatiq's default is 1000; lower = less latency)")
    p.add_argument("--metrics-port", type=int, default=None,
                   help="serve /metrics, /healthz, /readyz here (default DATAPOST_METRICS_PORT, "
                        "9191; 0 turns it off)")
    p.add_argument("--metrics-host", default="0.0.0.0",  # noqa: S104 - scraped from elsewhere
                   help="address for the metrics endpoint (default 0.0.0.0, like dramatiq's)")
    p.add_argument("--json", action="store_true", help="machine-readable start-up line")
    p.set_defaults(handler=run)


def port_problem(host: str, port: int) -> str | None:
    """Why the metrics port cannot be used, checked before any worker process starts."""
    try:
        with socket.socket() as sock:
            sock.bind((host, port))
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


def worker_command(args: argparse.Namespace) -> list[str]:
    return [sys.executable, "-m", "dramatiq", "worker.entrypoint", "--processes",
            str(args.processes), "--threads", str(args.threads), "--worker-shutdown-timeout",
            "600000"]


def run(args: argparse.Namespace, settings: Settings, out: Output) -> int:
    for name in ("processes", "threads"):
        if not 1 <= getattr(args, name) <= 256:
            out.error(f"--{name} must be from 1 to 256")
            return 2
    if args.queue is not None:
        try:
            queue = queue_name(args.queue)
        except ValueError as exc:
            out.error(f"--queue {exc}")
            return 2
        settings = dataclasses.replace(
            settings, delivery=dataclasses.replace(settings.delivery, queue=queue))
    port = settings.delivery.metrics_port if args.metrics_port is None else args.metrics_port
    problem = port_problem(args.metrics_host, port) if port else None
    if problem:
        out.error(f"cannot serve metrics on {args.metrics_host}:{port}: {problem}; set "
                  "DATAPOST_METRICS_PORT (or --metrics-port) to a free port, or 0 to turn it off")
        return 2
    with redis_for_cli(settings.redis_url, settings.data_dir, out.say) as url, \
            tempfile.TemporaryDirectory(prefix="datapost-metrics-") as metrics_dir:
        env = dict(os.environ)
        env["DATAPOST_REDIS_URL"] = url
        env["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
        env["DATAPOST_QUEUE"] = settings.delivery.queue
        env.setdefault("dramatiq_queue_prefetch", str(args.prefetch or max(8, 2 * args.threads)))
        env.setdefault("dramatiq_worker_timeout", str(args.poll_ms))
        out.result({"redis_url": url, "processes": args.processes, "threads": args.threads,
                    "metrics_port": port or None},
                   human=f"Starting {args.processes} worker process(es) x {args.threads} "
                         f"thread(s) on queue {settings.delivery.queue!r}"
                         + (f"; metrics on :{port}/metrics" if port else ""))
        # Same process group, so a crash of this process takes the workers with it. Stop it
        # by signalling this pid only (Docker, Kubernetes, systemd KillMode=mixed do): a
        # SIGTERM to the whole group reaches dramatiq twice, and a second SIGTERM makes it
        # kill its workers instead of draining them.
        child = subprocess.Popen(worker_command(args), env=env)

        def forward(signum, _frame) -> None:
            child.send_signal(signum)

        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, forward)
        if not port:
            return child.wait()
        app = metrics_app(Path(metrics_dir), url, settings.delivery.queue, child,
                          broker_url=settings.broker_url)
        with serve_in_thread(app, args.metrics_host, port):
            return child.wait()
