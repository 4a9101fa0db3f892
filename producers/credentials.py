"""Building credential records from what a sign-in produced, validated before storing."""

from __future__ import annotations

import time

from worker.config import Settings
from worker.dataswyft import TokenError, decode_claims, validate_pda_domain
from worker.errors import ValidationError
from worker.store import DataswyftCredential, DigimeCredential

from . import keys, validation


def digime_credential(user: str, *, access_token: str, access_expires_at: int,
                      refresh_token: str, refresh_expires_at: int, postbox_id: str | None,
                      postbox_public_key: str | None, digime_user_id: str | None,
                      consent_id: str | None) -> DigimeCredential:
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
    return DigimeCredential(user=user, access_token=access_token,
                            access_expires_at=int(access_expires_at), refresh_token=refresh_token,
                            refresh_expires_at=int(refresh_expires_at), postbox_id=postbox_id,
                            postbox_public_key=postbox_public_key, digime_user_id=digime_user_id,
                            consent_id=consent_id)


def dataswyft_credential(user: str, *, pda_domain: str, token: str,
                         settings: Settings) -> DataswyftCredential:
    """A PDA credential from an application token. The token's signature is checked by the
    sign-in callback (against the PDA's /publickey); here its claims must fit the domain."""
    user = validation.user_ref(user)
    domain = validate_pda_domain(pda_domain, allowed_suffixes=settings.dataswyft.allowed_domains,
                                 sandbox_mode=settings.sandbox_mode)
    if not isinstance(token, str) or not token:
        raise ValidationError("token must be a non-empty string")
    try:
        claims = decode_claims(token)
    except TokenError as exc:
        raise ValidationError(f"token is not a PDA application token: {exc}") from None
    if claims.iss.lower() != domain:
        raise ValidationError(f"the token was issued by {claims.iss!r}, not by {domain!r}")
    app_id = settings.dataswyft.application_id
    if app_id and claims.application != app_id:
        raise ValidationError(f"the token is for application {claims.application!r}, "
                              f"not {app_id!r}")
    if claims.exp <= time.time():
        raise ValidationError("the token has expired; the user must sign in again")
    return DataswyftCredential(user=user, pda_domain=domain, token=token, token_iat=claims.iat,
                               token_exp=claims.exp, application_id=claims.application or "")
