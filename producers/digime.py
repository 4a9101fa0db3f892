"""digi.me writes as the application describes them, validated before anything is stored."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from worker.digime import validate_descriptor
from worker.errors import ValidationError

from . import validation

MODES = ("postbox", "import")


@dataclass
class DigimeWrite:
    """One file for one user's digi.me library.

    `mode` is `postbox` (encrypted to the user's postbox; the default when the stored
    credential has one) or `import` (the current library push).
    """

    user: str
    data: Any
    file_name: str
    descriptor: dict[str, Any] = field(default_factory=lambda: {"mimeType": "application/octet-stream",
                                                                 "accounts": []})
    mode: str | None = None
    idempotency_key: str | None = None
    delay: float | None = None

    def validated(self) -> DigimeWrite:
        mode = self.mode
        if mode is not None and mode not in MODES:
            raise ValidationError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        return DigimeWrite(
            user=validation.user_ref(self.user), data=validation.payload_source(self.data),
            file_name=validation.file_name(self.file_name),
            descriptor=validate_descriptor(self.descriptor), mode=mode,
            idempotency_key=validation.idempotency_key(self.idempotency_key),
            delay=validation.delay_seconds(self.delay),
        )
