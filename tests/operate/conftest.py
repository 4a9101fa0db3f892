"""Operate tests reuse the delivery fixtures (private Redis, sandbox, settings, workers)."""

from tests.delivery.conftest import (  # noqa: F401  (fixtures)
    contract,
    datapost,
    env,
    mint_user,
    run_worker,
    settings,
    spawn_worker,
)
