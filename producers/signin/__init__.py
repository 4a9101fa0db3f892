"""Sign-in: connect links and the pending state that ties a provider's answer to them."""

from .links import ConnectLinks, SigninError, redirect_uris
from .pending import PendingSignin, PendingSignins

__all__ = ["ConnectLinks", "PendingSignin", "PendingSignins", "SigninError", "redirect_uris"]
