"""The digi.me half of the sandbox: an independent emulation of the digi.me API server.

Written from `protocols/digime.md` alone; imports nothing from `worker` or `producers`.
"""

from .app import digime_api_app
from .control import digime_control_routes
from .onboarding import onboarding_app
from .state import DigimeState

__all__ = ["DigimeState", "digime_api_app", "digime_control_routes", "onboarding_app"]
