"""Encryption at rest: the master keyring and sealed blobs and streams."""

from .sealing import DEFAULT_CHUNK_SIZE, Keyring, SealedReader, SealedWriter, iter_open, key_id

__all__ = ["DEFAULT_CHUNK_SIZE", "Keyring", "SealedReader", "SealedWriter", "iter_open", "key_id"]
