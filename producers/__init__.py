"""The application side of datapost: enqueue writes, store credentials, look jobs up."""

from worker.errors import (
    ConfigError,
    CredentialNotFound,
    DatapostError,
    JobNotFound,
    PayloadError,
    PayloadTooLarge,
    ValidationError,
)

from .client import Datapost
from .dataswyft import PdaBatchWrite, PdaFileWrite, PdaRecordWrite
from .digime import DigimeWrite

__all__ = [
    "ConfigError",
    "CredentialNotFound",
    "Datapost",
    "DatapostError",
    "DigimeWrite",
    "JobNotFound",
    "PayloadError",
    "PayloadTooLarge",
    "PdaBatchWrite",
    "PdaFileWrite",
    "PdaRecordWrite",
    "ValidationError",
]
