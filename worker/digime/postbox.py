"""The legacy postbox write (§7.3): encrypt with a fresh AES key, wrap it for the postbox.

File and metadata are AES-256-CBC/PKCS#7 under one key and IV; the key travels RSA-OAEP-SHA1
wrapped in the assertion's `symmetrical_key` claim, the IV as 32 hex chars in `iv`. The file
is encrypted while it streams out as the single multipart part `file`; the Content-Length is
known up front because CBC with PKCS#7 always adds 1-16 bytes: (size // 16 + 1) * 16.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import math
import mimetypes
import os
import re
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives import padding as sym_padding
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from .errors import DigimeProtocolError, InvalidPublicKey

MIN_KEY_BITS = 2048
OUT_CHUNK = 1024 * 1024  # ciphertext piece handed to the HTTP client
BLOCK = 16
_PEM = re.compile(r"-----BEGIN ([A-Z ]+)-----(.*?)-----END \1-----", re.S)


@dataclass(frozen=True)
class PostboxResult:
    """`delivered`: in the user's library; `pending`: queued in the postbox (the access token
    was probably expired: refresh and upload once more). `expires` as digi.me sent it."""

    status: str
    expires: int | float


# -- keys ------------------------------------------------------------------------------------

def load_postbox_key(text: Any) -> rsa.RSAPublicKey:
    """The postbox key as the redirect gives it: PKCS#1 PEM (`BEGIN RSA PUBLIC KEY`); SPKI PEM
    and bare base64 DER of either are accepted too, whitespace anywhere ignored."""
    if isinstance(text, bytes):
        try:
            text = text.decode("ascii")
        except UnicodeDecodeError:
            raise InvalidPublicKey("the postbox public key is not ASCII text") from None
    if not isinstance(text, str) or not text.strip():
        raise InvalidPublicKey("the postbox public key is missing")
    match = _PEM.search(text)
    if match:
        if "PRIVATE" in match.group(1):
            raise InvalidPublicKey("the postbox public key is a private key")
        body = match.group(2)
    elif "-----" in text:
        raise InvalidPublicKey("the postbox public key has broken PEM armour")
    else:
        body = text
    try:
        der = base64.b64decode("".join(body.split()), validate=True)
        key = serialization.load_der_public_key(der)
    except (binascii.Error, ValueError):
        raise InvalidPublicKey("the postbox public key is not a readable RSA public key "
                               "(expected PKCS#1 or SPKI, PEM or base64 DER)") from None
    except Exception as exc:  # cryptography may raise UnsupportedAlgorithm for odd key types
        raise InvalidPublicKey(f"the postbox public key is not usable ({type(exc).__name__})") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise InvalidPublicKey("the postbox public key is not an RSA key")
    if key.key_size < MIN_KEY_BITS:
        raise InvalidPublicKey(f"the postbox public key has {key.key_size} bits; at least "
                               f"{MIN_KEY_BITS} are required")
    return key


def wrap_key(public_key: rsa.RSAPublicKey, key: bytes) -> bytes:
    """RSA-OAEP with SHA-1 and MGF1-SHA-1, no label: node-rsa's `pkcs1_oaep` default."""
    return public_key.encrypt(key, padding.OAEP(mgf=padding.MGF1(hashes.SHA1()),  # noqa: S303
                                                algorithm=hashes.SHA1(), label=None))  # noqa: S303


# -- AES-256-CBC -----------------------------------------------------------------------------

class CbcEncryptor:
    """AES-256-CBC with PKCS#7, fed piecewise."""

    def __init__(self, key: bytes, iv: bytes) -> None:
        self._cipher = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
        self._padder = sym_padding.PKCS7(128).padder()

    def update(self, data: bytes) -> bytes:
        return self._cipher.update(self._padder.update(data))

    def finalize(self) -> bytes:
        return self._cipher.update(self._padder.finalize()) + self._cipher.finalize()


def encrypt_small(key: bytes, iv: bytes, data: bytes) -> bytes:
    enc = CbcEncryptor(key, iv)
    return enc.update(data) + enc.finalize()


