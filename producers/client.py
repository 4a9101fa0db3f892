"""`Datapost`: the application's handle on datapost.

Enqueue writes (one or many in one pipelined round trip), store the credentials a sign-in
produced, and look jobs up. Everything is validated before anything is stored.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from worker.config import Settings, load_settings
from worker.errors import ConfigError, PayloadError, ValidationError
from worker.queue import Publisher, build_broker
from worker.runtime import Stores
from worker.store import DigimeCredential
from worker.store.jobs import Job, new_job_id, parse_create
from worker.store.payloads import PayloadRef

from . import keys, validation
from .digime import DigimeWrite


class Datapost:
    def __init__(self, stores: Stores, publisher: Publisher) -> None:
        self.stores = stores
        self.publisher = publisher

    @classmethod
    def connect(cls, settings: Settings | None = None, redis_url: str | None = None) -> Datapost:
        settings = settings or load_settings()
        url = redis_url or settings.redis_url
        if not url:
            raise ConfigError("DATAPOST_REDIS_URL is not set: the producer API needs the Redis "
                              "the workers use")
        stores = Stores.connect(settings, url)
        broker = build_broker(settings.broker_url or url)
        return cls(stores, Publisher(broker, settings.delivery.queue))

    def close(self) -> None:
        self.stores.close()
        with contextlib.suppress(Exception):
            self.publisher.broker.close()

    def __enter__(self) -> Datapost:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- credentials -------------------------------------------------------------------
    def store_digime_credential(self, user: str, *, access_token: str, access_expires_at: int,
                                refresh_token: str, refresh_expires_at: int,
                                postbox_id: str | None = None,
                                postbox_public_key: str | None = None,
                                digime_user_id: str | None = None,
                                consent_id: str | None = None) -> DigimeCredential:
        """Store (replace) a user's digi.me tokens, e.g. after the sign-in callback."""
        user = validation.user_ref(user)
        for name, token in (("access_token", access_token), ("refresh_token", refresh_token)):
            if not isinstance(token, str) or not token:
                raise ValidationError(f"{name} must be a non-empty string")
        for name, value in (("access_expires_at", access_expires_at),
                            ("refresh_expires_at", refresh_expires_at)):
            if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
                raise ValidationError(f"{name} must be epoch seconds")
        if (postbox_id is None) != (postbox_public_key is None):
            raise ValidationError("postbox_id and postbox_public_key go together")
        if postbox_public_key is not None:
            postbox_public_key = keys.postbox_public_key(postbox_public_key)
            if not isinstance(postbox_id, str) or not postbox_id:
                raise ValidationError("postbox_id must be a non-empty string")
        cred = DigimeCredential(user=user, access_token=access_token,
                                access_expires_at=int(access_expires_at),
                                refresh_token=refresh_token,
                                refresh_expires_at=int(refresh_expires_at),
                                postbox_id=postbox_id, postbox_public_key=postbox_public_key,
                                digime_user_id=digime_user_id, consent_id=consent_id)
        return self.stores.vault.store(cred)

    # -- enqueue -----------------------------------------------------------------------
    def enqueue_digime(self, user: str, data: Any, *, file_name: str,
                       descriptor: dict | None = None, mode: str | None = None,
                       idempotency_key: str | None = None, delay: float | None = None) -> str:
        """Queue one file for a user's digi.me library; returns the job id (the existing
        one when `idempotency_key` was used before)."""
        write = DigimeWrite(user=user, data=data, file_name=file_name, mode=mode,
                            idempotency_key=idempotency_key, delay=delay,
                            **({"descriptor": descriptor} if descriptor is not None else {}))
        return self.enqueue_many([write])[0]

    def enqueue_many(self, writes: Sequence[DigimeWrite]) -> list[str]:
        """Queue many writes: validated first, then stored in one pipelined round trip."""
        checked = [w.validated() for w in writes]
        modes = self._modes(checked)
        job_ids = [new_job_id() for _ in checked]
        stores = self.stores
        pipe = stores.redis.pipeline(transaction=False)
        refs: list[PayloadRef] = []
        slots: list[int] = []
        try:
            for write, job_id in zip(checked, job_ids, strict=True):
                refs.append(stores.payloads.put(job_id, write.data, pipe=pipe))
            now = time.time()
            for write, job_id, ref, mode in zip(checked, job_ids, refs, modes, strict=True):
                delay_ms = int(write.delay * 1000) if write.delay else None
                slots.append(len(pipe))
                stores.jobs.create(
                    job_id=job_id, provider="digime", op=mode, user=write.user,
                    spec={"mode": mode, "file_name": write.file_name,
                          "descriptor": write.descriptor},
                    payload_fields={"payload_kind": ref.kind, "payload_size": ref.size},
                    idempotency_key=write.idempotency_key,
                    run_at=now + write.delay if write.delay else 0.0,
                    message=self.publisher.inline_message(job_id, delay_ms), pipe=pipe, now=now)
            results = pipe.execute()
        except BaseException:
            for job_id, ref in zip(job_ids, refs, strict=False):
                if ref.kind == "file":
                    stores.payloads.delete(job_id, ref)
            raise
        return self._finish_enqueue(checked, job_ids, refs, [results[i] for i in slots])

    def _finish_enqueue(self, writes, job_ids, refs, created) -> list[str]:
        out: list[str] = []
        for write, job_id, ref, result in zip(writes, job_ids, refs, created, strict=True):
            was_created, actual = parse_create(result)
            if not was_created and ref.kind == "file":
                self.stores.payloads.delete(job_id, ref)  # a duplicate: its payload is not needed
            elif was_created and not self.publisher.inline:
                self.publisher.publish(job_id, int(write.delay * 1000) if write.delay else None)
            out.append(actual)
        return out

    def _modes(self, writes: Sequence[DigimeWrite]) -> list[str]:
        creds = {user: self.stores.vault.load("digime", user) for user in {w.user for w in writes}}
        modes = []
        for write in writes:
            cred = creds[write.user]
            if cred is None:
                raise ValidationError(f"no digi.me credential stored for user {write.user!r}")
            mode = write.mode or ("postbox" if cred.postbox_id else "import")
            if mode == "postbox" and not cred.postbox_id:
                raise ValidationError(f"user {write.user!r} has no digi.me postbox; "
                                      "use mode='import'")
            modes.append(mode)
        self._check_paths(writes)
        return modes

    def _check_paths(self, writes: Sequence[DigimeWrite]) -> None:
        limit = self.stores.settings.delivery.max_payload_bytes
        for write in writes:
            if isinstance(write.data, str | Path) or hasattr(write.data, "__fspath__"):
                path = Path(write.data)
                if not path.is_file():
                    raise PayloadError(f"cannot read {path}: not a regular file")
                if path.stat().st_size > limit:
                    raise ValidationError(f"{path} is larger than the {limit}-byte limit")
            elif isinstance(write.data, bytes) and len(write.data) > limit:
                raise ValidationError(f"data is larger than the {limit}-byte limit")

    # -- look-ups ----------------------------------------------------------------------
    def job(self, job_id: str) -> Job:
        return self.stores.jobs.require(job_id)

    def status(self, job_id: str) -> dict[str, Any]:
        """The job's state, result or error, and every attempt (no secrets, no payload)."""
        return {**self.job(job_id).summary(), "attempts_log": self.stores.jobs.attempts(job_id)}
