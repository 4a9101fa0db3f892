"""Dataswyft (HAT PDA) protocol client: domain policy, Data API and File API calls with token
renewal, and application-token verification. See /work/shared/protocols/dataswyft.md."""

from .client import DataswyftClient, build_http_client
from .domains import (
    DomainPolicy,
    normalise_pda_domain,
    validate_content_url,
    validate_pda_domain,
)
from .errors import (
    DataswyftError,
    DataswyftHTTPError,
    DataswyftProtocolError,
    DataswyftTransportError,
    S3Error,
    TokenError,
)
from .payload import BytesPayload, PayloadSource
from .results import FileResult, RecordsResult, UploadTicket
from .tokens import (
    PublicKeyCache,
    TokenClaims,
    decode_claims,
    idle_expires_at,
    usable_until,
    verify_token,
)
from .validation import (
    validate_batch,
    validate_endpoint,
    validate_file_metadata,
    validate_namespace,
    validate_record_data,
)

__all__ = [
    "BytesPayload",
    "DataswyftClient",
    "DataswyftError",
    "DataswyftHTTPError",
    "DataswyftProtocolError",
    "DataswyftTransportError",
    "DomainPolicy",
    "FileResult",
    "PayloadSource",
    "PublicKeyCache",
    "RecordsResult",
    "S3Error",
    "TokenClaims",
    "TokenError",
    "UploadTicket",
    "build_http_client",
    "decode_claims",
    "idle_expires_at",
    "normalise_pda_domain",
    "usable_until",
    "validate_batch",
    "validate_content_url",
    "validate_endpoint",
    "validate_file_metadata",
    "validate_namespace",
    "validate_pda_domain",
    "validate_record_data",
    "verify_token",
]
