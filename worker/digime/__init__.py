"""digi.me protocol client: contract key, client assertions, OAuth, token verification,
postbox and import writes. See /work/shared/protocols/digime.md for the wire format."""

from .assertion import build_assertion, new_nonce
from .client import DigimeClient, build_http_client
from .contract import ContractKey, KeyCache
from .descriptor import validate_descriptor, validate_file_name
from .errors import (
    DigimeError,
    DigimeHTTPError,
    DigimeProtocolError,
    DigimeTransportError,
    InvalidPublicKey,
    TokenVerificationError,
    is_invalid_token,
    parse_retry_after,
)
from .oauth import AuthorizeResult, code_challenge, pkce_pair
from .payload import BytesPayload, PayloadSource
from .postbox import PostboxResult, load_postbox_key
from .tokens import TokenSet, TokenVerifier

__all__ = [
    "AuthorizeResult",
    "BytesPayload",
    "ContractKey",
    "DigimeClient",
    "DigimeError",
    "DigimeHTTPError",
    "DigimeProtocolError",
    "DigimeTransportError",
    "InvalidPublicKey",
    "KeyCache",
    "PayloadSource",
    "PostboxResult",
    "TokenSet",
    "TokenVerificationError",
    "TokenVerifier",
    "build_assertion",
    "build_http_client",
    "code_challenge",
    "is_invalid_token",
    "load_postbox_key",
    "new_nonce",
    "parse_retry_after",
    "pkce_pair",
    "validate_descriptor",
    "validate_file_name",
]
