"""What a file upload sends: a sized, re-iterable source of byte chunks.

The same contract as the digi.me client's (`size` plus `chunks()` that starts over on every
call, so a retried PUT re-reads the payload), re-exported so both providers accept the worker's
payload-store sources unchanged.
"""

from __future__ import annotations

from ..digime.payload import BytesPayload, PayloadSource, checked_chunks, payload_size

__all__ = ["BytesPayload", "PayloadSource", "checked_chunks", "payload_size"]
