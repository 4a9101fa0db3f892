"""Dataswyft PDA writes as the application describes them: records to `namespace/endpoint`,
batches across endpoints, and files. Validated before anything is stored."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from worker.dataswyft import (
    validate_batch,
    validate_endpoint,
    validate_file_metadata,
    validate_namespace,
    validate_record_data,
)
from worker.errors import ValidationError

from . import validation
from .writes import Prepared, user_ref


def _credential(credential: Any, user: str) -> None:
    if credential is None:
        raise ValidationError(f"no Dataswyft credential stored for user {user!r}")


@dataclass
class PdaRecordWrite:
    """One JSON object (one record) or a list (written as one array request)."""

    user: str
    namespace: str
    endpoint: str
    data: Any
    skip_errors: bool = False
    idempotency_key: str | None = None
    delay: float | None = None
    provider = "dataswyft"

    def validated(self) -> PdaRecordWrite:
        body = validate_record_data(self.data)
        return PdaRecordWrite(user=user_ref(self.user),
                              namespace=validate_namespace(self.namespace),
                              endpoint=validate_endpoint(self.endpoint), data=body,
                              skip_errors=bool(self.skip_errors),
                              idempotency_key=validation.idempotency_key(self.idempotency_key),
                              delay=validation.delay_seconds(self.delay))

    def prepare(self, credential: Any) -> Prepared:
        _credential(credential, self.user)
        return Prepared(provider="dataswyft", op="records", user=self.user,
                        spec={"namespace": self.namespace, "endpoint": self.endpoint,
                              "skip_errors": self.skip_errors},
                        data=self.data, idempotency_key=self.idempotency_key,
                        delay=self.delay or 0.0)


@dataclass
class PdaBatchWrite:
    """Records across endpoints in one `data-batch` request: [{endpoint, data, links?}]."""

    user: str
    items: list[dict[str, Any]]
    idempotency_key: str | None = None
    delay: float | None = None
    body: bytes = field(default=b"", repr=False)  # the encoded request, set by validated()
    provider = "dataswyft"

    def validated(self) -> PdaBatchWrite:
        return PdaBatchWrite(user=user_ref(self.user), items=self.items,
                             idempotency_key=validation.idempotency_key(self.idempotency_key),
                             delay=validation.delay_seconds(self.delay),
                             body=validate_batch(self.items))

    def prepare(self, credential: Any) -> Prepared:
        _credential(credential, self.user)
        return Prepared(provider="dataswyft", op="batch", user=self.user, spec={},
                        data=self.body, idempotency_key=self.idempotency_key,
                        delay=self.delay or 0.0)


@dataclass
class PdaFileWrite:
    """A file for the PDA's File Storage API: metadata, then the bytes, then `complete`."""

    user: str
    data: Any
    name: str
    source: str
    tags: list[str] = field(default_factory=list)
    title: str | None = None
    description: str | None = None
    content_type: str | None = None
    idempotency_key: str | None = None
    delay: float | None = None
    provider = "dataswyft"

    def metadata(self) -> dict[str, Any]:
        meta: dict[str, Any] = {"name": self.name, "source": self.source, "tags": self.tags}
        for key, value in (("title", self.title), ("description", self.description),
                           ("contentType", self.content_type)):
            if value is not None:
                meta[key] = value
        return meta

    def validated(self) -> PdaFileWrite:
        meta = validate_file_metadata(self.metadata())
        return PdaFileWrite(user=user_ref(self.user),
                            data=validation.payload_source(self.data), name=meta["name"],
                            source=meta["source"], tags=list(meta.get("tags", [])),
                            title=meta.get("title"), description=meta.get("description"),
                            content_type=meta.get("contentType"),
                            idempotency_key=validation.idempotency_key(self.idempotency_key),
                            delay=validation.delay_seconds(self.delay))

    def prepare(self, credential: Any) -> Prepared:
        _credential(credential, self.user)
        return Prepared(provider="dataswyft", op="file", user=self.user,
                        spec={"metadata": self.metadata()}, data=self.data,
                        idempotency_key=self.idempotency_key, delay=self.delay or 0.0)