def ciphertext_length(size: int) -> int:
    return (size // 16 + 1) * 16


def encrypt_stream(key: bytes, iv: bytes, chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Ciphertext of the concatenated chunks with PKCS#7 padding, in pieces of OUT_CHUNK
    bytes (the last one shorter).

    The cipher writes into one reused buffer (`update_into`), sized to the data up to
    OUT_CHUNK, and each piece is copied out once as `bytes` (what the HTTP stack sends
    without copying again). Asking the cipher for a fresh 1 MiB object per call is what
    made this slow: the allocator hands back and refaults that memory each time, which
    costs more than the AES itself.
    """
    cipher = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    chunks = iter(chunks)
    first = next(chunks, b"")
    second = next(chunks, None)
    if second is None and len(first) < OUT_CHUNK:  # a small payload: one piece, no buffer
        pad = BLOCK - len(first) % BLOCK
        yield cipher.update(b"".join((first, bytes([pad]) * pad))) + cipher.finalize()
        return
    chunks = itertools.chain((first,) if second is None else (first, second), chunks)
    buf = bytearray()
    view = memoryview(buf)
    filled = 0  # ciphertext bytes in `buf`: a multiple of BLOCK, below OUT_CHUNK between steps
    tail = b""  # plaintext short of a whole block

    def room(size: int) -> None:
        """Make `size` more ciphertext bytes fit (update_into also wants BLOCK - 1 spare)."""
        nonlocal buf, view
        if filled + size + BLOCK <= len(buf):
            return
        grown = bytearray(min(OUT_CHUNK + BLOCK, max(2 * len(buf), filled + size)) + BLOCK)
        memoryview(grown)[:filled] = view[:filled]
        view.release()
        buf, view = grown, memoryview(grown)

    try:
        for chunk in chunks:
            data = memoryview(chunk).cast("B")
            if tail:
                take = min(BLOCK - len(tail), len(data))
                tail += bytes(data[:take])
                data = data[take:]
                if len(tail) < BLOCK:
                    continue
                room(2 * BLOCK)
                filled += cipher.update_into(tail, view[filled:])
                tail = b""
                if filled == OUT_CHUNK:
                    yield bytes(view[:filled])
                    filled = 0
            while len(data) >= BLOCK:
                whole = min(len(data), OUT_CHUNK - filled) // BLOCK * BLOCK
                room(whole + BLOCK)  # and the padding block, should this be the end
                filled += cipher.update_into(data[:whole], view[filled:])
                data = data[whole:]
                if filled == OUT_CHUNK:
                    yield bytes(view[:filled])
                    filled = 0
            tail = bytes(data)
        pad = BLOCK - len(tail)
        room(BLOCK)
        filled += cipher.update_into(tail + bytes([pad]) * pad, view[filled:])
        cipher.finalize()
        yield bytes(view[:filled])
    finally:
        view.release()


# -- the request -----------------------------------------------------------------------------

@dataclass(frozen=True)
class PostboxCrypto:
    """One write's fresh key material and the claims derived from it."""

    key: bytes
    iv: bytes
    symmetrical_key: str
    metadata: str

    def __repr__(self) -> str:
        return "PostboxCrypto(***)"

    @classmethod
    def new(cls, public_key: rsa.RSAPublicKey, descriptor_json: bytes) -> PostboxCrypto:
        key, iv = os.urandom(32), os.urandom(16)
        return cls(key=key, iv=iv,
                   symmetrical_key=base64.b64encode(wrap_key(public_key, key)).decode("ascii"),
                   metadata=base64.b64encode(encrypt_small(key, iv, descriptor_json)).decode("ascii"))

    def claims(self, access_token: str) -> dict[str, Any]:
        return {"access_token": access_token, "iv": self.iv.hex(), "metadata": self.metadata,
                "symmetrical_key": self.symmetrical_key}


def _quote_filename(name: str) -> str:
    """The HTML form-data escaping of a filename: `"`, CR and LF percent-encoded."""
    return name.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


@dataclass(frozen=True)
class MultipartUpload:
    content_type: str
    length: int
    head: bytes
    tail: bytes

    def body(self, ciphertext: Iterable[bytes]) -> Iterator[bytes]:
        yield self.head
        yield from ciphertext
        yield self.tail


def multipart_upload(file_name: str, plaintext_size: int) -> MultipartUpload:
    """One part, field `file`, the filename given, Content-Type guessed from the extension
    (as form-data does), and the exact body length for a ciphertext of this plaintext size."""
    boundary = "datapost-" + secrets.token_hex(16)
    part_type = mimetypes.guess_type(file_name, strict=False)[0] or "application/octet-stream"
    head = (f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="file"; filename="{_quote_filename(file_name)}"\r\n'
            f"Content-Type: {part_type}\r\n\r\n").encode()
    tail = f"\r\n--{boundary}--\r\n".encode("ascii")
    return MultipartUpload(content_type=f"multipart/form-data; boundary={boundary}",
                           length=len(head) + ciphertext_length(plaintext_size) + len(tail),
                           head=head, tail=tail)


def parse_postbox_response(data: Any) -> PostboxResult:
    """Strictly `{"status": "delivered"|"pending", "expires": <number>}` (the SDK's codec)."""
    if not isinstance(data, dict):
        raise DigimeProtocolError("the postbox answered 2xx without a JSON object")
    status, expires = data.get("status"), data.get("expires")
    if status not in ("delivered", "pending"):
        raise DigimeProtocolError("the postbox answered 2xx with a status other than "
                                  "'delivered' or 'pending'")
    if isinstance(expires, bool) or not isinstance(expires, int | float) or not math.isfinite(expires):
        raise DigimeProtocolError("the postbox answered 2xx without a numeric 'expires'")
    return PostboxResult(status=status, expires=expires)
