"""A large digi.me postbox write: worker peak memory and throughput.

One file (1 GiB by default) is enqueued from a path, sealed into the payload directory, then
a single-thread worker streams it: decrypt from the payload store -> AES-256-CBC encrypt ->
multipart upload with a known Content-Length. Reports the worker's peak RSS and the upload
throughput against single-core AES-256-CBC encryption speed measured in the same run.

    python -m bench.large_file [--mib 1024]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from producers import Datapost

from .harness import bench_env, emit, machine, peak_rss_mib, tree, wait_until

MiB = 1 << 20


def aes_cbc_speed(total_mib: int = 512) -> float:
    """Single-core AES-256-CBC encryption, MiB/s, in 1 MiB chunks into one reused buffer.

    `update_into` is the steady best case: `update` returns a fresh 1 MiB object per call,
    whose allocation costs vary with heap state and made the reference read anywhere from
    ~320 to ~830 MiB/s on the same machine. The stronger reference is the honest one."""
    enc = Cipher(algorithms.AES(os.urandom(32)), modes.CBC(os.urandom(16))).encryptor()
    block = os.urandom(MiB)
    out = bytearray(MiB + 16)
    enc.update_into(block, out)  # warm up
    started = time.perf_counter()
    for _ in range(total_mib):
        enc.update_into(block, out)
    return total_mib / (time.perf_counter() - started)


def write_file(path, mib: int) -> str:
    digest = hashlib.sha256()
    block = os.urandom(MiB)
    with path.open("wb") as f:
        for i in range(mib):
            chunk = block[:-8] + i.to_bytes(8, "big")
            digest.update(chunk)
            f.write(chunk)
    return digest.hexdigest()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mib", type=int, default=1024)
    args = p.parse_args()
    with bench_env() as bench:
        source = bench.workdir / "large.bin"
        print(f"writing a {args.mib} MiB file", file=sys.stderr)
        sha = write_file(source, args.mib)
        with Datapost.connect(bench.settings(), bench.redis.url) as datapost:
            minted = bench.mint_user(datapost, "large-user")
            worker = bench.start_worker(1, 1)
            time.sleep(4)
            baseline = peak_rss_mib(tree(worker))
            started = time.monotonic()
            job_id = datapost.enqueue_digime("large-user", source, file_name="large.bin")
            enqueue_s = time.monotonic() - started
            print(f"enqueued (sealed into the payload store) in {enqueue_s:.1f} s", file=sys.stderr)
            procs = tree(worker)
            upload_started = time.monotonic()
            wait_until(lambda: datapost.job(job_id).state in ("succeeded", "failed", "dead"),
                       timeout=1800, interval=0.2)
            upload_s = time.monotonic() - upload_started
            peaks = peak_rss_mib(procs)
            state = datapost.job(job_id).state
        rows = bench.control("GET", "/deliveries", params={"user_id": minted["user_id"]})
    aes = aes_cbc_speed()
    delivered = rows["deliveries"][-1] if rows["deliveries"] else {}
    throughput = args.mib / upload_s
    emit({
        "benchmark": "large_file", "machine": machine(), "mib": args.mib, "state": state,
        "sha256_matches": delivered.get("sha256") == sha,
        "enqueue_seconds": round(enqueue_s, 2), "deliver_seconds": round(upload_s, 2),
        "throughput_mib_s": round(throughput, 1),
        "aes_256_cbc_single_core_mib_s": round(aes, 1),
        "throughput_over_aes": round(throughput / aes, 3),
        "worker_peak_rss_mib": round(max(peaks.values()), 1),
        "worker_peak_rss_by_pid": {str(k): round(v, 1) for k, v in peaks.items()},
        "worker_rss_before_mib": {str(k): round(v, 1) for k, v in baseline.items()},
    })


if __name__ == "__main__":
    main()
