"""DigimeClient: the digi.me API calls datapost makes, one HTTP request per method call.

No retries here: the delivery layer wraps calls (tenacity), and each retry calls the method
again, which signs a fresh assertion (new nonce) and re-reads the payload from the start.
Redirects are never followed: a POST body cannot be replayed, and a redirected JWKS fetch
would defeat the pin.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

import httpx

from ..config import DeliverySettings, DigimeSettings
from ..errors import ConfigError, ValidationError
from .contract import ContractKey
from .descriptor import descriptor_json, validate_descriptor, validate_file_name
from .errors import DigimeProtocolError, http_error, transport_error
from .importer import file_descriptor_header, import_headers
from .oauth import (
    AuthorizeResult,
    authorize_claims,
    authorize_result,
    default_agent,
    exchange_claims,
    onboarding_url,
    refresh_claims,
)
from .payload import PayloadSource, checked_chunks, payload_size
from .postbox import (
    PostboxCrypto,
    PostboxResult,
    encrypt_stream,
    load_postbox_key,
    multipart_upload,
    parse_postbox_response,
)
from .tokens import TokenSet, TokenVerifier, token_set_from_payload

JSON = "application/json"
SMALL_BODY = 256 * 1024  # request bodies up to this size are built whole, larger ones stream


def build_http_client(delivery: DeliverySettings | None = None, **kwargs: Any) -> httpx.Client:
    """An httpx client suited to these calls: the configured timeout (per connect/read/write
    operation, so a long upload is fine while it makes progress) and no redirects."""
    timeout = (delivery or DeliverySettings()).http_timeout
    kwargs.setdefault("timeout", httpx.Timeout(timeout))
    kwargs.setdefault("follow_redirects", False)
    kwargs.setdefault("headers", {"User-Agent": "datapost-digime/0.1"})
    return httpx.Client(**kwargs)


class DigimeClient:
    """Stateless apart from what is passed in; safe to share between threads."""

    def __init__(self, settings: DigimeSettings, key: ContractKey, http: httpx.Client,
                 verifier: TokenVerifier, *, agent: dict[str, Any] | None = None) -> None:
        self.settings = settings
        self.key = key
        self.http = http
        self.verifier = verifier
        self.api_url = settings.api_url if settings.api_url.endswith("/") else settings.api_url + "/"
        if verifier.jwks_url != self.api_url + "jwks/oauth":
            raise ConfigError("the TokenVerifier is pinned to a different digi.me API URL than "
                              "the client's digime.api_url")
        self.agent = agent if agent is not None else default_agent()
        # Parsing a postbox key (PEM armour, base64, DER) is a good share of a small write's
        # CPU, and a user writes many files to one postbox. Public keys only; a bad key
        # raises and is not cached.
        self._postbox_key = functools.lru_cache(maxsize=4096)(load_postbox_key)

    def __repr__(self) -> str:
        return f"DigimeClient(api_url={self.api_url!r}, client_id={self.key.client_id!r})"

    # -- OAuth ----------------------------------------------------------------------------

    def authorize(self, *, redirect_uri: str, state: str, code_challenge: str,
                  access_token: str | None = None) -> AuthorizeResult:
        """POST oauth/authorize; the preauthorization code goes into `onboarding_url`.
        With `access_token`, the new consent joins that user's existing library."""
        claims = authorize_claims(redirect_uri=redirect_uri, state=state,
                                  code_challenge=code_challenge, access_token=access_token)
        body = json.dumps({"agent": self.agent}, separators=(",", ":")).encode()
        data = self._json_call("oauth/authorize", claims, content=body, secrets=(access_token,),
                               headers={"Content-Type": JSON})
        return authorize_result(data, self.verifier.verify(_token(data, "oauth/authorize")))

    def onboarding_url(self, preauthorization_code: str, source_type: str = "push") -> str:
        return onboarding_url(self.settings.onboard_url, preauthorization_code, source_type)

    def exchange_code(self, code: str, code_verifier: str) -> TokenSet:
        """POST oauth/token (authorization_code grant), empty body and no Content-Type (§5.1)."""
        data = self._json_call("oauth/token", exchange_claims(code, code_verifier), content=b"",
                               secrets=(code, code_verifier))
        return token_set_from_payload(self.verifier.verify(_token(data, "oauth/token")))

    def refresh(self, refresh_token: str) -> TokenSet:
        """POST oauth/token (refresh_token grant). digi.me rotates: the old refresh token is
        used up and its access token revoked, so store the new set before anything else."""
        data = self._json_call("oauth/token", refresh_claims(refresh_token), content=b"",
                               secrets=(refresh_token,), headers={"Content-Type": JSON})
        return token_set_from_payload(self.verifier.verify(_token(data, "oauth/token")))

    # -- writes ---------------------------------------------------------------------------

    def write_postbox(self, *, access_token: str, postbox_id: str, public_key_pem: str,
                      file_name: str, descriptor: dict, payload: PayloadSource) -> PostboxResult:
        """The legacy encrypted postbox write. `pending` means digi.me queued the file,
        usually because the access token has expired: refresh and call again once."""
        _require_token(access_token)
        if not isinstance(postbox_id, str) or not postbox_id.strip():
            raise ValidationError("postbox_id must be a non-empty string")
        validate_file_name(file_name)
        meta = descriptor_json(validate_descriptor(descriptor))
        public_key = (self._postbox_key(public_key_pem)
                      if isinstance(public_key_pem, str | bytes) else load_postbox_key(public_key_pem))
        size = payload_size(payload)

        crypto = PostboxCrypto.new(public_key, meta)
        upload = multipart_upload(file_name, size)
        bearer = self.key.assertion(crypto.claims(access_token))
        content: Any = upload.body(encrypt_stream(crypto.key, crypto.iv, checked_chunks(payload)))
        if upload.length <= SMALL_BODY:  # one send instead of one per multipart piece
            content = b"".join(content)
        headers = {"Authorization": f"Bearer {bearer}", "Accept": JSON,
                   "Content-Type": upload.content_type, "Content-Length": str(upload.length)}
        response = self._send("POST", f"permission-access/postbox/{quote(postbox_id, safe='')}",
                              operation="postbox write", headers=headers, content=content,
                              secrets=(access_token,))
        return parse_postbox_response(_json(response, "postbox write"))

    def push_import(self, *, access_token: str, descriptor: dict, payload: PayloadSource) -> None:
        """The current library push: raw bytes streamed with an exact Content-Length. An
        expired or revoked token is a 401 (`is_invalid_token`)."""
        _require_token(access_token)
        validate_descriptor(descriptor)
        size = payload_size(payload)
        headers = import_headers(bearer=self.key.assertion({"access_token": access_token}),
                                 file_descriptor=file_descriptor_header(self.key, descriptor),
                                 size=size)
        content: Any = checked_chunks(payload)
        if size <= SMALL_BODY:
            content = b"".join(content)
        self._send("POST", "permission-access/import", operation="import push", headers=headers,
                   content=content, secrets=(access_token,))

    # -- plumbing -------------------------------------------------------------------------

    def _json_call(self, path: str, claims: dict[str, Any], *, content: bytes,
                   secrets: Iterable[str | None], headers: dict[str, str] | None = None) -> dict:
        all_headers = {"Authorization": f"Bearer {self.key.assertion(claims)}", "Accept": JSON,
                       **(headers or {})}
        response = self._send("POST", path, operation=path, headers=all_headers,
                              content=content, secrets=secrets)
        data = _json(response, path)
        if not isinstance(data, dict):
            raise DigimeProtocolError(f"digi.me {path} answered 2xx without a JSON object")
        return data

    def _send(self, method: str, path: str, *, operation: str, headers: dict[str, str],
              content: Any, secrets: Iterable[str | None]) -> httpx.Response:
        secrets = tuple(secrets)
        try:
            response = self.http.request(method, self.api_url + path, headers=headers,
                                         content=content, follow_redirects=False)
        except httpx.TransportError as exc:
            raise transport_error(exc, operation=operation, secrets=secrets) from None
        if not response.is_success:
            raise http_error(response, operation=operation, secrets=secrets)
        return response


def _json(response: httpx.Response, operation: str) -> Any:
    try:
        return json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        raise DigimeProtocolError(
            f"digi.me {operation} answered {response.status_code} with a body that is not JSON") from None


def _token(data: dict, operation: str) -> str:
    token = data.get("token")
    if not isinstance(token, str) or not token:
        raise DigimeProtocolError(f"digi.me {operation} answered 2xx without a token")
    return token


def _require_token(access_token: Any) -> None:
    if not isinstance(access_token, str) or not access_token:
        raise ValidationError("access_token must be a non-empty string")


