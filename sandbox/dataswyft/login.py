"""The login redirect (`/#/hatlogin`, `/hatlogin`, `/hat-setup-login`, `/auth/oauth`).

What the real dashboard does in the browser happens here on the server, with plain pages:
parameter checks and error redirects (notes §2.4, `%26` quirk and "fallback carries no
error" included), strict redirect allow-list, password page, consent page, silent
re-login, and auto-approve (settings.auto_approve, read per request).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from . import errors, pages
from .errors import ApiError
from .routing import Call, Router
from .state import AppSpec, Pda
from .tokens import Verified
from .users import client_key

LOGIN_PATHS = ("/hatlogin", "/hat-setup-login", "/auth/oauth")
MISCONFIGURED = "application_misconfigured"
STRICT_REASON = "redirect_uri_not_allowed"


@dataclass
class LoginParams:
    app_id: str | None
    redirect: str | None
    fallback: str | None
    internal: bool

    @classmethod
    def read(cls, values: dict[str, str]) -> LoginParams:
        """`application_id` beats `name`, `redirect_uri` beats `redirect`; ids are lower-cased."""
        app_id = values.get("application_id") or values.get("name") or None
        redirect = values.get("redirect_uri") or values.get("redirect") or None
        return cls(app_id.lower() if app_id else None, redirect, values.get("fallback") or None,
                   values.get("internal", "").lower() == "true")

    def hidden(self) -> dict[str, str]:
        out = {"application_id": self.app_id or "", "redirect_uri": self.redirect or ""}
        if self.fallback:
            out["fallback"] = self.fallback
        if self.internal:
            out["internal"] = "true"
        return out


def cookie_name(pda: Pda) -> str:
    """Cookies ignore ports, so each PDA on localhost needs its own cookie name."""
    return "pda_session_" + re.sub(r"\W", "_", pda.domain)


def session(call: Call) -> Verified | None:
    token = call.request.cookies.get(cookie_name(call.pda))
    who = call.pda.tokens.verify(token, call.now) if token else None
    return who if who is not None and who.is_owner else None


def csrf_token(call: Call, who: Verified) -> str:
    return hmac.new(call.state.form_key, str(who.claims.get("jti")).encode(),
                    hashlib.sha256).hexdigest()


def error_redirect(call: Call, p: LoginParams, code: str, reason: str) -> Response:
    """§2.4: fallback wins and carries nothing; else `?error=<e>%26error_reason=<r>`."""
    if p.fallback:
        return RedirectResponse(p.fallback, status_code=302)
    if p.redirect:
        target = f"{p.redirect}?error={code}%26error_reason={reason}"
        return RedirectResponse(target, status_code=302)
    page = pages.error(call.pda.domain, code, reason.replace("%20", ""))
    return HTMLResponse(page, status_code=400)


def success_redirect(redirect: str, token: str | None) -> Response:
    """`<redirect>` + ('&' if it has '?' else '?') + `token=`; the first '#' becomes %23."""
    if token is None:
        return RedirectResponse(redirect, status_code=302)
    target = redirect.replace("#", "%23", 1)
    sep = "&" if "?" in target else "?"
    return RedirectResponse(f"{target}{sep}token={token}", status_code=302)


def _grant(call: Call, app: AppSpec, p: LoginParams) -> Response:
    """Enable the app (if needed) and send the browser back with a fresh app token."""
    entry = call.pda.apps.get(app.id)
    if entry is None or not entry.enabled or entry.version != app.version:
        call.pda.enable(app)
    if p.internal:
        return success_redirect(p.redirect or "/", None)
    token = call.pda.tokens.mint_app(app.id, app.version, int(call.now))
    return success_redirect(p.redirect or "/", token)


def check(call: Call, p: LoginParams) -> tuple[AppSpec | None, Response | None]:
    """The app for a valid request, or the response for an invalid one."""
    if not p.app_id:
        return None, error_redirect(call, p, MISCONFIGURED, "application_id_is_required%20")
    if not p.redirect:
        return None, error_redirect(call, p, MISCONFIGURED, "redirect_is_required%20")
    app = call.state.apps.get(p.app_id)
    if app is None or app.kind not in ("App", "DataPlug"):
        return None, error_redirect(call, p, MISCONFIGURED, "application_id_not_found%20")
    if p.redirect not in app.valid_redirect_uris:  # strict: exact string equality, no redirect
        return None, HTMLResponse(pages.error(
            call.pda.domain, MISCONFIGURED, STRICT_REASON,
            f"{p.redirect} is not a registered redirect URI of {app.id}."), status_code=400)
    return app, None


def _params(request: Request) -> LoginParams:
    return LoginParams.read(dict(request.query_params))


async def hatlogin(call: Call) -> Response:
    p = _params(call.request)
    app, problem = check(call, p)
    if problem is not None or app is None:
        return problem or HTMLResponse("", status_code=400)
    settings = getattr(call.state.world, "settings", None)
    if getattr(settings, "auto_approve", False):
        return _grant(call, app, p)
    who = session(call)
    if who is None:
        query = call.request.url.query
        next_url = call.request.url.path + ("?" + query if query else "")
        return HTMLResponse(pages.password(call.pda.domain, call.pda.owner, next_url))
    entry = call.pda.apps.get(app.id)
    if p.internal or (entry is not None and entry.enabled and entry.version == app.version):
        return _grant(call, app, p)  # silent re-login
    hidden = {**p.hidden(), "csrf": csrf_token(call, who)}
    updating = entry is not None and entry.version != app.version
    return HTMLResponse(pages.consent(call.pda.domain, app, hidden, updating))


def _safe_next(value: str) -> str:
    for path in LOGIN_PATHS:
        if value == path or value.startswith(path + "?"):
            return value
    return "/"


MAX_FORM_BYTES = 64 * 1024


async def _form(call: Call) -> dict[str, str]:
    """The urlencoded/multipart form of a login page; oversized forms are refused."""
    length = call.request.headers.get("content-length", "")
    if not length.isdigit() or int(length) > MAX_FORM_BYTES:
        raise ApiError(errors.entity_too_large() if length.isdigit()
                       else errors.play_html(411, "Length Required", "Length Required"))
    form = await call.request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


async def password_form(call: Call) -> Response:
    form = await _form(call)
    next_url = _safe_next(str(form.get("next", "")))
    password = str(form.get("password", ""))
    pda = call.pda
    if not call.state.login_limiter.allow(client_key(call), call.now):
        return HTMLResponse(pages.password(pda.domain, pda.owner, next_url,
                                           "Too many attempts. Wait a few seconds and try again."),
                            status_code=400)
    if not hmac.compare_digest(password.encode(), pda.password.encode()):
        page = pages.password(pda.domain, pda.owner, next_url,
                              "Incorrect password. Please try again.")
        return HTMLResponse(page, status_code=401)
    resp = RedirectResponse(next_url, status_code=303)
    resp.set_cookie(cookie_name(pda), pda.tokens.mint_owner(int(call.now)), httponly=True,
                    samesite="lax", path="/")
    return resp


async def consent_form(call: Call) -> Response:
    values = await _form(call)
    p = LoginParams.read(values)
    who = session(call)
    if who is None or not hmac.compare_digest(values.get("csrf", ""), csrf_token(call, who)):
        page = pages.password(call.pda.domain, call.pda.owner, "/hatlogin?" + _query(p),
                              "Your session has ended. Please log in again.")
        return HTMLResponse(page, status_code=401)
    app, problem = check(call, p)
    if problem is not None or app is None:
        return problem or HTMLResponse("", status_code=400)
    if values.get("decision") == "accept":
        return _grant(call, app, p)
    resp = error_redirect(call, p, "access_denied", "user_cancelled")
    resp.delete_cookie(cookie_name(call.pda), path="/")  # the dashboard logs the owner out
    return resp


def _query(p: LoginParams) -> str:
    return urlencode(p.hidden())


async def logout(call: Call) -> Response:
    resp = RedirectResponse("/", status_code=303)
    resp.delete_cookie(cookie_name(call.pda), path="/")
    return resp


def register(router: Router) -> None:
    for path in LOGIN_PATHS:
        router.add("GET", re.escape(path), hatlogin, auth="none")
    router.add("POST", "/_sandbox/login", password_form, auth="none")
    router.add("POST", "/_sandbox/consent", consent_form, auth="none")
    router.add("POST", "/_sandbox/logout", logout, auth="none")
