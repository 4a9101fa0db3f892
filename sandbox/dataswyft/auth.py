"""Who is calling: token extraction (query before header, like Silhouette) and role checks.

Role rules (HAT `Authorization.scala`): owner tokens may do everything. App tokens need the
app in the registry, set up and enabled on this PDA, and the role granted with exactly the
required detail; only a *required* detail of "*" is a wildcard. An app granted `owner`
passes everything except `retrieveapplicationtoken`, even when not enabled.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request

from .tokens import Verified

if TYPE_CHECKING:
    from .state import DataswyftState, Pda

TOKEN_NAME = "X-Auth-Token"


def extract_token(request: Request) -> str | None:
    """The query parameter named exactly `X-Auth-Token` first, then the header (any case)."""
    for key, value in request.query_params.multi_items():
        if key == TOKEN_NAME and value:
            return value
    return request.headers.get(TOKEN_NAME) or None


def has_role(state: DataswyftState, pda: Pda, who: Verified | None, role: str,
             detail: str | None = None) -> bool:
    """Would the HAT let this caller act with `role:detail` on this PDA?"""
    if who is None:
        return False
    if who.is_owner:
        return True
    app_id = who.application
    if app_id is None:
        return False
    app = state.apps.get(app_id)
    if app is None:
        return False  # unknown to the registry is treated like "not allowed"
    if app.has_role("owner") and role != "retrieveapplicationtoken":
        return True
    if not pda.is_enabled(app_id):
        return False
    return any(g.role == role and (detail == "*" or g.detail == detail) for g in app.roles)


def app_usable(state: DataswyftState, pda: Pda, who: Verified | None) -> bool:
    """An app token whose app is known and enabled (or an owner token)."""
    if who is None:
        return False
    if who.is_owner:
        return True
    app_id = who.application
    app = state.apps.get(app_id) if app_id else None
    if app is None:
        return False
    return app.has_role("owner") or pda.is_enabled(app.id)
