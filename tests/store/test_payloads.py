"""The payload store against a real Redis and a real directory: every input kind, limits,
tampering, a plaintext scan of everything at rest, and a large payload in bounded memory."""

from __future__ import annotations

import base64
import io
import json
import os
import secrets
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import redis
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from worker.config import load_settings
from worker.crypto import Keyring
from worker.errors import PayloadError, PayloadMissing, PayloadTooLarge, SealError, ValidationError
from worker.store import (
    CredentialVault,
    DataswyftCredential,
    DigimeCredential,
    PayloadRef,
    PayloadStore,
    keys,
)

ROOT = Path(__file__).resolve().parents[2]
INLINE = 1024
MAX = 1024 * 1024


@pytest.fixture
def keyring() -> Keyring:
    return Keyring(os.urandom(32))


@pytest.fixture
def store(redis_client: redis.Redis, keyring: Keyring, tmp_path: Path) -> PayloadStore:
    return PayloadStore(redis_client, keyring, tmp_path / "payloads", INLINE, MAX, chunk_size=4096)


def files_under(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.is_file()) if directory.exists() else []


class Trickle(io.RawIOBase):
    """A binary stream that returns at most `step` bytes per read (like a socket)."""

    def __init__(self, data: bytes, step: int = 333) -> None:
        self._data, self._pos, self._step = data, 0, step

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        piece = self._data[self._pos:self._pos + min(len(buffer), self._step)]
        buffer[:len(piece)] = piece
        self._pos += len(piece)
        return len(piece)


# -- round trips --

@pytest.mark.parametrize("size,kind", [(0, "inline"), (10, "inline"), (INLINE, "inline"),
                                       (INLINE + 1, "file"), (50_000, "file"), (MAX, "file")])
@pytest.mark.parametrize("form", ["bytes", "bytearray", "memoryview", "stream", "trickle"])
def test_round_trip(store: PayloadStore, size: int, kind: str, form: str) -> None:
    data = os.urandom(size)
    source = {"bytes": data, "bytearray": bytearray(data), "memoryview": memoryview(data),
              "stream": io.BytesIO(data), "trickle": Trickle(data)}[form]
    ref = store.put("job1", source)
    assert ref == PayloadRef(kind, size)
    reader = store.open("job1", ref)
    assert reader.size == size and reader.read() == data
    assert b"".join(reader.chunks(1000)) == data
    assert all(len(c) == 1000 for c in list(reader.chunks(1000))[:-1])
    assert b"".join(reader) == data  # re-iterable: an upload can be retried


@pytest.mark.parametrize("size,kind", [(0, "inline"), (INLINE, "inline"), (INLINE + 1, "file"),
                                       (300_000, "file")])
def test_path_inputs(store: PayloadStore, tmp_path: Path, size: int, kind: str) -> None:
    data = os.urandom(size)
    source = tmp_path / "upload.bin"
    source.write_bytes(data)
    for form in (source, str(source)):
        ref = store.put("job2", form)
        assert ref == PayloadRef(kind, size)
        assert store.open("job2", ref).read() == data


