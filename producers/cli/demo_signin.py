"""The sign-in part of `datapost demo`: both connect links, followed like a browser through
the sandbox's pages (auto-approving), through the callback receiver, to stored credentials."""

from __future__ import annotations

import httpx

from ..client import Datapost
from .output import Output


def browse(client: httpx.Client, url: str, hops: int = 10) -> httpx.Response:
    """Follow redirects as a browser does; the PDA's dashboard script turns `#/hatlogin`
    into the `/hatlogin` path, so do that too."""
    for _ in range(hops):
        url = url.replace("/#/hatlogin", "/hatlogin")
        resp = client.get(url)
        if resp.status_code not in (301, 302, 303, 307, 308):
            return resp
        url = str(resp.url.join(resp.headers["location"]))
    raise RuntimeError("too many redirects while signing in")


def register_pda_app(pda: dict, app_id: str, namespace: str, redirects: list[str]) -> None:
    httpx.post(pda["url"] + "/_control/apps", timeout=30, json={
        "id": app_id, "version": "1.0.0", "validRedirectUris": redirects,
        "roles": [f"namespacewrite:{namespace}", f"namespaceread:{namespace}", "managefiles:*"],
    }).raise_for_status()


def sign_in(datapost: Datapost, link: str, what: str, out: Output) -> None:
    out.say(f"      {what} connect link: {link}")
    with httpx.Client(timeout=30, follow_redirects=False) as browser:
        page = browse(browser, link)
    if page.status_code != 200 or "is connected" not in page.text:
        raise RuntimeError(f"{what} sign-in did not complete (HTTP {page.status_code})")
    out.say(f"      {what}: the sandbox's consent page approved, the callback stored the "
            "credential")
