"""Delivery: one attempt per job, outcome classes, retries, token keepers, rate limits."""

from .engine import DeliveryEngine
from .outcomes import Delivered, DeliveryFailure, Outcome
from .retry import RetryPolicy

__all__ = ["Delivered", "DeliveryEngine", "DeliveryFailure", "Outcome", "RetryPolicy"]