def test_layout_on_disk_and_in_redis(store: PayloadStore, redis_client: redis.Redis) -> None:
    store.put("abcdef", b"small")
    assert redis_client.exists("datapost:payload:abcdef")
    ref = store.put("0f9e8d", os.urandom(INLINE * 10))
    path = store.directory / "0f" / "0f9e8d.sealed"
    assert store.path("0f9e8d") == path and path.is_file()
    assert files_under(store.directory) == [path]  # no temp file left behind
    assert stat.S_IMODE(store.directory.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert ref.kind == "file" and not redis_client.exists("datapost:payload:0f9e8d")


def test_put_through_a_pipeline(store: PayloadStore, redis_client: redis.Redis) -> None:
    pipe = redis_client.pipeline()
    refs = [store.put(f"bulk{n}", f"payload {n}".encode(), pipe=pipe) for n in range(5)]
    assert redis_client.dbsize() == 0
    pipe.execute()
    assert [store.open(f"bulk{n}", r).read() for n, r in enumerate(refs)] == \
           [f"payload {n}".encode() for n in range(5)]
    pipe = redis_client.pipeline()
    for n, ref in enumerate(refs):
        store.delete(f"bulk{n}", ref, pipe=pipe)
    assert redis_client.dbsize() == 5
    pipe.execute()
    assert redis_client.dbsize() == 0


def test_ref_fields_round_trip_through_a_job_hash(store: PayloadStore,
                                                  redis_client: redis.Redis) -> None:
    ref = store.put("job3", os.urandom(5000))
    redis_client.hset("datapost:job:job3", mapping=ref.to_fields())
    assert ref.to_fields() == {"payload_kind": "file", "payload_size": "5000"}
    assert PayloadRef.from_fields(redis_client.hgetall("datapost:job:job3")) == ref
    assert PayloadRef.from_fields(ref.to_fields()) == ref
    for bad in ({}, {"payload_kind": "cloud", "payload_size": "1"},
                {"payload_kind": "file", "payload_size": "-1"}):
        with pytest.raises(PayloadError):
            PayloadRef.from_fields(bad)


def test_from_settings(redis_client: redis.Redis, keyring: Keyring, tmp_path: Path) -> None:
    settings = load_settings({"DATAPOST_DATA_DIR": str(tmp_path / "data"),
                              "DATAPOST_INLINE_PAYLOAD_MAX": "10",
                              "DATAPOST_MAX_PAYLOAD_BYTES": "100"})
    store = PayloadStore.from_settings(redis_client, keyring, settings)
    assert (store.directory, store.inline_limit, store.max_bytes) == \
           (tmp_path / "data" / "payloads", 10, 100)
    assert store.put("j", b"x" * 11).kind == "file"


# -- refused input --

@pytest.mark.parametrize("form", ["bytes", "path", "stream", "trickle"])
def test_too_large_leaves_nothing_behind(store: PayloadStore, redis_client: redis.Redis,
                                         tmp_path: Path, form: str) -> None:
    data = os.urandom(MAX + 1)
    source_file = tmp_path / "big.bin"
    source_file.write_bytes(data)
    source = {"bytes": data, "path": source_file, "stream": io.BytesIO(data),
              "trickle": Trickle(data, 65536)}[form]
    with pytest.raises(PayloadTooLarge, match=f"limit of {MAX} bytes") as info:
        store.put("job4", source)
    assert isinstance(info.value, ValidationError)
    assert redis_client.dbsize() == 0
    assert files_under(store.directory) == []


def test_limit_is_inclusive_with_an_inline_only_store(redis_client: redis.Redis,
                                                      keyring: Keyring, tmp_path: Path) -> None:
    small = PayloadStore(redis_client, keyring, tmp_path, inline_limit=100, max_bytes=100)
    assert small.put("j", io.BytesIO(b"x" * 100)) == PayloadRef("inline", 100)
    with pytest.raises(PayloadTooLarge):
        small.put("k", io.BytesIO(b"x" * 101))
    assert not redis_client.exists(keys.payload("k"))


def test_unreadable_paths(store: PayloadStore, tmp_path: Path) -> None:
    missing = tmp_path / "nope.bin"
    with pytest.raises(PayloadError, match=f"cannot read {missing}: No such file or directory"):
        store.put("job5", missing)
    with pytest.raises(PayloadError, match=f"cannot read {tmp_path}: not a regular file"):
        store.put("job5", tmp_path)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(PayloadError, match="not a regular file"):
        store.put("job5", fifo)  # and does not block waiting for a writer
    if os.geteuid() != 0:
        locked = tmp_path / "locked.bin"
        locked.write_bytes(b"x")
        locked.chmod(0)
        with pytest.raises(PayloadError, match="Permission denied"):
            store.put("job5", locked)


def test_text_and_unreadable_streams_are_refused(store: PayloadStore, tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="binary mode"):
        store.put("job6", io.StringIO("text"))
    text_file = tmp_path / "t.txt"
    text_file.write_text("hello")
    with open(text_file) as handle, pytest.raises(ValidationError, match="binary mode"):
        store.put("job6", handle)

    class DuckText:
        def read(self, size: int = -1) -> str:
            return "not bytes"

    with pytest.raises(ValidationError, match="binary mode"):
        store.put("job6", DuckText())  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="not int"):
        store.put("job6", 42)  # type: ignore[arg-type]
    with open(tmp_path / "w.bin", "wb") as handle, pytest.raises(ValidationError, match="not readable"):
        store.put("job6", handle)


@pytest.mark.parametrize("job_id", ["", "../etc", "a/b", "a.b", "x" * 129, None])
def test_job_ids_cannot_escape_the_directory(store: PayloadStore, job_id) -> None:
    with pytest.raises(ValidationError, match="job id"):
        store.put(job_id, b"x" * (INLINE + 1))


# -- missing and tampered --

