"""`encrypt_stream` (AES-256-CBC + PKCS#7 into a reused buffer) against cryptography's own
padder and cipher, for every way a payload can be cut into chunks."""

from __future__ import annotations

import os
import random

import pytest
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from worker.digime.postbox import OUT_CHUNK, ciphertext_length, encrypt_stream


def reference(key: bytes, iv: bytes, data: bytes) -> bytes:
    padder = padding.PKCS7(128).padder()
    enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return enc.update(padder.update(data) + padder.finalize()) + enc.finalize()


def cuts(data: bytes, how: str) -> list:
    rng = random.Random(len(data))
    if how == "whole":
        return [data]
    if how == "bytes":
        return [data[i:i + 1] for i in range(len(data))]
    if how == "sevens":
        return [data[i:i + 7] for i in range(0, len(data), 7)]
    if how == "blocks":
        return [data[i:i + 16] for i in range(0, len(data), 16)]
    if how == "pieces":
        return [data[i:i + OUT_CHUNK] for i in range(0, len(data), OUT_CHUNK)]
    if how == "short-pieces":
        return [data[i:i + OUT_CHUNK - 5] for i in range(0, len(data), OUT_CHUNK - 5)]
    if how == "mixed-types":
        half = len(data) // 2
        return [b"", memoryview(data[:half]), b"", bytearray(data[half:]), b""]
    out, i = [], 0
    while i < len(data):
        n = rng.randint(1, 300_000)
        out.append(data[i:i + n])
        i += n
    return out


SMALL = [0, 1, 15, 16, 17, 1024, 4095]
LARGE = [OUT_CHUNK - 16, OUT_CHUNK - 1, OUT_CHUNK, OUT_CHUNK + 1, 2 * OUT_CHUNK, 3 * OUT_CHUNK + 7]


CASES = [(size, how) for size in SMALL + LARGE
         for how in ("whole", "bytes", "sevens", "blocks", "pieces", "short-pieces",
                     "mixed-types", "random")
         if size in SMALL or how not in ("bytes", "sevens", "blocks")]


@pytest.mark.parametrize(("size", "how"), CASES)
def test_matches_cryptography(size, how):
    key, iv, data = os.urandom(32), os.urandom(16), os.urandom(size)
    pieces = list(encrypt_stream(key, iv, cuts(data, how)))
    assert b"".join(pieces) == reference(key, iv, data)
    assert sum(map(len, pieces)) == ciphertext_length(size)
    assert all(type(p) is bytes and 0 < len(p) <= OUT_CHUNK for p in pieces)
    if how == "pieces" and size > OUT_CHUNK:
        assert all(len(p) == OUT_CHUNK for p in pieces[:-1])


def test_a_generator_of_chunks_and_no_chunks():
    key, iv = os.urandom(32), os.urandom(16)
    assert b"".join(encrypt_stream(key, iv, iter(()))) == reference(key, iv, b"")
    data = os.urandom(3 * OUT_CHUNK + 100)
    gen = (data[i:i + 5000] for i in range(0, len(data), 5000))
    assert b"".join(encrypt_stream(key, iv, gen)) == reference(key, iv, data)
