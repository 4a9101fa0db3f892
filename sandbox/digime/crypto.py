"""Key handling and the legacy postbox crypto (notes §7.3), decrypting in bounded memory.

Postbox uploads: a 32-byte AES key wrapped with RSA-OAEP (SHA-1, MGF1-SHA-1, no label)
under the postbox public key, then AES-256-CBC with PKCS#7 over the file and, with the same
key and IV, over the JSON file descriptor.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from pathlib import Path
from typing import BinaryIO

from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import padding as asym
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

CHUNK = 1024 * 1024
MIN_RSA_BITS = 2048
OAEP_SHA1 = asym.OAEP(mgf=asym.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None)  # noqa: S303


class CryptoError(ValueError):
    """Decryption failed; the message says which step, never any key material."""


def new_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def load_public_key(pem: str) -> rsa.RSAPublicKey:
    """An RSA public key from SPKI (`BEGIN PUBLIC KEY`) or PKCS#1 (`BEGIN RSA PUBLIC KEY`) PEM."""
    if not isinstance(pem, str) or "-----BEGIN" not in pem:
        raise ValueError("public_key must be a PEM string (SPKI or PKCS#1)")
    try:
        key = serialization.load_pem_public_key(pem.strip().encode("ascii"))
    except (ValueError, UnicodeEncodeError, TypeError) as exc:
        raise ValueError(f"public_key is not a readable PEM public key ({exc})") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("public_key must be an RSA key")
    if key.key_size < MIN_RSA_BITS:
        raise ValueError(f"public_key must be at least {MIN_RSA_BITS} bits (PS512 needs 2048)")
    return key


def pkcs1_pem(key: rsa.RSAPublicKey) -> str:
    """`BEGIN RSA PUBLIC KEY`, the form node-rsa imports as `pkcs1-public` (notes §4)."""
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1).decode()


def spki_pem(key: rsa.RSAPublicKey) -> str:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def std_b64decode(text: object, what: str) -> bytes:
    """Standard base64 with padding, strictly (no URL alphabet, no junk)."""
    if not isinstance(text, str) or not text:
        raise CryptoError(f"{what} must be a non-empty base64 string")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise CryptoError(f"{what} is not valid standard base64") from None


def unwrap_key(private_key: rsa.RSAPrivateKey, wrapped_b64: object) -> bytes:
    """The 32-byte AES key from `symmetrical_key`."""
    wrapped = std_b64decode(wrapped_b64, "symmetrical_key")
    if len(wrapped) != private_key.key_size // 8:
        raise CryptoError(
            f"symmetrical_key must be {private_key.key_size // 8} bytes of RSA-OAEP ciphertext, "
            f"got {len(wrapped)}"
        )
    try:
        key = private_key.decrypt(wrapped, OAEP_SHA1)
    except ValueError:
        raise CryptoError(
            "symmetrical_key does not decrypt with the postbox key "
            "(RSA-OAEP, SHA-1, MGF1-SHA-1, wrapped with the postbox publicKey)"
        ) from None
    if len(key) != 32:
        raise CryptoError(f"symmetrical_key must wrap a 32-byte AES-256 key, got {len(key)} bytes")
    return key


def parse_iv(value: object) -> bytes:
    if not isinstance(value, str) or len(value) != 32:
        raise CryptoError("iv must be 32 hexadecimal characters (16 bytes)")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise CryptoError("iv must be 32 hexadecimal characters (16 bytes)") from None


class CbcDecryptor:
    """AES-256-CBC + PKCS#7 removal, fed in chunks of any size."""

    def __init__(self, key: bytes, iv: bytes) -> None:
        self._cipher = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
        self._unpad = padding.PKCS7(128).unpadder()
        self.ciphertext_size = 0

    def update(self, chunk: bytes) -> bytes:
        self.ciphertext_size += len(chunk)
        return self._unpad.update(self._cipher.update(chunk))

    def finalize(self, what: str) -> bytes:
        if self.ciphertext_size == 0 or self.ciphertext_size % 16:
            raise CryptoError(
                f"{what} ciphertext must be a non-empty multiple of 16 bytes (AES-256-CBC), "
                f"got {self.ciphertext_size}"
            )
        try:
            return self._unpad.update(self._cipher.finalize()) + self._unpad.finalize()
        except ValueError:
            raise CryptoError(
                f"{what} does not decrypt: bad PKCS#7 padding (wrong key or iv?)"
            ) from None


def decrypt_small(key: bytes, iv: bytes, data: bytes, what: str) -> bytes:
    dec = CbcDecryptor(key, iv)
    return dec.update(data) + dec.finalize(what)


class FileDecryptor:
    """Decrypt an AES-256-CBC/PKCS#7 file fed in pieces of any size: hash the plaintext and
    optionally write it to `dest`, in bounded memory and without a fresh buffer per piece
    (`update_into` into one reused buffer; the last block is held back until `finish`
    strips the padding). Call `close()` in any case: it removes `dest` unless `finish()`
    succeeded, so nothing half-decrypted is ever stored."""

    def __init__(self, key: bytes, iv: bytes, dest: Path | None = None) -> None:
        self._cipher = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
        self._digest = hashlib.sha256()
        self._dest = dest
        self._out: BinaryIO | None = dest.open("wb") if dest is not None else None
        self._buffer = bytearray()
        self._held = b""  # the newest plaintext block: padding, if it turns out to be the last
        self.ciphertext_size = 0
        self.size = 0
        self._done = False

    def update(self, data: bytes | bytearray | memoryview) -> None:
        self.ciphertext_size += len(data)
        need = len(data) + 16
        if len(self._buffer) < need:
            self._buffer = bytearray(max(need, CHUNK + 16))
        n = self._cipher.update_into(data, self._buffer)
        if n == 0:
            return
        view = memoryview(self._buffer)
        try:
            if self._held:
                self._emit(self._held)
            self._emit(view[:n - 16])
            self._held = bytes(view[n - 16:n])
        finally:
            view.release()

    def _emit(self, plain: bytes | memoryview) -> None:
        self._digest.update(plain)
        self.size += len(plain)
        if self._out is not None:
            self._out.write(plain)

    def finish(self, what: str = "file") -> tuple[int, str]:
        """Check the length and padding; returns (plaintext size, sha256 hex)."""
        if self.ciphertext_size == 0 or self.ciphertext_size % 16:
            raise CryptoError(
                f"{what} ciphertext must be a non-empty multiple of 16 bytes (AES-256-CBC), "
                f"got {self.ciphertext_size}")
        self._cipher.finalize()  # nothing is buffered: the length is a multiple of 16
        last = self._held
        pad = last[-1] if len(last) == 16 else 0
        if not 1 <= pad <= 16 or last[-pad:] != bytes([pad]) * pad:
            raise CryptoError(f"{what} does not decrypt: bad PKCS#7 padding (wrong key or iv?)")
        self._emit(last[:-pad])
        if self._out is not None:
            self._out.close()
            self._out = None
        self._done = True
        return self.size, self._digest.hexdigest()

    def close(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None
        if not self._done and self._dest is not None:
            self._dest.unlink(missing_ok=True)


def decrypt_file(key: bytes, iv: bytes, src: BinaryIO, dest: Path | None) -> tuple[int, str]:
    """Decrypt `src` chunk by chunk into `dest` (or nowhere); returns (size, sha256 hex).

    On failure `dest` is removed, so nothing half-decrypted is ever stored.
    """
    dec = FileDecryptor(key, iv, dest)
    try:
        while chunk := src.read(CHUNK):
            dec.update(chunk)
        return dec.finish("file")
    finally:
        dec.close()
