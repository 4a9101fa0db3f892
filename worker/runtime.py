"""What producers and workers share, built once from Settings: Redis, the keyring, the
credential vault, the payload store and the job store."""

from __future__ import annotations

from dataclasses import dataclass

import redis

from .config import Settings
from .crypto import Keyring
from .logging import Redactor
from .store import CredentialVault
from .store.jobs import JobStore
from .store.payloads import PayloadStore


@dataclass
class Stores:
    settings: Settings
    redis: redis.Redis
    keyring: Keyring
    vault: CredentialVault
    payloads: PayloadStore
    jobs: JobStore
    redactor: Redactor | None = None

    @classmethod
    def connect(cls, settings: Settings, redis_url: str, *,
                redactor: Redactor | None = None) -> Stores:
        client = redis.Redis.from_url(redis_url, health_check_interval=30)
        keyring = Keyring.from_settings(settings)
        d = settings.delivery
        return cls(
            settings=settings, redis=client, keyring=keyring,
            vault=CredentialVault(client, keyring),
            payloads=PayloadStore.from_settings(client, keyring, settings),
            jobs=JobStore(client, keyring, events_maxlen=d.events_maxlen,
                          result_ttl=d.result_ttl, idempotency_ttl=d.idempotency_ttl),
            redactor=redactor,
        )

    def close(self) -> None:
        self.redis.close()
