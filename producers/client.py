"""`Datapost`: the application's handle on datapost.

Enqueue writes (one or many in one pipelined round trip), store the credentials a sign-in
produced, and look jobs up. Everything is validated before anything is stored.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
from dramatiq.common import dq_name

from worker.config import Settings, load_settings
from worker.digime import DigimeClient, KeyCache, TokenVerifier
from worker.errors import ConfigError, PayloadError, ValidationError
from worker.queue import ACTOR_NAME, MAX_DELAY_MS, Publisher, build_broker
from worker.runtime import Stores
from worker.store import DataswyftCredential, DigimeCredential
from worker.store.jobs import Job, JobState, NewJob, QueuedMessage, new_job_ids
from worker.store.payloads import PayloadRef

from . import credentials
from .dataswyft import PdaBatchWrite, PdaFileWrite, PdaRecordWrite
from .digime import DigimeWrite
from .signin import ConnectLinks, PendingSignins
from .writes import Write


class Datapost:
    def __init__(self, stores: Stores, publisher: Publisher) -> None:
        self.stores = stores
        self.publisher = publisher
        self._http: httpx.Client | None = None
        self._links: ConnectLinks | None = None

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
        if self._http is not None:
            self._http.close()
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
        cred = credentials.digime_credential(
            user, access_token=access_token, access_expires_at=access_expires_at,
            refresh_token=refresh_token, refresh_expires_at=refresh_expires_at,
            postbox_id=postbox_id, postbox_public_key=postbox_public_key,
            digime_user_id=digime_user_id, consent_id=consent_id)
        stored = self.stores.vault.store(cred)
        self.resume_parked("digime", stored.user)
        return stored

    def store_dataswyft_credential(self, user: str, *, pda_domain: str,
                                   token: str) -> DataswyftCredential:
        """Store (replace) a user's PDA application token, e.g. after the sign-in callback."""
        cred = credentials.dataswyft_credential(user, pda_domain=pda_domain, token=token,
                                                settings=self.stores.settings)
        stored = self.stores.vault.store(cred)
        self.resume_parked("dataswyft", stored.user)
        return stored

    def resume_parked(self, provider: str, user: str) -> list[str]:
        """Queue again every job parked for (provider, user): the user signed in again."""
        resumed = []
        for job_id in self.stores.jobs.parked_ids(provider, user):
            moved, _ = self.stores.jobs.move(job_id, JobState.QUEUED,
                                             allowed_from=[JobState.PARKED],
                                             note="credential stored again")
            if moved:
                self.publisher.publish(job_id)
                resumed.append(job_id)
        return resumed

    # -- sign-in -----------------------------------------------------------------------
    def digime_connect_link(self, user: str) -> str:
        """A URL to send the signed-in `user` to, to connect their digi.me library."""
        return self.connect_links().digime(user)

    def dataswyft_connect_link(self, user: str, pda_domain: str) -> str:
        """A URL to send the signed-in `user` to, to connect the PDA they named."""
        return self.connect_links().dataswyft(user, pda_domain)

    @property
    def http(self) -> httpx.Client:
        if self._http is None:
            self._http = httpx.Client(timeout=self.stores.settings.delivery.http_timeout,
                                      follow_redirects=False)
        return self._http

    def connect_links(self) -> ConnectLinks:
        if self._links is None:
            settings = self.stores.settings
            pending = PendingSignins(self.stores.redis, self.stores.keyring,
                                     settings.callback.signin_ttl)
            self._links = ConnectLinks(settings, self.stores.vault, pending,
                                       digime=self.digime_client())
        return self._links

    def digime_client(self) -> DigimeClient | None:
        """The digi.me client for sign-ins, or None when digi.me is not configured."""
        digime = self.stores.settings.digime
        if not (digime.application_id and digime.contract_id and
                (digime.private_key_file or digime.private_key)):
            return None
        key = KeyCache().get(digime)
        return DigimeClient(digime, key, self.http, TokenVerifier(self.http, digime.api_url))

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

    def enqueue_records(self, user: str, namespace: str, endpoint: str, data: Any, *,
                        skip_errors: bool = False, idempotency_key: str | None = None,
                        delay: float | None = None) -> str:
        """Queue a record (a JSON object) or records (a list) for `namespace/endpoint`."""
        return self.enqueue_many([PdaRecordWrite(
            user=user, namespace=namespace, endpoint=endpoint, data=data,
            skip_errors=skip_errors, idempotency_key=idempotency_key, delay=delay)])[0]

    def enqueue_batch(self, user: str, items: list[dict], *, idempotency_key: str | None = None,
                      delay: float | None = None) -> str:
        """Queue records across endpoints as one `data-batch` request."""
        return self.enqueue_many([PdaBatchWrite(user=user, items=items,
                                                idempotency_key=idempotency_key, delay=delay)])[0]

    def enqueue_file(self, user: str, data: Any, *, name: str, source: str,
                     tags: list[str] | None = None, title: str | None = None,
                     description: str | None = None, content_type: str | None = None,
                     idempotency_key: str | None = None, delay: float | None = None) -> str:
        """Queue a file for the user's PDA File Storage API."""
        return self.enqueue_many([PdaFileWrite(
            user=user, data=data, name=name, source=source, tags=tags or [], title=title,
            description=description, content_type=content_type,
            idempotency_key=idempotency_key, delay=delay)])[0]

    def enqueue_many(self, writes: Sequence[Write]) -> list[str]:
        """Queue many writes of any kind: validated first, then stored in one pipelined
        round trip (payloads, job records, idempotency keys and queue messages)."""
        checked = [w.validated() for w in writes]
        self._check_sizes(checked)
        creds = self._credentials(checked)
        prepared = [w.prepare(creds[(w.provider, w.user)]) for w in checked]
        stores = self.stores
        now = time.time()
        messages = InlineMessages(self.publisher, len(prepared), now)
        job_ids = new_job_ids(len(prepared))
        refs: list[PayloadRef] = []
        new_jobs: list[NewJob] = []
        try:
            for item, job_id in zip(prepared, job_ids, strict=True):
                ref, sealed = stores.payloads.stage(job_id, item.data)
                refs.append(ref)
                new_jobs.append(NewJob(
                    job_id=job_id, provider=item.provider, op=item.op, user=item.user,
                    spec=item.spec, payload_fields={"payload_kind": ref.kind,
                                                    "payload_size": ref.size},
                    idempotency_key=item.idempotency_key,
                    run_at=now + item.delay if item.delay else 0.0,
                    message=messages.build(job_id, item.delay), payload=sealed))
            created = stores.jobs.create_many(new_jobs, now=now)
        except BaseException as exc:
            kept = set(getattr(exc, "created", ()))  # jobs created before the failure
            for job_id, ref in zip(job_ids, refs, strict=False):
                if ref.kind == "file" and job_id not in kept:
                    stores.payloads.delete(job_id, ref)
            raise
        return self._finish_enqueue(prepared, job_ids, refs, created)

    def _finish_enqueue(self, prepared, job_ids, refs, created) -> list[str]:
        out: list[str] = []
        for item, job_id, ref, (was_created, actual) in zip(prepared, job_ids, refs, created,
                                                            strict=True):
            if not was_created and ref.kind == "file":
                self.stores.payloads.delete(job_id, ref)  # a duplicate: its payload is not needed
            elif was_created and not self.publisher.inline:
                self.publisher.publish(job_id, int(item.delay * 1000) if item.delay else None)
            out.append(actual)
        return out

    def _credentials(self, writes: Sequence[Write]) -> dict[tuple[str, str], Any]:
        wanted = {(w.provider, w.user) for w in writes}
        return {key: self.stores.vault.load(*key) for key in wanted}

    def _check_sizes(self, writes: Sequence[Write]) -> None:
        limit = self.stores.settings.delivery.max_payload_bytes
        for write in writes:
            data = getattr(write, "data", None)
            if isinstance(data, str | Path) or hasattr(data, "__fspath__"):
                path = Path(data)
                if not path.is_file():
                    raise PayloadError(f"cannot read {path}: not a regular file")
                if path.stat().st_size > limit:
                    raise ValidationError(f"{path} is larger than the {limit}-byte limit")
            elif isinstance(data, bytes) and len(data) > limit:
                raise ValidationError(f"data is larger than the {limit}-byte limit")

    # -- look-ups ----------------------------------------------------------------------
    def job(self, job_id: str) -> Job:
        return self.stores.jobs.require(job_id)

    def status(self, job_id: str) -> dict[str, Any]:
        """The job's state, result or error, and every attempt (no secrets, no payload)."""
        return {**self.job(job_id).summary(), "attempts_log": self.stores.jobs.attempts(job_id)}


