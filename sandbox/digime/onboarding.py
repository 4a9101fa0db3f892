"""The browser side: `{onboardUrl}authorize`, a consent page with Allow and Deny (notes §4).

Allow creates (or, when oauth/authorize carried an access_token, reuses) the user's library
and postbox, issues a single-use authorization code and redirects to the JWT's redirect_uri
with success/code/state/postboxId/publicKey/accountReference. Deny redirects with
`success=false&errorCode=UserCancelled`: to the v5-v9 `callback=` URL when the link has one,
else to redirect_uri. With settings.auto_approve the GET acts as if Allow was clicked.
"""

from __future__ import annotations

import html
from urllib.parse import quote, urlencode

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from .oauth import redirect_problem
from .state import DigimeState, Preauth

PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy":
        "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
}
STYLE = ("body{font-family:system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem}"
         "button{font-size:1.1rem;padding:.5rem 1.5rem;margin-right:1rem}"
         "dt{font-weight:bold}.error{color:#a00}")


def page(title: str, body: str, status: int = 200) -> HTMLResponse:
    doc = (f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
           f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>"
           f"<body><h1>{html.escape(title)}</h1>{body}</body></html>")
    return HTMLResponse(doc, status_code=status, headers=PAGE_HEADERS)


def error_page(message: str, status: int = 400) -> HTMLResponse:
    return page("digi.me sandbox: cannot continue",
                f"<p class=\"error\" id=\"error\">{html.escape(message)}</p>", status)


def with_query(uri: str, params: dict[str, str]) -> str:
    """Append params (percent-encoded, spaces as %20) after any query the URI already has."""
    query = urlencode(params, quote_via=quote)
    if "?" not in uri:
        return f"{uri}?{query}"
    return f"{uri}{'' if uri.endswith(('?', '&')) else '&'}{query}"


def onboarding_app(world) -> Starlette:
    state: DigimeState = world.digime

    def callback_problem(pre: Preauth, callback: str | None) -> str | None:
        if callback is None:
            return None
        contract = state.contract(pre.client_id)
        why = redirect_problem(callback, contract) if contract else "unknown contract"
        return f"The callback URL is not acceptable ({why})." if why else None

    async def decide(code: str, allow: bool, callback: str | None) -> Response:
        pre, problem = state.preauth_problem(code)
        if pre is not None:
            problem = callback_problem(pre, callback)
        if problem is None:
            pre, problem = state.take_preauth(code)
        if pre is None or problem:
            return error_page(problem or "This authorization link is not valid.")
        params: dict[str, str]
        if allow:
            user = state.users.get(pre.user_id) if pre.user_id else None
            if user is None:
                user = await run_in_threadpool(state.create_user)
            box = state.postbox_of(user)
            auth = state.new_auth_code(pre, user.id)
            params = {"success": "true", "code": auth.code}
            if pre.state is not None:
                params["state"] = pre.state
            params |= {"postboxId": box.id, "publicKey": box.public_pem,
                       "accountReference": user.account_reference}
            target = pre.redirect_uri
        else:
            params = {"success": "false", "errorCode": "UserCancelled"}
            if pre.state is not None:
                params["state"] = pre.state
            target = callback or pre.redirect_uri
        return RedirectResponse(with_query(target, params), status_code=302,
                                headers={"Cache-Control": "no-store"})

    async def authorize(request: Request) -> Response:
        if request.method == "POST":
            try:
                form = await request.form(max_files=0, max_fields=10)
            except Exception:
                return error_page("The form could not be read.")
            code, decision = form.get("code"), form.get("decision")
            callback = form.get("callback") or None
            if not isinstance(code, str) or decision not in ("allow", "deny"):
                return error_page("The form must carry the code and a decision (allow or deny).")
            return await decide(code, decision == "allow", callback)  # type: ignore[arg-type]
        code = request.query_params.get("code")
        callback = request.query_params.get("callback") or None
        if not code:
            return error_page("The authorization link has no code.")
        pre, problem = state.preauth_problem(code)
        if pre is not None:
            problem = callback_problem(pre, callback)
        if pre is None or problem:
            return error_page(problem or "This authorization link is not valid.")
        if world.settings.auto_approve:
            return await decide(code, True, callback)
        return consent_page(request, pre, code, callback)

    def consent_page(request: Request, pre: Preauth, code: str, callback: str | None) -> Response:
        contract = state.contract(pre.client_id)
        app_name = contract.application_id if contract else pre.client_id
        action = html.escape(f"{request.scope.get('root_path', '').rstrip('/')}/authorize")
        hidden = f'<input type="hidden" name="code" value="{html.escape(code)}">'
        if callback:
            hidden += f'<input type="hidden" name="callback" value="{html.escape(callback)}">'
        source = request.query_params.get("sourceType", "pull")
        body = (
            f"<p>The application <strong id=\"app\">{html.escape(app_name)}</strong> asks to "
            f"{'write to' if source == 'push' else 'share data with'} your digi.me library.</p>"
            f"<dl><dt>Application</dt><dd>{html.escape(app_name)}</dd>"
            f"<dt>Contract</dt><dd id=\"contract\">"
            f"{html.escape(contract.contract_id if contract else '?')}</dd>"
            f"<dt>Returns to</dt><dd>{html.escape(pre.redirect_uri)}</dd></dl>"
            f"<form method=\"post\" action=\"{action}\">{hidden}"
            f"<button type=\"submit\" name=\"decision\" value=\"allow\" id=\"allow\">Allow</button>"
            f"<button type=\"submit\" name=\"decision\" value=\"deny\" id=\"deny\">Deny</button>"
            f"</form>")
        return page("digi.me sandbox: authorize", body)

    async def not_emulated(request: Request) -> Response:
        return error_page(
            f"{request.url.path} (re-authorization and service onboarding) is not emulated by the "
            "datapost sandbox; only /authorize is.", status=501)

    return Starlette(routes=[
        Route("/authorize", authorize, methods=["GET", "POST"]),
        Route("/onboard", not_emulated, methods=["GET"]),
        Route("/user-reauth", not_emulated, methods=["GET"]),
        Route("/reauthorize", not_emulated, methods=["GET"]),
    ])
