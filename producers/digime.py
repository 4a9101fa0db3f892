"""digi.me writes as the application describes them, validated before anything is stored."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from worker.digime import validate_descriptor
from worker.errors import ValidationError

from . import validation
from .writes import Prepared, user_ref

MODES = ("postbox", "import")
DEFAULT_MIME_TYPE = "application/octet-stream"


def _descriptor(descriptor: Any) -> dict[str, Any]:
    """`validate_descriptor`, skipped when the descriptor is exactly the default one (valid
    by construction; most bulk writes carry it)."""
    if type(descriptor) is dict and len(descriptor) == 2:
        mime, accounts = descriptor.get("mimeType"), descriptor.get("accounts")
        if type(mime) is str and mime == DEFAULT_MIME_TYPE and type(accounts) is list \
                and not accounts:
            return descriptor
    return validate_descriptor(descriptor)


@dataclass
class DigimeWrite:
    """One file for one user's digi.me library.

    `mode` is `postbox` (encrypted to the user's postbox; the default when the stored
    credential has one) or `import` (the current library push).
    """

    user: str
    data: Any
    file_name: str
    descriptor: dict[str, Any] = field(default_factory=lambda: {"mimeType": DEFAULT_MIME_TYPE,
                                                                 "accounts": []})
    mode: str | None = None
    idempotency_key: str | None = None
    delay: float | None = None
    provider = "digime"

    def validated(self) -> DigimeWrite:
        mode = self.mode
        if mode is not None and mode not in MODES:
            raise ValidationError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        return DigimeWrite(
            user=user_ref(self.user), data=validation.payload_source(self.data),
            file_name=validation.file_name(self.file_name),
            descriptor=_descriptor(self.descriptor), mode=mode,
            idempotency_key=validation.idempotency_key(self.idempotency_key),
            delay=validation.delay_seconds(self.delay),
        )

    def prepare(self, credential: Any) -> Prepared:
        if credential is None:
            raise ValidationError(f"no digi.me credential stored for user {self.user!r}")
        mode = self.mode or ("postbox" if credential.postbox_id else "import")
        if mode == "postbox" and not credential.postbox_id:
            raise ValidationError(f"user {self.user!r} has no digi.me postbox; use mode='import'")
        return Prepared(provider="digime", op=mode, user=self.user,
                        spec={"mode": mode, "file_name": self.file_name,
                              "descriptor": self.descriptor},
                        data=self.data, idempotency_key=self.idempotency_key,
                        delay=self.delay or 0.0)
