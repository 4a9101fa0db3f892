"""What a delivery attempt starts from: its user's credential and its payload.

The engine's claim reads both in the same round trip as the job (`JobStore.claim_and_load`,
kept in `Job.preloaded`); a job built any other way reads them from the stores here.
"""

from __future__ import annotations

from ..errors import PayloadMissing
from ..store import Credential, CredentialVault
from ..store.jobs import Job
from ..store.payloads import PayloadReader, PayloadRef, PayloadStore, _aad


def credential(vault: CredentialVault, provider: str, job: Job) -> Credential | None:
    """The job's user's stored credential for `provider`, or None (VaultError when it
    cannot be opened), as `CredentialVault.load` gives it."""
    row = job.preloaded.get("credential") if job.provider == provider else None
    if row is None:
        return vault.load(provider, job.user)
    return vault.from_row(provider, job.user, row)


def payload(payloads: PayloadStore, job: Job) -> PayloadReader:
    """The job's payload, as `PayloadStore.open` gives it (PayloadMissing, SealError)."""
    ref = PayloadRef(job.payload_kind, job.payload_size)
    if ref.kind != "inline" or "payload" not in job.preloaded:
        return payloads.open(job.id, ref)
    blob = job.preloaded["payload"]
    if blob is None:
        raise PayloadMissing(f"payload of job {job.id} is not in Redis")
    return PayloadReader(job.id, ref.size, data=payloads.keyring.open(blob, _aad(job.id)))
