"""Keyring blobs and sealed streams: round trips, rotation, and every tampering we can think of."""

from __future__ import annotations

import base64
import io
import os

import pytest

from worker.config import load_settings
from worker.crypto import Keyring, SealedReader, SealedWriter, iter_open, key_id
from worker.crypto.sealing import MISSING_KEY_MESSAGE, STREAM_HEADER, TAG_SIZE
from worker.errors import ConfigError, SealError

CHUNK = 64
BLOCK = CHUNK + TAG_SIZE


@pytest.fixture
def key() -> bytes:
    return os.urandom(32)


@pytest.fixture
def keyring(key: bytes) -> Keyring:
    return Keyring(key)


def seal_stream(keyring: Keyring, data: bytes, aad: bytes = b"payload:j1", *, step: int = 7,
                chunk_size: int = CHUNK) -> bytes:
    out = io.BytesIO()
    writer = SealedWriter(keyring, out, aad, chunk_size=chunk_size)
    for start in range(0, len(data), step):
        writer.write(data[start:start + step])
    assert writer.close() == len(data)
    return out.getvalue()


def open_stream(keyring: Keyring, sealed: bytes, aad: bytes = b"payload:j1") -> bytes:
    return b"".join(iter_open(keyring, io.BytesIO(sealed), aad))


def split_chunks(sealed: bytes) -> tuple[bytes, list[bytes]]:
    header, body = sealed[:STREAM_HEADER.size], sealed[STREAM_HEADER.size:]
    return header, [body[i:i + BLOCK] for i in range(0, len(body), BLOCK)]


# -- blobs --

def test_blob_round_trip_and_layout(keyring: Keyring) -> None:
    blob = keyring.seal(b"secret value", b"cred:digime:alice")
    assert keyring.open(blob, b"cred:digime:alice") == b"secret value"
    assert blob[0] == 1
    assert blob[1:5].hex() == keyring.current_kid == Keyring.kid_of(blob)
    assert len(blob) == 1 + 4 + 12 + len(b"secret value") + 16
    assert b"secret value" not in blob


def test_each_seal_uses_a_fresh_nonce(keyring: Keyring) -> None:
    assert keyring.seal(b"x", b"a") != keyring.seal(b"x", b"a")


def test_key_id_is_short_stable_and_does_not_reveal_the_key(key: bytes) -> None:
    kid = Keyring(key).current_kid
    assert len(kid) == 8 and int(kid, 16) >= 0
    assert Keyring(key).current_kid == kid == key_id(key).hex()
    assert Keyring(os.urandom(32)).current_kid != kid
    assert kid not in key.hex()


def test_wrong_aad_fails(keyring: Keyring) -> None:
    blob = keyring.seal(b"alice's tokens", b"cred:digime:alice")
    with pytest.raises(SealError, match="failed authentication"):
        keyring.open(blob, b"cred:digime:bob")


@pytest.mark.parametrize("position", [0, 1, 4, 5, 16, 17, -17, -1])
def test_any_flipped_byte_fails(keyring: Keyring, position: int) -> None:
    blob = bytearray(keyring.seal(b"some plaintext", b"a"))
    blob[position] ^= 0x01
    with pytest.raises(SealError):
        keyring.open(bytes(blob), b"a")


def test_short_unknown_version_and_unknown_key(keyring: Keyring) -> None:
    blob = keyring.seal(b"x", b"a")
    with pytest.raises(SealError, match="too short"):
        keyring.open(blob[:20], b"a")
    with pytest.raises(SealError, match="format version 2"):
        keyring.open(b"\x02" + blob[1:], b"a")
    with pytest.raises(SealError, match="not in the keyring"):
        Keyring(os.urandom(32)).open(blob, b"a")
    with pytest.raises(SealError):
        Keyring.kid_of(b"\x01abc")


def test_errors_never_show_key_or_plaintext(key: bytes) -> None:
    keyring = Keyring(key)
    plaintext = b"PLAINTEXT-" + os.urandom(8).hex().encode()
    blob = bytearray(keyring.seal(plaintext, b"a"))
    blob[-1] ^= 1
    with pytest.raises(SealError) as info:
        keyring.open(bytes(blob), b"a")
    text = str(info.value) + repr(info.value) + repr(keyring)
    for secret in (key.hex(), base64.b64encode(key).decode(), plaintext.decode(), repr(key)):
        assert secret not in text