def test_missing_payloads(store: PayloadStore) -> None:
    small, large = store.put("j1", b"x"), store.put("j2", os.urandom(INLINE * 3))
    store.delete("j1", small)
    store.delete("j2", large)
    store.delete("j2", large)  # twice is fine
    with pytest.raises(PayloadMissing):
        store.open("j1", small)
    with pytest.raises(PayloadMissing):
        store.open("j2", large)
    assert files_under(store.directory) == []


def test_file_removed_between_open_and_read(store: PayloadStore) -> None:
    ref = store.put("j3", os.urandom(INLINE * 3))
    reader = store.open("j3", ref)
    store.path("j3").unlink()
    with pytest.raises(PayloadMissing):
        reader.read()


def test_delete_without_a_ref_removes_both(store: PayloadStore, redis_client: redis.Redis) -> None:
    store.put("j4", b"x")
    store.put("j4", os.urandom(INLINE * 3))
    store.delete("j4")
    assert redis_client.dbsize() == 0 and files_under(store.directory) == []


def test_tampered_inline_payload(store: PayloadStore, redis_client: redis.Redis) -> None:
    ref = store.put("j5", b"hello")
    blob = bytearray(redis_client.get(keys.payload("j5")))
    blob[-3] ^= 1
    redis_client.set(keys.payload("j5"), bytes(blob))
    with pytest.raises(SealError):
        store.open("j5", ref)


def test_tampered_truncated_and_extended_files(store: PayloadStore) -> None:
    data = os.urandom(20_000)
    ref = store.put("j6", data)
    path = store.path("j6")
    original = path.read_bytes()
    for mutated in (original[:-1], original[:-4112], original + original[-100:],
                    original[:5000] + bytes([original[5000] ^ 1]) + original[5001:]):
        path.write_bytes(mutated)
        with pytest.raises(SealError):
            store.open("j6", ref).read()
    path.write_bytes(original)
    assert store.open("j6", ref).read() == data


def test_payloads_are_bound_to_their_job(store: PayloadStore, redis_client: redis.Redis) -> None:
    small = store.put("j7", b"for j7")
    redis_client.set(keys.payload("j8"), redis_client.get(keys.payload("j7")))
    with pytest.raises(SealError):
        store.open("j8", small)
    large = store.put("j9", os.urandom(INLINE * 3))
    store.path("k9").parent.mkdir(mode=0o700, exist_ok=True)
    store.path("j9").rename(store.path("k9"))
    with pytest.raises(SealError):
        store.open("k9", large).read()


def test_record_size_mismatch_and_read_limit(store: PayloadStore) -> None:
    ref = store.put("j10", os.urandom(INLINE * 3))
    wrong = PayloadRef("file", ref.size + 1)
    with pytest.raises(PayloadError, match="does not match the size"):
        b"".join(store.open("j10", wrong).chunks())
    huge = PayloadRef("file", 64 * 1024 * 1024 + 1)
    with pytest.raises(PayloadError, match="chunks"):
        store.open("j10", huge).read()
    store.put("j11", b"x")
    with pytest.raises(PayloadError, match="does not match the size"):
        store.open("j11", PayloadRef("inline", 2))


def test_rotation_keeps_payloads_readable(redis_client: redis.Redis, tmp_path: Path) -> None:
    old, new = os.urandom(32), os.urandom(32)
    before = PayloadStore(redis_client, Keyring(old), tmp_path, INLINE, MAX)
    refs = {"a": before.put("a", b"small"), "b": before.put("b", b"L" * (INLINE * 5))}
    after = PayloadStore(redis_client, Keyring(new, [old]), tmp_path, INLINE, MAX)
    assert after.open("a", refs["a"]).read() == b"small"
    assert after.open("b", refs["b"]).read() == b"L" * (INLINE * 5)
    stranger = PayloadStore(redis_client, Keyring(new), tmp_path, INLINE, MAX)
    with pytest.raises(SealError, match="not in the keyring"):
        stranger.open("b", refs["b"])


# -- nothing in clear at rest --

def _values(client: redis.Redis, key: bytes) -> list[bytes]:
    kind = client.type(key)
    if kind == b"string":
        return [client.get(key)]
    if kind == b"hash":
        return [b for pair in client.hgetall(key).items() for b in pair]
    if kind == b"set":
        return list(client.smembers(key))
    if kind == b"list":
        return client.lrange(key, 0, -1)
    if kind == b"zset":
        return [m for m, _ in client.zrange(key, 0, -1, withscores=True)]
    if kind == b"stream":
        return [b for _, entry in client.xrange(key) for pair in entry.items() for b in pair]
    raise AssertionError(f"unexpected type {kind!r}")