class InlineMessages:
    """The dramatiq messages a bulk enqueue pushes with its jobs (Redis broker): the bytes
    `Publisher.inline_message` would produce — the `deliver(job_id)` message with its own
    `redis_message_id`, on the delay queue with an `eta` when delayed — written from a
    template instead of a `dramatiq.Message` per job. Random ids come from one draw; the
    timestamp is the batch's."""

    def __init__(self, publisher: Publisher, count: int, now: float | None = None) -> None:
        self.enabled = publisher.inline
        if not self.enabled:
            return
        namespace, queue = publisher.broker.namespace, publisher.queue
        self._keys = (f"{namespace}:{queue}", f"{namespace}:{dq_name(queue)}")
        actor = json.dumps(ACTOR_NAME)
        self._heads = tuple(f'{{"queue_name":{json.dumps(name)},"actor_name":{actor},"args":["'
                            for name in (queue, dq_name(queue)))
        self._ids = iter(new_job_ids(2 * count))
        self._now_ms = int((time.time() if now is None else now) * 1000)

    def build(self, job_id: str, delay: float) -> QueuedMessage | None:
        if not self.enabled:
            return None
        redis_id, message_id = _dashed(next(self._ids)), _dashed(next(self._ids))
        now_ms = self._now_ms
        delay_ms = int(delay * 1000) if delay else 0
        if delay_ms:
            options = f'"redis_message_id":"{redis_id}","eta":{now_ms + min(delay_ms, MAX_DELAY_MS)}'
        else:
            options = f'"redis_message_id":"{redis_id}"'
        data = (f'{self._heads[bool(delay_ms)]}{job_id}"],"kwargs":{{}},"options":{{{options}}},'
                f'"message_id":"{message_id}","message_timestamp":{now_ms}}}')
        return QueuedMessage(self._keys[bool(delay_ms)], redis_id, data.encode())


def _dashed(hex32: str) -> str:
    return f"{hex32[:8]}-{hex32[8:12]}-{hex32[12:16]}-{hex32[16:20]}-{hex32[20:]}"