def test_rotation_opens_old_blobs_and_seals_under_the_new_key() -> None:
    old, new = os.urandom(32), os.urandom(32)
    blob = Keyring(old).seal(b"v", b"a")
    rotated = Keyring(new, [old])
    assert rotated.open(blob, b"a") == b"v"
    assert Keyring.kid_of(blob) == Keyring(old).current_kid != rotated.current_kid
    assert Keyring.kid_of(rotated.seal(b"v", b"a")) == rotated.current_kid
    assert rotated.kids == [rotated.current_kid, Keyring(old).current_kid]


def test_bad_key_sizes_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="32 bytes"):
        Keyring(os.urandom(16))
    with pytest.raises(ConfigError):
        Keyring(os.urandom(32), [b"short"])


def test_from_settings() -> None:
    with pytest.raises(ConfigError) as info:
        Keyring.from_settings(load_settings({}))
    assert str(info.value) == MISSING_KEY_MESSAGE
    assert "DATAPOST_MASTER_KEY is not set" in str(info.value)
    old, new = os.urandom(32), os.urandom(32)
    settings = load_settings({"DATAPOST_MASTER_KEY": base64.b64encode(new).decode(),
                              "DATAPOST_MASTER_KEY_PREVIOUS": base64.b64encode(old).decode()})
    keyring = Keyring.from_settings(settings)
    assert keyring.current_kid == Keyring(new).current_kid
    assert keyring.open(Keyring(old).seal(b"v", b"a"), b"a") == b"v"


# -- streams --

