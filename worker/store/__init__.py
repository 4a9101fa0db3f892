"""What datapost keeps in Redis and the payload directory: credentials, payloads, jobs."""

from . import keys
from .credentials import (
    Credential,
    CredentialInfo,
    DataswyftCredential,
    DigimeCredential,
)
from .payloads import PayloadReader, PayloadRef, PayloadStore
from .vault import CredentialVault

__all__ = [
    "Credential",
    "CredentialInfo",
    "CredentialVault",
    "DataswyftCredential",
    "DigimeCredential",
    "PayloadReader",
    "PayloadRef",
    "PayloadStore",
    "keys",
]
