"""PDA application tokens that stay alive.

A PDA re-signs the token on every authenticated answer (X-Auth-Token, iat = now) and
accepts a token only while `now < exp` (30 days from sign-in) and `now < iat + 72 h`. So:
every renewed token is persisted, compare-and-set by `iat` so an older one never overwrites
a newer one; and a keep-alive renews tokens of idle users before the 72 hours run out.
Past `exp` only a new sign-in helps: such credentials are marked and their jobs park.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

from ..dataswyft import (
    DataswyftClient,
    DataswyftError,
    DataswyftHTTPError,
    TokenError,
    decode_claims,
    validate_pda_domain,
)
from ..errors import ValidationError
from ..logging import Redactor, get_logger
from ..store import CredentialVault, DataswyftCredential

IDLE_LIMIT = 72 * 3600
log = get_logger("datapost.pda_tokens")


class PdaTokenKeeper:
    def __init__(self, *, vault: CredentialVault, redactor: Redactor | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.vault = vault
        self.redactor = redactor
        self.clock = clock

    def usable(self, cred: DataswyftCredential, margin: float = 30.0) -> str | None:
        """None when the token should still be accepted; else why not."""
        now = self.clock()
        if now >= cred.token_exp - margin:
            return "the PDA token is past its 30-day expiry; the user must sign in again"
        if now >= cred.token_iat + IDLE_LIMIT - margin:
            return "the PDA token was idle for more than 72 hours; the user must sign in again"
        return None

    def renewed(self, cred: DataswyftCredential, token: str | None) -> DataswyftCredential:
        """Persist `token` if it is newer than what is stored; returns the newest known."""
        if not token or token == cred.token:
            return cred
        try:
            claims = decode_claims(token)
        except TokenError:
            log.warning("PDA sent an unreadable X-Auth-Token; ignored", user=cred.user)
            return cred
        if self.redactor is not None:
            self.redactor.remember(token)
        newer = dataclasses.replace(cred, token=token, token_iat=claims.iat,
                                    token_exp=claims.exp)
        if self.vault.store_if_newer(newer):
            return newer
        stored = self.vault.load("dataswyft", cred.user)
        return stored if isinstance(stored, DataswyftCredential) else newer

    def needs_signin(self, cred: DataswyftCredential) -> None:
        self.vault.set_status("dataswyft", cred.user, "needs_signin")


class PdaKeepAlive:
    """Renews tokens that have been idle for `renew_after` seconds with one cheap call."""

    def __init__(self, *, vault: CredentialVault, client: DataswyftClient, keeper: PdaTokenKeeper,
                 allowed_suffixes: tuple[str, ...], sandbox_mode: bool,
                 renew_after: float = 48 * 3600, clock: Callable[[], float] = time.time) -> None:
        self.vault = vault
        self.client = client
        self.keeper = keeper
        self.allowed_suffixes = allowed_suffixes
        self.sandbox_mode = sandbox_mode
        self.renew_after = renew_after
        self.clock = clock

    def run_once(self) -> dict[str, int]:
        counts = {"renewed": 0, "expired": 0, "failed": 0, "fresh": 0}
        for info in self.vault.list("dataswyft"):
            if info.status != "active":
                continue
            cred = self.vault.load("dataswyft", info.user)
            if not isinstance(cred, DataswyftCredential):
                continue
            counts[self._one(cred)] += 1
        if counts["renewed"] or counts["expired"] or counts["failed"]:
            log.info("PDA keep-alive", **counts)
        return counts

    def _one(self, cred: DataswyftCredential) -> str:
        if self.keeper.usable(cred) is not None:
            self.keeper.needs_signin(cred)
            return "expired"
        if self.clock() - cred.token_iat < self.renew_after:
            return "fresh"
        try:
            domain = validate_pda_domain(cred.pda_domain, allowed_suffixes=self.allowed_suffixes,
                                         sandbox_mode=self.sandbox_mode)
            token = self.client.validate(domain, cred.token)
        except DataswyftHTTPError as exc:
            if exc.not_authenticated:
                self.keeper.needs_signin(cred)
                return "expired"
            self.keeper.renewed(cred, exc.new_token)
            return "failed"
        except (DataswyftError, ValidationError) as exc:
            log.warning("PDA keep-alive call failed", user=cred.user, error=str(exc))
            return "failed"
        self.keeper.renewed(cred, token)
        return "renewed"