@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 5 * CHUNK + 3])
@pytest.mark.parametrize("step", [1, 7, CHUNK, 1000])
def test_stream_round_trip(keyring: Keyring, size: int, step: int) -> None:
    data = os.urandom(size)
    sealed = seal_stream(keyring, data, step=step)
    assert open_stream(keyring, sealed) == data
    chunks = max(1, -(-size // CHUNK))
    assert len(sealed) == STREAM_HEADER.size + size + chunks * TAG_SIZE


def test_stream_yields_whole_chunks(keyring: Keyring) -> None:
    data = os.urandom(3 * CHUNK + 5)
    pieces = list(iter_open(keyring, io.BytesIO(seal_stream(keyring, data)), b"payload:j1"))
    assert [len(p) for p in pieces] == [CHUNK, CHUNK, CHUNK, 5]


def test_stream_accepts_memoryview_and_bytearray(keyring: Keyring) -> None:
    out = io.BytesIO()
    with SealedWriter(keyring, out, b"a", chunk_size=CHUNK) as writer:
        writer.write(memoryview(b"x" * 100))
        writer.write(bytearray(b"y" * 100))
    assert open_stream(keyring, out.getvalue(), b"a") == b"x" * 100 + b"y" * 100


def test_stream_wrong_aad_fails(keyring: Keyring) -> None:
    sealed = seal_stream(keyring, os.urandom(200))
    with pytest.raises(SealError):
        open_stream(keyring, sealed, b"payload:j2")


def test_stream_truncated_at_a_chunk_boundary_fails(keyring: Keyring) -> None:
    sealed = seal_stream(keyring, os.urandom(3 * CHUNK + 10))
    header, chunks = split_chunks(sealed)
    for keep in range(len(chunks)):
        with pytest.raises(SealError):
            open_stream(keyring, header + b"".join(chunks[:keep]))


def test_stream_truncated_inside_a_chunk_or_header_fails(keyring: Keyring) -> None:
    sealed = seal_stream(keyring, os.urandom(3 * CHUNK))
    for cut in (1, 5, STREAM_HEADER.size - 1, STREAM_HEADER.size + 10, len(sealed) - 1):
        with pytest.raises(SealError, match=r"truncated|failed authentication"):
            open_stream(keyring, sealed[:cut])


def test_stream_truncated_when_the_plaintext_fills_whole_chunks(keyring: Keyring) -> None:
    """The last full chunk dropped: the one before it was sealed as not final."""
    sealed = seal_stream(keyring, os.urandom(4 * CHUNK))
    header, chunks = split_chunks(sealed)
    assert len(chunks) == 4
    with pytest.raises(SealError, match="chunk 2"):
        open_stream(keyring, header + b"".join(chunks[:3]))


def test_stream_reordered_or_duplicated_chunks_fail(keyring: Keyring) -> None:
    sealed = seal_stream(keyring, os.urandom(4 * CHUNK + 1))
    header, chunks = split_chunks(sealed)
    for order in ([1, 0, 2, 3, 4], [0, 2, 1, 3, 4], [0, 1, 2, 4], [0, 0, 1, 2, 3, 4]):
        with pytest.raises(SealError):
            open_stream(keyring, header + b"".join(chunks[i] for i in order))


def test_stream_extended_fails(keyring: Keyring) -> None:
    sealed = seal_stream(keyring, os.urandom(2 * CHUNK + 1))
    _, chunks = split_chunks(sealed)
    for tail in (chunks[0], chunks[-1], os.urandom(TAG_SIZE), b"\x00"):
        with pytest.raises(SealError):
            open_stream(keyring, sealed + tail)


def test_stream_chunks_from_another_stream_fail(keyring: Keyring) -> None:
    data = os.urandom(2 * CHUNK + 1)
    header_a, chunks_a = split_chunks(seal_stream(keyring, data))
    header_b, chunks_b = split_chunks(seal_stream(keyring, data))
    with pytest.raises(SealError):
        open_stream(keyring, header_a + chunks_a[0] + chunks_b[1] + chunks_a[2])
    with pytest.raises(SealError):
        open_stream(keyring, header_b + b"".join(chunks_a))


def test_stream_header_tampering_fails(keyring: Keyring) -> None:
    sealed = seal_stream(keyring, os.urandom(3 * CHUNK))
    for position, match in ((0, "magic"), (4, "version"), (5, "not in the keyring"),
                            (9, "authentication"), (20, r"authentication|chunk size")):
        tampered = bytearray(sealed)
        tampered[position] ^= 0x01
        with pytest.raises(SealError, match=match):
            open_stream(keyring, bytes(tampered))
    body = bytearray(sealed)
    body[STREAM_HEADER.size + 3] ^= 0x80
    with pytest.raises(SealError, match="chunk 0"):
        open_stream(keyring, bytes(body))


def test_stream_header_is_checked_up_front(keyring: Keyring) -> None:
    sealed = seal_stream(keyring, b"abc")
    reader = SealedReader(keyring, io.BytesIO(sealed), b"payload:j1")
    assert reader.kid == keyring.current_kid and reader.chunk_size == CHUNK
    with pytest.raises(SealError, match="not in the keyring"):
        SealedReader(Keyring(os.urandom(32)), io.BytesIO(sealed), b"payload:j1")
    with pytest.raises(SealError, match="bad magic"):
        SealedReader(keyring, io.BytesIO(keyring.seal(b"a blob, not a stream", b"x")), b"x")


def test_an_unclosed_writer_leaves_a_stream_that_does_not_open(keyring: Keyring) -> None:
    out = io.BytesIO()
    writer = SealedWriter(keyring, out, b"a", chunk_size=CHUNK)
    writer.write(os.urandom(5 * CHUNK))
    with pytest.raises(SealError):
        open_stream(keyring, out.getvalue(), b"a")
    writer.close()
    assert len(open_stream(keyring, out.getvalue(), b"a")) == 5 * CHUNK
    with pytest.raises(ValueError):
        writer.write(b"more")


def test_stream_rotation(key: bytes, keyring: Keyring) -> None:
    data = os.urandom(300)
    sealed = seal_stream(keyring, data)
    assert open_stream(Keyring(os.urandom(32), [key]), sealed) == data


def test_stream_writer_rejects_bad_chunk_sizes(keyring: Keyring) -> None:
    with pytest.raises(ValueError):
        SealedWriter(keyring, io.BytesIO(), b"a", chunk_size=0)
