"""POST permission-access/import: the current library push (SDK v9+, notes §7.1).

Plaintext octet stream (chunked, maybe no Content-Type), metadata in the signed
`FileDescriptor` header. Any token problem is a 401 (SDK 16 refreshes on every 401).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from .client_jwt import authenticate, file_descriptor
from .descriptor import check_descriptor
from .errors import api_endpoint, invalid_token, validation
from .state import DigimeState
from .uploads import receive_raw
from .wire import media_type


def import_endpoint(state: DigimeState):
    @api_endpoint
    async def import_(request: Request) -> Response:
        call = authenticate(state, request, counter="import_calls")
        token, status = state.access_status(call.claims.get("access_token"), call.client_id)
        if token is None or status != "valid":
            raise invalid_token("access_token", expired=status == "expired")
        metadata = file_descriptor(call, request)
        check_descriptor(metadata)
        kind = media_type(request)
        if kind not in (None, "application/octet-stream"):
            raise validation(
                f"Content-Type must be application/octet-stream or absent (got {kind})", status=406)
        dest = state.staging_path() if state.world.settings.keep_content else None
        size, sha256 = await receive_raw(request, dest)
        state.add_delivery(
            mode="import", client_id=call.client_id, user_id=token.user_id, postbox_id=None,
            fileName=None, size=size, sha256=sha256, metadata=metadata, status="delivered",
            access_token_used=token.value, received_at=state.now(), content_path=dest)
        return Response(status_code=201)

    return import_
