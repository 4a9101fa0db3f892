"""Checks on a digi.me postbox public key before it is stored: PKCS#1 RSA, >= 2048 bits."""

from __future__ import annotations

import base64
import binascii

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from worker.errors import ValidationError

MIN_BITS = 2048


def postbox_public_key(value: object) -> str:
    """Return the key as PKCS#1 PEM; accepts PKCS#1 or SPKI PEM, or bare base64 DER."""
    if not isinstance(value, str) or not value.strip():
        raise ValidationError("postbox_public_key must be a PEM string")
    text = value.strip()
    try:
        if "-----BEGIN" in text:
            key = serialization.load_pem_public_key(text.encode())
        else:
            der = base64.b64decode("".join(text.split()), validate=True)
            try:
                key = serialization.load_der_public_key(der)
            except ValueError:
                key = serialization.load_der_public_key(_pkcs1_to_spki(der))
    except (ValueError, binascii.Error, TypeError):
        raise ValidationError("postbox_public_key is not a readable RSA public key") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValidationError("postbox_public_key must be an RSA key")
    if key.key_size < MIN_BITS:
        raise ValidationError(f"postbox_public_key has {key.key_size} bits; at least {MIN_BITS} "
                              "are required")
    return key.public_bytes(serialization.Encoding.PEM,
                            serialization.PublicFormat.PKCS1).decode()


def _pkcs1_to_spki(der: bytes) -> bytes:
    pem = b"-----BEGIN RSA PUBLIC KEY-----\n" + base64.encodebytes(der) + \
        b"-----END RSA PUBLIC KEY-----\n"
    return serialization.load_pem_public_key(pem).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
