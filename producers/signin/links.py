"""Connect links: where an app sends a signed-in user to connect digi.me or a PDA.

Each link is `<receiver>/connect/<state>`; the receiver binds the browser and forwards it to
the provider. digi.me: `oauth/authorize` (PKCE S256, signed client assertion, `state`) is
called here, its response token verified, and the verifier kept with the state. Dataswyft:
the domain is validated and the exact registered redirect and fallback URLs are used.
"""

from __future__ import annotations

import time
from urllib.parse import quote

from worker.config import Settings
from worker.dataswyft import validate_pda_domain
from worker.digime import DigimeClient, DigimeError, pkce_pair
from worker.errors import ConfigError, DatapostError, ValidationError, VaultError
from worker.store import CredentialVault, DigimeCredential

from .. import validation
from .pending import PendingSignin, PendingSignins, new_state


class SigninError(DatapostError):
    """A connect link could not be made (the provider refused, or is unreachable)."""


def receiver_url(settings: Settings) -> str:
    url = settings.callback.public_url
    if not url:
        raise ConfigError("DATAPOST_CALLBACK_URL is not set: connect links point at the "
                          "callback receiver, so datapost must know its public URL")
    return url


def redirect_uris(settings: Settings) -> dict[str, str]:
    """The exact URLs to register with each platform."""
    base = receiver_url(settings)
    return {"digime": f"{base}digime/return", "dataswyft": f"{base}dataswyft/return",
            "dataswyft_fallback": f"{base}dataswyft/fallback"}


class ConnectLinks:
    def __init__(self, settings: Settings, vault: CredentialVault, pending: PendingSignins,
                 digime: DigimeClient | None = None) -> None:
        self.settings = settings
        self.vault = vault
        self.pending = pending
        self.digime_client = digime

    def digime(self, user: str) -> str:
        user = validation.user_ref(user)
        if self.digime_client is None:
            raise ConfigError("digi.me is not configured (DATAPOST_DIGIME_* settings)")
        state = new_state()
        verifier, challenge = pkce_pair()
        try:
            existing = self.vault.load("digime", user)
        except VaultError:  # e.g. sealed under a retired key: the new sign-in replaces it
            existing = None
        access = None
        if isinstance(existing, DigimeCredential) and existing.status == "active" and \
                existing.access_expires_at > time.time() + 30:
            access = existing.access_token  # link the new consent to the same library
        try:
            result = self.digime_client.authorize(
                redirect_uri=redirect_uris(self.settings)["digime"], state=state,
                code_challenge=challenge, access_token=access)
        except DigimeError as exc:
            raise SigninError(f"digi.me did not start the sign-in: {exc}") from None
        url = self.digime_client.onboarding_url(result.preauthorization_code)
        self.pending.create(PendingSignin(state=state, provider="digime", user=user,
                                          provider_url=url, created_at=time.time(),
                                          code_verifier=verifier))
        return f"{receiver_url(self.settings)}connect/{state}"

    def dataswyft(self, user: str, pda_domain: str) -> str:
        user = validation.user_ref(user)
        app_id = self.settings.dataswyft.application_id
        if not app_id:
            raise ConfigError("DATAPOST_DATASWYFT_APPLICATION_ID is not set")
        if not isinstance(pda_domain, str):
            raise ValidationError("pda_domain must be a string")
        domain = validate_pda_domain(pda_domain.strip().lower(),
                                     allowed_suffixes=self.settings.dataswyft.allowed_domains,
                                     sandbox_mode=self.settings.sandbox_mode)
        uris = redirect_uris(self.settings)
        url = (f"{self.settings.dataswyft.scheme}://{domain}/#/hatlogin?name={quote(app_id)}"
               f"&redirect={quote(uris['dataswyft'], safe='')}"
               f"&fallback={quote(uris['dataswyft_fallback'], safe='')}")
        state = new_state()
        self.pending.create(PendingSignin(state=state, provider="dataswyft", user=user,
                                          provider_url=url, created_at=time.time(),
                                          pda_domain=domain))
        return f"{receiver_url(self.settings)}connect/{state}"
