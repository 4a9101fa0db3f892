"""digi.me delivery throughput: small postbox writes through the whole pipeline.

enqueue (bulk) -> Redis -> `datapost worker` processes -> sandbox decrypts and stores ->
result recorded. Reports jobs/s, worker CPU per delivered job, and the cost of the job's own
cryptography (one PS512 signature + one RSA-OAEP wrap) measured in the same run.

    python -m bench.digime_throughput [--jobs 2000] [--processes 2] [--threads 8]
"""

from __future__ import annotations

import argparse
import os
import time

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from producers import Datapost

from .harness import bench_env, emit, machine, run_pipeline, small_writes


def crypto_cost(rounds: int = 500) -> float:
    """Seconds of one PS512 (salt 64) signature + one OAEP-SHA1 wrap on one core."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    box = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA512()), salt_length=64)
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None)
    started = time.process_time()
    for _ in range(rounds):
        key.sign(b"x" * 600, pss, hashes.SHA512())
        box.encrypt(os.urandom(32), oaep)
    return (time.process_time() - started) / rounds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--jobs", type=int, default=2000)
    p.add_argument("--processes", type=int, default=2)
    p.add_argument("--threads", type=int, default=8)
    p.add_argument("--size", type=int, default=1024, help="bytes per write")
    p.add_argument("--users", type=int, default=10)
    args = p.parse_args()
    with bench_env() as bench:
        settings = bench.settings()
        with Datapost.connect(settings, bench.redis.url) as datapost:
            users = bench.mint_users(datapost, args.users)
            writes = small_writes(users, args.jobs, args.size)
            run = run_pipeline(bench, datapost, writes, args.processes, args.threads)
    crypto = crypto_cost()
    per_job = run["worker_cpu"] / args.jobs
    emit({
        "benchmark": "digime_throughput", "machine": machine(), "jobs": args.jobs,
        "bytes_per_job": args.size, "processes": args.processes, "threads": args.threads,
        "seconds": round(run["seconds"], 3),
        "jobs_per_second": round(args.jobs / run["seconds"], 1),
        "enqueue_seconds": round(run["enqueue_seconds"], 3),
        "worker_cpu_ms_per_job": round(per_job * 1000, 3),
        "sandbox_cpu_ms_per_job": round(run["sandbox_cpu"] / args.jobs * 1000, 3),
        "crypto_ms_per_job": round(crypto * 1000, 3),
        "worker_cpu_over_crypto": round(per_job / crypto, 2),
        "states": run["states"],
    })


if __name__ == "__main__":
    main()
