"""No token, key or payload byte in Redis or in the worker's logs, in plaintext."""

from __future__ import annotations

import base64
import os
from pathlib import Path

from .conftest import wait_for

MARKER = b"PAYLOAD-MARKER-" + os.urandom(8).hex().encode()


def all_redis_bytes(client) -> bytes:
    out = bytearray()
    for key in client.scan_iter(count=1000):
        out += key
        kind = client.type(key)
        if kind == b"string":
            out += client.get(key) or b""
        elif kind == b"hash":
            for field, value in client.hgetall(key).items():
                out += field + value
        elif kind == b"list":
            out += b"".join(client.lrange(key, 0, -1))
        elif kind == b"set":
            out += b"".join(client.smembers(key))
        elif kind == b"zset":
            out += b"".join(m for m, _ in client.zrange(key, 0, -1, withscores=True))
        elif kind == b"stream":
            for _, fields in client.xrange(key):
                out += b"".join(k + v for k, v in fields.items())
    return bytes(out)


def test_redis_and_logs_hold_no_secrets(sandbox, datapost, mint_user, spawn_worker, redis_client,
                                        env, tmp_path, contract):
    users = [mint_user(access_ttl=-5) for _ in range(2)]  # expired: forces a refresh too
    sandbox.control("DELETE", "/faults")
    sandbox.control("POST", "/faults", json={"target": "digime", "path": "postbox",
                                             "status": 500, "times": 1})
    payload = MARKER * 100
    ids = [datapost.enqueue_digime(u["user"], payload, file_name="secret.txt",
                                   descriptor={"mimeType": "text/plain", "accounts": [],
                                               "tags": ["DESCRIPTOR-MARKER"]}) for u in users]
    big = tmp_path / "big.bin"
    big.write_bytes(MARKER * 40_000)  # over the inline limit: goes to the payload directory
    queued_big = datapost.enqueue_digime(users[0]["user"], big, file_name="big.bin")
    scan_before_delivery = all_redis_bytes(redis_client)
    files_before = b"".join(p.read_bytes() for p in Path(env["DATAPOST_DATA_DIR"]).rglob("*")
                            if p.is_file())
    spawn_worker(threads=2)
    wait_for(datapost, [*ids, queued_big], {"succeeded"}, timeout=90)
    sandbox.control("DELETE", "/faults")
    scan_after = all_redis_bytes(redis_client)

    secrets = [MARKER, b"DESCRIPTOR-MARKER", b"secret.txt", b"BEGIN", b"PRIVATE KEY"]
    for u in users:
        secrets += [u["access_token"]["value"].encode(), u["refresh_token"]["value"].encode()]
    stored = [datapost.stores.vault.load("digime", u["user"]) for u in users]
    secrets += [s.access_token.encode() for s in stored] + [s.refresh_token.encode() for s in stored]
    secrets += [base64.b64encode(MARKER)]
    logs = b"".join(p.read_bytes() for p in tmp_path.glob("worker-*.log"))
    assert b"job finished" in logs  # the log is real and was captured
    for secret in secrets:
        assert secret not in scan_before_delivery, secret[:20]
        assert secret not in scan_after, secret[:20]
        assert secret not in files_before, secret[:20]
        assert secret not in logs, secret[:20]
