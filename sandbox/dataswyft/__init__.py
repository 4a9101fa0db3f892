"""Dataswyft (HAT PDA) half of the sandbox: an independent emulation of Personal Data Accounts.

Written from `protocols/dataswyft.md` alone; imports nothing from `worker` or `producers`.
The server does `world.dataswyft = DataswyftState(world)`, serves `pda_app(world)` on every
PDA port and mounts `dataswyft_control_routes(world)` under `/_control` on the main port.
"""

from .app import pda_app
from .control import dataswyft_control_routes
from .state import DEFAULT_PASSWORD, AppSpec, DataswyftState, Pda

__all__ = ["DEFAULT_PASSWORD", "AppSpec", "DataswyftState", "Pda", "dataswyft_control_routes",
           "pda_app"]
