"""The sign-in callback receiver: `/connect/<state>` binds a browser and forwards it to the
provider; the provider's redirect back completes the sign-in and stores the credential.

Every check happens before anything is stored: the parameters (each at most once), the state
(known, unused, unexpired, the cookie of the same browser), then the provider-specific proof
(digi.me: code exchange with the PKCE verifier and a verified token response, a PKCS#1 RSA
postbox key of at least 2048 bits; Dataswyft: `iss` equals the PDA the user was sent to, RS256
against that PDA's /publickey, `application`, `exp`, `iat + 72 h`).
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import Response

from worker.dataswyft import DataswyftError, DomainPolicy, PublicKeyCache, TokenError, verify_token
from worker.digime import DigimeError, DigimeHTTPError, DigimeTransportError
from worker.errors import ValidationError
from worker.logging import get_logger

from .. import keys as postbox_keys
from ..client import Datapost
from ..signin import PendingSignins
from . import pages
from .query import BadCallback, need, single_params

NAMES = {"digime": "digi.me", "dataswyft": "Your PDA"}
log = get_logger("datapost.callback")


def cookie_name(provider: str) -> str:
    return f"dp_signin_{provider}"


class CallbackReceiver:
    def __init__(self, datapost: Datapost,
                 on_result: Callable[[str, str], None] | None = None) -> None:
        self.datapost = datapost
        self.on_result = on_result
        self.settings = datapost.stores.settings
        self.pending = PendingSignins(datapost.stores.redis, datapost.stores.keyring,
                                      self.settings.callback.signin_ttl)
        self.keys = PublicKeyCache(datapost.http, self.settings.dataswyft.scheme,
                                   policy=DomainPolicy.from_settings(self.settings))
        self.digime = datapost.digime_client()
        public = self.settings.callback.public_url or "/"
        self.cookie_path = urlsplit(public).path or "/"
        self.secure = public.startswith("https://")

    # -- /connect/<state> --------------------------------------------------------------
    def connect(self, request: Request) -> Response:
        pending, first = self.pending.start(request.path_params["state"])
        if pending is None:
            return pages.expired()
        if not first:
            return pages.failure(NAMES[pending.provider], "This sign-in link was already "
                                 "opened. Go back to the app and start connecting again.",
                                 status=409)
        response = Response(status_code=302, headers={**pages.HEADERS,
                                                      "Location": pending.provider_url})
        response.set_cookie(cookie_name(pending.provider), pending.state, httponly=True,
                            samesite="lax", secure=self.secure, path=self.cookie_path,
                            max_age=self.settings.callback.signin_ttl)
        return response

    # -- outcomes ----------------------------------------------------------------------
    def _done(self, provider: str, response: Response) -> Response:
        response.delete_cookie(cookie_name(provider), path=self.cookie_path)
        return response

    def succeeded(self, provider: str) -> Response:
        if self.on_result is not None:
            self.on_result(provider, "connected")
        url = self.settings.callback.success_url
        response = (pages.redirect(f"{url}{'&' if '?' in url else '?'}"
                                   f"{urlencode({'provider': provider})}")
                    if url else pages.success(NAMES[provider]))
        return self._done(provider, response)

    def failed(self, provider: str, reason: str, *, error: str, status: int = 400,
               detail: str | None = None) -> Response:
        log.info("sign-in not completed", provider=provider, error=error)
        if self.on_result is not None:
            self.on_result(provider, "refused")
        url = self.settings.callback.failure_url
        response = (pages.redirect(f"{url}{'&' if '?' in url else '?'}"
                                   f"{urlencode({'provider': provider, 'error': error})}")
                    if url else pages.failure(NAMES[provider], reason, status=status,
                                              detail=detail))
        return self._done(provider, response)

    def _same_browser(self, request: Request, provider: str, state: str | None) -> bool:
        cookie = request.cookies.get(cookie_name(provider))
        return bool(cookie) and cookie == state

    # -- digi.me -----------------------------------------------------------------------
    def digime_return(self, request: Request) -> Response:
        try:
            params = single_params(request)
            outcome = params.get("success")
            if outcome == "false":
                return self._digime_declined(request, params)
            if outcome != "true":
                raise BadCallback("The answer must say success=true or success=false.")
            code, state = need(params, "code", "state")
        except BadCallback as exc:
            return self.failed("digime", str(exc), error="bad_request")
        if not self._same_browser(request, "digime", state):
            return self.failed("digime", "This sign-in was started in another browser (or "
                               "this browser blocked the cookie). Start again from the app.",
                               error="other_browser")
        pending = self.pending.take(state)
        if pending is None or pending.provider != "digime":
            return self._done("digime", pages.expired())
        return self._digime_complete(pending, code, params)

    def _digime_declined(self, request: Request, params: dict[str, str]) -> Response:
        error = (params.get("errorCode") or "unknown")[:100]
        state = params.get("state")
        if state and self._same_browser(request, "digime", state):
            self.pending.take(state)
        return self.failed("digime", "digi.me did not connect your library.", error=error,
                           detail=f"digi.me said: {error}")

    def _digime_complete(self, pending, code: str, params: dict[str, str]) -> Response:
        postbox_id, public_key = params.get("postboxId"), params.get("publicKey")
        if bool(postbox_id) != bool(public_key):
            return self.failed("digime", "digi.me sent half of the postbox details.",
                               error="bad_postbox")
        if public_key:
            try:
                public_key = postbox_keys.postbox_public_key(public_key)
            except ValidationError as exc:
                return self.failed("digime", "digi.me sent a postbox key we cannot use.",
                                   error="bad_postbox_key", detail=str(exc))
        if self.digime is None:
            return self.failed("digime", "digi.me is not configured here.", error="config",
                               status=503)
        try:
            tokens = self.digime.exchange_code(code, pending.code_verifier)
        except DigimeHTTPError as exc:
            return self.failed("digime", "digi.me did not accept this sign-in.",
                               error=exc.code or str(exc.status), detail=exc.message)
        except DigimeTransportError:
            return self.failed("digime", "digi.me could not be reached. Please try again.",
                               error="unreachable", status=502)
        except DigimeError as exc:
            return self.failed("digime", "digi.me's answer could not be verified.",
                               error="unverified", status=502, detail=type(exc).__name__)
        self.datapost.store_digime_credential(
            pending.user, access_token=tokens.access_token,
            access_expires_at=tokens.access_expires_at, refresh_token=tokens.refresh_token,
            refresh_expires_at=tokens.refresh_expires_at, postbox_id=postbox_id or None,
            postbox_public_key=public_key or None, digime_user_id=tokens.user_id,
            consent_id=tokens.consent_id)
        log.info("digi.me connected", user=pending.user)
        return self.succeeded("digime")

    # -- Dataswyft ---------------------------------------------------------------------
    def dataswyft_return(self, request: Request) -> Response:
        try:
            params = single_params(request)
            if "error" in params:
                return self._pda_declined(request, params)
            [token] = need(params, "token")
        except BadCallback as exc:
            return self.failed("dataswyft", str(exc), error="bad_request")
        state = request.cookies.get(cookie_name("dataswyft"))
        if not state:
            return self.failed("dataswyft", "This sign-in was started in another browser (or "
                               "this browser blocked the cookie). Start again from the app.",
                               error="other_browser")
        pending = self.pending.take(state)
        if pending is None or pending.provider != "dataswyft":
            return self._done("dataswyft", pages.expired())
        app_id = self.settings.dataswyft.application_id or ""
        try:
            verify_token(token, expected_domain=pending.pda_domain, app_id=app_id, keys=self.keys)
        except TokenError as exc:
            return self.failed("dataswyft", "The PDA's answer could not be accepted.",
                               error="bad_token", detail=str(exc))
        except DataswyftError:
            return self.failed("dataswyft", "Your PDA could not be reached. Please try again.",
                               error="unreachable", status=502)
        try:
            self.datapost.store_dataswyft_credential(pending.user, pda_domain=pending.pda_domain,
                                                     token=token)
        except ValidationError as exc:
            return self.failed("dataswyft", "The PDA's answer could not be accepted.",
                               error="bad_token", detail=str(exc))
        log.info("PDA connected", user=pending.user, pda=pending.pda_domain)
        return self.succeeded("dataswyft")

    def _pda_declined(self, request: Request, params: dict[str, str]) -> Response:
        # The PDA joins error and reason with an encoded "&": one parameter, split here.
        error, _, reason = params["error"].partition("&error_reason=")
        reason = (reason or params.get("error_reason", "")).strip()
        self._take_cookie_state(request, "dataswyft")
        return self.failed("dataswyft", "Your PDA did not connect.", error=error[:100] or "error",
                           detail=f"{error}: {reason}" if reason else error)

    def dataswyft_fallback(self, request: Request) -> Response:
        self._take_cookie_state(request, "dataswyft")
        return self.failed("dataswyft", "The sign-in was declined or did not complete.",
                           error="declined")

    def _take_cookie_state(self, request: Request, provider: str) -> None:
        state = request.cookies.get(cookie_name(provider))
        if state:
            self.pending.take(state)