def test_no_plaintext_at_rest(redis_client: redis.Redis, redis_server, keyring: Keyring,
                              store: PayloadStore) -> None:
    vault = CredentialVault(redis_client, keyring)
    public_pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key() \
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1).decode()
    digime = DigimeCredential(
        user="alice", access_token="at-" + secrets.token_urlsafe(24), access_expires_at=2_000_000_000,
        refresh_token="rt-" + secrets.token_urlsafe(24), refresh_expires_at=2_100_000_000,
        postbox_id="pb-1", postbox_public_key=public_pem)
    pda = DataswyftCredential(user="bob", pda_domain="bob.hubat.net",
                              token="eyJ" + secrets.token_urlsafe(40), token_iat=1, token_exp=2,
                              application_id="app")
    vault.store(digime)
    vault.replace_tokens(digime, expected_version=1)
    vault.store_if_newer(pda)
    small = secrets.token_bytes(200)
    large = secrets.token_bytes(50_000)
    store.put("small1", small)
    store.put("large1", large)
    store.put("large2", io.BytesIO(large[::-1]))

    pem_body = [line for line in public_pem.splitlines() if "-----" not in line]
    needles = [digime.access_token.encode(), digime.refresh_token.encode(), pda.token.encode(),
               *(line.encode() for line in pem_body)]
    needles += [p[i:i + 16] for p in (small, large, large[::-1]) for i in range(0, len(p) - 16, 997)]
    needles += [base64.b64encode(small[:24]), small[:24].hex().encode()]
    markers = [b"-----BEGIN", b"PUBLIC KEY", b"RSA"]

    at_rest = [key for key in redis_client.scan_iter()]
    assert at_rest, "nothing was stored"
    at_rest += [value for key in list(at_rest) for value in _values(redis_client, key)]
    at_rest += [path.read_bytes() for path in files_under(store.directory)]
    assert len(files_under(store.directory)) == 2
    for blob in at_rest:
        for needle in needles + markers:
            assert needle not in blob, f"{needle[:12]!r}... found at rest"
    aof = [p.read_bytes() for p in Path(redis_server.data_dir).rglob("*") if p.is_file()
           and "aof" in p.name]
    assert aof, "the test Redis writes an append-only file"
    for blob in aof:  # the AOF holds every command: nothing secret went over the wire either
        for needle in needles:
            assert needle not in blob


# -- large payloads in bounded memory --

LARGE_SCRIPT = textwrap.dedent("""
    import hashlib, json, os, sys
    from pathlib import Path
    import redis
    from worker.crypto import Keyring
    from worker.store import PayloadStore

    def peak_kib():
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])

    class RandomStream:
        '''`size` random bytes, never held whole; hashes what it hands out.'''
        def __init__(self, size):
            self.left, self.sha = size, hashlib.sha256()
        def read(self, n=-1):
            n = min(self.left, 1 << 20 if n is None or n < 0 else n)
            data = os.urandom(n)
            self.left -= n
            self.sha.update(data)
            return data

    url, directory, size = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
    store = PayloadStore(redis.Redis.from_url(url), Keyring(os.urandom(32)), directory,
                         256 * 1024, 4 << 30)
    warm = store.put("warmup", RandomStream(4 << 20))          # imports, buffers, first chunks
    for _ in store.open("warmup", warm).chunks():
        pass
    before = peak_kib()
    source = RandomStream(size)
    ref = store.put("big", source)
    after_put = peak_kib()
    sha = hashlib.sha256()
    for chunk in store.open("big", ref).chunks():
        sha.update(chunk)
    print(json.dumps({"kind": ref.kind, "size": ref.size, "written": source.sha.hexdigest(),
                      "read": sha.hexdigest(), "before_kib": before, "after_put_kib": after_put,
                      "after_read_kib": peak_kib(),
                      "file_bytes": store.path("big").stat().st_size}))
""")


def test_large_streamed_payload_in_bounded_memory(redis_url: str, redis_client: redis.Redis,
                                                  tmp_path: Path) -> None:
    size = 200 * 1024 * 1024
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", LARGE_SCRIPT, redis_url, str(tmp_path), str(size)],
                          capture_output=True, text=True, timeout=240, env=env, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["kind"] == "file" and result["size"] == size
    assert result["written"] == result["read"]
    assert result["file_bytes"] == 21 + size + 200 * 16  # header + one tag per 1 MiB chunk
    grown_mib = (result["after_read_kib"] - result["before_kib"]) / 1024
    assert grown_mib < 32, f"peak RSS grew {grown_mib:.1f} MiB for a 200 MiB payload: {result}"
