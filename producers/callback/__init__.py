"""The sign-in callback receiver (starlette on uvicorn, or mounted in an app)."""

from .app import create_app
from .receiver import CallbackReceiver
from .serve import serve_in_thread

__all__ = ["CallbackReceiver", "create_app", "serve_in_thread"]
