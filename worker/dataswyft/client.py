"""DataswyftClient: the PDA calls datapost makes, one HTTP request per method call.

Each method takes the PDA domain and the current application token, checks the domain
against the DomainPolicy before building any URL, and returns its result together with the
renewed token from the answer's `X-Auth-Token` (also on 4xx errors, via
`DataswyftHTTPError.new_token`). No retries here: the delivery layer decides, and a retried
upload re-reads the payload from the start. Redirects are never followed.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from ..config import DeliverySettings
from ..errors import ValidationError
from .domains import DomainPolicy, normalise_pda_domain, validate_content_url
from .errors import DataswyftProtocolError, http_error, s3_error, transport_error
from .payload import PayloadSource, checked_chunks, payload_size
from .results import FileResult, RecordsResult, UploadTicket
from .validation import (
    validate_batch,
    validate_endpoint,
    validate_file_metadata,
    validate_namespace,
    validate_record_data,
)

JSON = "application/json"
SSE_HEADER = "x-amz-server-side-encryption"
_API_VERSION = re.compile(r"v2(\.[0-9]+)?")
_TOKEN = re.compile(r"[\x21-\x7e]{1,16384}")
_HEADER_VALUE = re.compile(r"[\x20-\x7e]{1,256}")


def build_http_client(delivery: DeliverySettings | None = None, **kwargs: Any) -> httpx.Client:
    """An httpx client for PDA and S3 calls: the configured per-operation timeout (a long
    upload is fine while it makes progress) and no redirects."""
    timeout = (delivery or DeliverySettings()).http_timeout
    kwargs.setdefault("timeout", httpx.Timeout(timeout))
    kwargs.setdefault("follow_redirects", False)
    kwargs.setdefault("headers", {"User-Agent": "datapost-dataswyft/0.1"})
    return httpx.Client(**kwargs)


class DataswyftClient:
    """Stateless apart from what is passed in; safe to share between threads.

    With a `policy` (`DomainPolicy.from_settings(settings)`) every call checks the domain
    against the allowed suffixes and addresses itself. Without one, callers must have run
    `validate_pda_domain` first; the client then checks only the syntax (a bare `host[:port]`,
    no IP literal), which keeps the URLs it builds well-formed. Presigned upload URLs are
    checked against the policy's sandbox mode (https only and public hosts outside it).
    """

    def __init__(self, http: httpx.Client, *, scheme: str = "https", api_version: str = "v2.6",
                 policy: DomainPolicy | None = None) -> None:
        if scheme not in ("https", "http"):
            raise ValueError("scheme must be 'https' or 'http'")
        if not _API_VERSION.fullmatch(api_version):
            raise ValueError("api_version must look like 'v2.6' or 'v2'")
        self.http = http
        self.scheme = scheme
        self.api = f"/api/{api_version}"
        self.policy = policy

    def __repr__(self) -> str:
        return f"DataswyftClient(scheme={self.scheme!r}, api={self.api!r})"

    # -- tokens ---------------------------------------------------------------------------

    def validate(self, domain: str, token: str) -> str:
        """GET /users/access_token/validate: the cheapest call that renews the token."""
        _, new_token = self._call("GET", domain, "/users/access_token/validate", token,
                                  operation="token validate")
        if not new_token:
            raise DataswyftProtocolError("Dataswyft token validate answered 2xx without a "
                                         "renewed X-Auth-Token")
        return new_token

    # -- records --------------------------------------------------------------------------

    def create_records(self, domain: str, token: str, namespace: str, endpoint: str, data: Any,
                       *, skip_errors: bool = False) -> RecordsResult:
        """POST data/{ns}/{ep}: a list makes one record per element (one transaction unless
        `skip_errors`, which leaves duplicates out); anything else makes one record."""
        path = f"{self.api}/data/{validate_namespace(namespace)}/{validate_endpoint(endpoint)}"
        body = validate_record_data(data)
        params = {"skipErrors": "true"} if skip_errors else None
        answer, new_token = self._call("POST", domain, path, token, operation="create records",
                                       content=body, params=params)
        return RecordsResult(_records(answer, "create records", new_token), new_token)

    def create_batch(self, domain: str, token: str, items: list[dict[str, Any]]) -> RecordsResult:
        """POST data-batch: items `{endpoint: "ns/ep", data, links?}`, linked ones nested."""
        body = validate_batch(items)
        answer, new_token = self._call("POST", domain, f"{self.api}/data-batch", token,
                                       operation="create batch", content=body)
        return RecordsResult(_records(answer, "create batch", new_token), new_token)

    def read_records(self, domain: str, token: str, namespace: str, endpoint: str, *,
                     take: int = 1000, skip: int = 0) -> RecordsResult:
        """GET data/{ns}/{ep}, oldest first (for verification and tests)."""
        for name, value in (("take", take), ("skip", skip)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValidationError(f"{name} must be a non-negative integer")
        path = f"{self.api}/data/{validate_namespace(namespace)}/{validate_endpoint(endpoint)}"
        answer, new_token = self._call("GET", domain, path, token, operation="read records",
                                       params={"take": str(take), "skip": str(skip)})
        return RecordsResult(_records(answer, "read records", new_token), new_token)

    # -- files ----------------------------------------------------------------------------

    def start_upload(self, domain: str, token: str, metadata: dict[str, Any]) -> UploadTicket:
        """Step 1, POST files/upload: the file id and a presigned S3 PUT URL (5 minutes)."""
        meta = validate_file_metadata(metadata)
        body = json.dumps(meta, separators=(",", ":"), ensure_ascii=False).encode()
        answer, new_token = self._call("POST", domain, f"{self.api}/files/upload", token,
                                       operation="start upload", content=body)
        if not isinstance(answer, dict) or not isinstance(answer.get("fileId"), str) \
                or not isinstance(answer.get("contentUrl"), str):
            raise DataswyftProtocolError("Dataswyft start upload answered 2xx without fileId and "
                                         "contentUrl", new_token=new_token)
        rest = {k: v for k, v in answer.items() if k != "contentUrl"}
        return UploadTicket(answer["fileId"], answer["contentUrl"], rest, new_token)

    def put_content(self, content_url: str, payload: PayloadSource,
                    content_type: str | None) -> None:
        """Step 2: PUT the bytes to S3, streamed with an exact Content-Length and the signed
        SSE header; `content_type` must equal the metadata's contentType when that was set.
        Sends no PDA token, and uses the URL exactly as given. Non-2xx → S3Error."""
        if self.policy is not None:
            self.policy.check_content_url(content_url)
        else:  # http is the sandbox's scheme (DATAPOST_DATASWYFT_SCHEME)
            validate_content_url(content_url, sandbox_mode=self.scheme == "http")
        url = _exact_url(content_url)
        size = payload_size(payload)
        if size == 0:
            raise ValidationError("file content is empty; a PDA refuses to complete an empty upload")
        headers = {"Content-Length": str(size), SSE_HEADER: "AES256"}
        if content_type is not None:
            if not isinstance(content_type, str) or not _HEADER_VALUE.fullmatch(content_type):
                raise ValidationError("content_type must be a printable ASCII header value")
            headers["Content-Type"] = content_type
        request = self.http.build_request("PUT", url, headers=headers,
                                          content=checked_chunks(payload))
        for name in ("X-Auth-Token", "Authorization", "Cookie"):
            request.headers.pop(name, None)
        try:
            response = self.http.send(request, follow_redirects=False)
        except httpx.TransportError as exc:
            raise transport_error(exc, operation="S3 upload") from None
        if not response.is_success:
            raise s3_error(response)

    def complete_upload(self, domain: str, token: str, file_id: str) -> FileResult:
        """Step 3, PUT files/file/{id}/complete: the PDA checks the object's size in S3.
        An empty or missing object → DataswyftHTTPError with `incomplete_upload`."""
        path = f"{self.api}/files/file/{_file_id(file_id)}/complete"
        answer, new_token = self._call("PUT", domain, path, token, operation="complete upload")
        return FileResult(_object(answer, "complete upload", new_token), new_token)

    def get_file(self, domain: str, token: str, file_id: str) -> FileResult:
        """GET files/file/{id}: metadata (with a presigned GET contentUrl when readable)."""
        path = f"{self.api}/files/file/{_file_id(file_id)}"
        answer, new_token = self._call("GET", domain, path, token, operation="get file")
        return FileResult(_object(answer, "get file", new_token), new_token)

    # -- plumbing -------------------------------------------------------------------------

    def _call(self, method: str, domain: str, path: str, token: str, *, operation: str,
              content: bytes | None = None,
              params: dict[str, str] | None = None) -> tuple[Any, str | None]:
        """One authenticated request; (parsed JSON, renewed token) or a DataswyftError."""
        host = self.policy.check(domain) if self.policy else normalise_pda_domain(domain)
        _require_token(token)
        headers = {"X-Auth-Token": token, "Accept": JSON}
        if content is not None:
            headers["Content-Type"] = JSON
        try:
            response = self.http.request(method, f"{self.scheme}://{host}{path}", headers=headers,
                                         content=content, params=params, follow_redirects=False)
        except httpx.TransportError as exc:
            raise transport_error(exc, operation=operation, secrets=(token,)) from None
        new_token = response.headers.get("x-auth-token") or None
        if not response.is_success:
            raise http_error(response, operation=operation, secrets=(token,))
        try:
            return json.loads(response.content), new_token
        except (ValueError, UnicodeDecodeError, RecursionError):
            kind = response.headers.get("content-type", "no content type").split(";")[0]
            raise DataswyftProtocolError(
                f"Dataswyft {operation} answered {response.status_code} with a body that is not "
                f"JSON ({kind[:60]})", new_token=new_token) from None


def _require_token(token: object) -> None:
    if not isinstance(token, str) or not token:
        raise ValidationError("token must be a non-empty string")
    if not _TOKEN.fullmatch(token):
        raise ValidationError("token must be printable ASCII without spaces (at most 16384 "
                              "characters)")


def _file_id(file_id: object) -> str:
    if not isinstance(file_id, str) or not file_id or len(file_id) > 1024:
        raise ValidationError("file_id must be a non-empty string")
    if file_id in (".", "..") or any(c.isspace() or c in "/\\?#" for c in file_id):
        raise ValidationError("file_id must not contain '/', '\\', '?', '#' or whitespace")
    return quote(file_id, safe="")


def _exact_url(content_url: str) -> httpx.URL:
    """httpx.URL of the presigned URL, refusing one httpx would re-encode (the path and query
    are signed; any change breaks the signature)."""
    url = httpx.URL(content_url)
    parts = urlsplit(content_url)
    expected = parts.path + (f"?{parts.query}" if parts.query else "")
    if url.raw_path.decode("ascii") != expected or parts.fragment:
        raise ValidationError("upload contentUrl is not in canonical percent-encoded form; "
                              "sending it would change what S3 signed")
    return url


def _records(answer: Any, operation: str, new_token: str | None) -> list[dict[str, Any]]:
    records = answer if isinstance(answer, list) else [answer]
    if not all(isinstance(r, dict) for r in records):
        raise DataswyftProtocolError(f"Dataswyft {operation} answered 2xx with something other "
                                     "than records", new_token=new_token)
    return records


def _object(answer: Any, operation: str, new_token: str | None) -> dict[str, Any]:
    if not isinstance(answer, dict):
        raise DataswyftProtocolError(f"Dataswyft {operation} answered 2xx without a JSON object",
                                     new_token=new_token)
    return answer
