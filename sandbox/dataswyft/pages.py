"""The few HTML pages a PDA host serves: dashboard index, password page, consent, errors.

Plain HTML that works without JavaScript (headless browsers and people alike); the only
script is the index's router, which turns `#/hatlogin?...` into the path `/hatlogin?...`
as the real dashboard's root route does.
"""

from __future__ import annotations

from html import escape

from .state import AppSpec

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem;"
    "color:#1b1b1f}h1{font-size:1.4rem}.pda{color:#555}.err{color:#a40000;font-weight:600}"
    "button{font-size:1rem;padding:.5rem 1.2rem;margin-right:.6rem}input{font-size:1rem;"
    "padding:.4rem;width:100%;box-sizing:border-box}li{margin:.2rem 0}"
)

_ROUTER = (
    "<script>(function(){var h=location.hash||'';"
    "var m=h.match(/^#(\\/(?:hatlogin|hat-setup-login|auth\\/oauth)(?:\\?.*)?)$/);"
    "if(m){location.replace(m[1]);}})();</script>"
)

_ROLE_TEXT = {
    "namespacewrite": "write data into the namespace",
    "namespaceread": "read data from the namespace",
    "managefiles": "upload and manage files",
    "retrieveapplicationtoken": "obtain access tokens for",
    "applicationmanage": "manage the application",
    "applicationlist": "list your applications",
    "datadebit": "set up data debits",
    "owner": "act as you, the owner, on everything",
}


def _page(title: str, body: str, head: str = "") -> str:
    return (
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
        f"<title>{escape(title)}</title><style>{_STYLE}</style>{head}</head><body>{body}</body></html>"
    )


def index(domain: str) -> str:
    return _page(f"{domain} - PDA", (
        f"<h1>Personal Data Account</h1><p class=\"pda\">{escape(domain)}</p>"
        "<p>This is the datapost sandbox's stand-in for a Dataswyft PDA dashboard. "
        "Apps sign people in at "
        "<code>/#/hatlogin?name=&lt;app&gt;&amp;redirect=&lt;url&gt;</code>.</p>"
    ), head=_ROUTER)


def password(domain: str, owner: str, next_url: str, message: str | None = None) -> str:
    err = f"<p class=\"err\" role=\"alert\">{escape(message)}</p>" if message else ""
    return _page(f"Log in - {domain}", (
        f"<h1>Log in to your PDA</h1><p class=\"pda\">{escape(owner)} @ {escape(domain)}</p>{err}"
        "<form method=\"post\" action=\"/_sandbox/login\">"
        f"<input type=\"hidden\" name=\"next\" value=\"{escape(next_url)}\">"
        "<p><label for=\"password\">Password</label><br>"
        "<input id=\"password\" name=\"password\" type=\"password\" "
        "autocomplete=\"current-password\" required autofocus></p>"
        "<p><button type=\"submit\" id=\"login\">Log in</button></p></form>"
    ))


def _role_line(role: str, detail: str | None) -> str:
    what = _ROLE_TEXT.get(role, role)
    target = f" <code>{escape(detail)}</code>" if detail and detail != "*" else ""
    return f"<li>{escape(what)}{target}</li>"


def consent(domain: str, app: AppSpec, hidden: dict[str, str], updating: bool) -> str:
    fields = "".join(f"<input type=\"hidden\" name=\"{escape(k)}\" value=\"{escape(v)}\">"
                     for k, v in hidden.items())
    roles = "".join(_role_line(r.role, r.detail) for r in app.roles) or "<li>no data access</li>"
    intro = ("has been updated and asks you to agree again." if updating
             else "would like to connect to your PDA.")
    return _page(f"Allow {app.name or app.id}? - {domain}", (
        f"<h1><span id=\"app-name\">{escape(app.name or app.id)}</span> {intro}</h1>"
        f"<p class=\"pda\">{escape(domain)} &middot; app id <code>{escape(app.id)}</code>, "
        f"version {escape(app.version)}</p><p>It asks for permission to:</p><ul id=\"permissions\">"
        f"{roles}</ul><form method=\"post\" action=\"/_sandbox/consent\">{fields}"
        "<button type=\"submit\" name=\"decision\" value=\"accept\" id=\"accept\">Accept</button>"
        "<button type=\"submit\" name=\"decision\" value=\"decline\" id=\"decline\">"
        "Decline</button>"
        "</form>"
    ))


def error(domain: str, code: str, reason: str, detail: str = "") -> str:
    extra = f"<p>{escape(detail)}</p>" if detail else ""
    return _page(f"Login error - {domain}", (
        f"<h1>Login error</h1><p class=\"pda\">{escape(domain)}</p>"
        f"<p class=\"err\" id=\"error\">{escape(code)}</p>"
        f"<p id=\"reason\">{escape(reason)}</p>{extra}"
    ))
