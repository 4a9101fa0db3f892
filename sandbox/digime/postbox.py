"""POST permission-access/postbox/{postboxId}: the legacy encrypted write (SDK v5-v8, §7.3).

A valid access token gives `delivered`; an *expired* one still stores the file, as
`pending` (it waits in the postbox), which is what makes SDK 8 refresh and upload again.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .client_jwt import authenticate
from .crypto import (
    CryptoError,
    FileDecryptor,
    decrypt_small,
    parse_iv,
    std_b64decode,
    unwrap_key,
)
from .descriptor import check_descriptor
from .errors import (
    INSUFFICIENT_SCOPE,
    ApiError,
    api_endpoint,
    invalid_request,
    invalid_token,
    shorten,
)
from .state import POSTBOX_RETENTION, DigimeState
from .uploads import single_file_part
from .wire import check_accept_json


def decrypt_metadata(key: bytes, iv: bytes, value: object) -> Any:
    """The `metadata` claim: base64 of AES-256-CBC(JSON.stringify(descriptor)), same key and iv."""
    plain = decrypt_small(key, iv, std_b64decode(value, "metadata"), "metadata")
    try:
        return json.loads(plain.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise CryptoError("metadata decrypts, but not to UTF-8 JSON") from None


def postbox_endpoint(state: DigimeState):
    @api_endpoint
    async def postbox(request: Request) -> Response:
        call = authenticate(state, request, counter="postbox_calls")
        check_accept_json(request)
        token, status = state.access_status(call.claims.get("access_token"), call.client_id)
        if token is None:
            raise invalid_token("access_token")
        postbox_id = request.path_params["postbox_id"]
        box = state.postboxes.get(postbox_id)
        if box is None:
            raise ApiError(404, "PostboxNotFound",
                           f"The postbox ({shorten(postbox_id)}) was not found")
        if box.user_id != token.user_id:
            raise ApiError(403, "InsufficientScope", INSUFFICIENT_SCOPE)
        try:
            iv = parse_iv(call.claims.get("iv"))
            key = await run_in_threadpool(unwrap_key, box.private_key,
                                          call.claims.get("symmetrical_key"))
            metadata = decrypt_metadata(key, iv, call.claims.get("metadata"))
        except CryptoError as exc:
            raise invalid_request(str(exc)) from None
        check_descriptor(metadata)

        dest = state.staging_path() if state.world.settings.keep_content else None
        decryptor = FileDecryptor(key, iv, dest)
        try:
            file_name = await single_file_part(request, decryptor.update)
            try:
                size, sha256 = decryptor.finish("file")
            except CryptoError as exc:
                raise invalid_request(str(exc)) from None
        finally:
            decryptor.close()

        now = state.now()
        delivery = state.add_delivery(
            mode="postbox", client_id=call.client_id, user_id=box.user_id, postbox_id=box.id,
            fileName=file_name, size=size, sha256=sha256, metadata=metadata,
            status="delivered" if status == "valid" else "pending",
            access_token_used=token.value, received_at=now,
            expires=int(now + POSTBOX_RETENTION), content_path=dest)
        return JSONResponse({"status": delivery.status, "expires": delivery.expires})

    return postbox
