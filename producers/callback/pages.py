"""The pages a person sees: plain, clear HTML that says what happened and what to do."""

from __future__ import annotations

from html import escape

from starlette.responses import HTMLResponse, RedirectResponse, Response

STYLE = ("body{font-family:system-ui,sans-serif;max-width:34rem;margin:4rem auto;padding:0 1rem;"
         "line-height:1.5;color:#1f2328}h1{font-size:1.5rem}.ok{color:#1a7f37}"
         ".bad{color:#cf222e}p.detail{color:#57606a;font-size:.9rem}")
HEADERS = {"Cache-Control": "no-store", "X-Frame-Options": "DENY",
           "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
           "Referrer-Policy": "no-referrer"}


def page(title: str, message: str, *, status: int = 200, ok: bool = False,
         detail: str | None = None) -> HTMLResponse:
    extra = f'<p class="detail">{escape(detail)}</p>' if detail else ""
    body = (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}'
            f'</title><meta name="viewport" content="width=device-width,initial-scale=1">'
            f"<style>{STYLE}</style></head><body><h1 class=\"{'ok' if ok else 'bad'}\">"
            f"{escape(title)}</h1><p>{escape(message)}</p>{extra}</body></html>")
    return HTMLResponse(body, status_code=status, headers=HEADERS)


def success(provider_name: str) -> HTMLResponse:
    return page(f"{provider_name} is connected",
                f"Your {provider_name} account is now connected. You can close this window "
                "and return to the app.", ok=True)


def failure(provider_name: str, reason: str, *, status: int = 400,
            detail: str | None = None) -> HTMLResponse:
    return page(f"{provider_name} was not connected", reason, status=status, detail=detail)


def expired() -> HTMLResponse:
    return page("This link has expired",
                "This sign-in link was already used or is too old. Go back to the app and "
                "start connecting again.", status=410)


def redirect(url: str) -> Response:
    return RedirectResponse(url, status_code=303, headers=HEADERS)
