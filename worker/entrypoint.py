"""The module dramatiq's worker processes import (`datapost worker` runs them).

Importing it is the edge of a worker process: configuration is read here, once, and the
delivery service is built and its actor declared.
"""

from __future__ import annotations

import os

from .config import load_settings
from .errors import ConfigError
from .logging import configure_logging
from .service import DeliveryService

settings = load_settings()
redactor = configure_logging(settings.log)
redis_url = settings.redis_url or os.environ.get("DATAPOST_REDIS_URL")
if not redis_url:
    raise ConfigError("DATAPOST_REDIS_URL is not set (run workers through `datapost worker`, "
                      "which starts the embedded server when none is configured)")
service = DeliveryService.build(settings, redis_url, redactor=redactor)
broker = service.broker
deliver = service.declare_actor()
