"""The sign-in callback receiver (starlette on uvicorn, or mounted in an app)."""

from .app import create_app
from .receiver import CallbackReceiver

__all__ = ["CallbackReceiver", "create_app"]
