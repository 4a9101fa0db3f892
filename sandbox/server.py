"""Runs the sandbox: the digi.me API, onboarding and control on one port, one port per PDA.

All servers share one event loop and one `World`. Each PDA's domain is `localhost:<port>`,
which is what its tokens carry as `iss` and what clients build URLs from.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import tempfile
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.routing import Mount

from .config import SandboxConfig
from .control import control_routes
from .dataswyft import DataswyftState, dataswyft_control_routes, pda_app
from .digime import DigimeState, digime_api_app, digime_control_routes, onboarding_app
from .middleware import SandboxMiddleware
from .world import World

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


class _QuietServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to the sandbox (several run at once)."""

    @contextlib.contextmanager
    def capture_signals(self):
        yield


def _bind(host: str, port: int) -> list[socket.socket]:
    """Bind the IPv4 socket, and ::1 on the same port when host is loopback and IPv6 exists."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets whose proto says TCP, and
    # without it every answer written in two parts waits ~40 ms for a delayed ACK
    first = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    first.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    first.bind((host, port))
    sockets = [first]
    if host == "127.0.0.1" and socket.has_ipv6:
        six = socket.socket(socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        six.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        six.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        try:
            six.bind(("::1", first.getsockname()[1]))
            sockets.append(six)
        except OSError:
            six.close()
    for sock in sockets:
        sock.listen(1024)
        sock.setblocking(False)
    return sockets


class SandboxServer:
    """Owns the listeners; `start()` binds them all, `serve()` runs until stopped."""

    def __init__(self, config: SandboxConfig) -> None:
        settings = config.settings
        if settings.host not in LOOPBACK:
            raise ValueError("the sandbox listens on loopback only (127.0.0.1, localhost or ::1)")
        if settings.data_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="datapost-sandbox-")
            settings.data_dir = Path(self._tmp.name)
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.config = config
        self.world = World(settings=settings)
        self.world.faults = type(self.world.faults)(seed=settings.seed)
        self.world.digime = DigimeState(self.world)
        self.world.dataswyft = DataswyftState(self.world)
        self.world.pda_launcher = self.launch_pda  # type: ignore[attr-defined]
        self._servers: list[uvicorn.Server] = []
        self._tasks: list[asyncio.Task] = []
        self._pda_app = SandboxMiddleware(
            pda_app(self.world), target="pda", faults=self.world.faults, log=self.world.requests,
            target_for_path=lambda path: "s3" if path.startswith("/_s3") else "pda",
        )
        self.main_url = ""

    def _main_app(self) -> SandboxMiddleware:
        api = digime_api_app(self.world)
        routes = [
            *control_routes(self.world, self.urls),
            *digime_control_routes(self.world),
            *dataswyft_control_routes(self.world),
        ]
        app = Starlette(routes=[
            Mount("/v1.7", app=api),
            Mount("/v1.6", app=api),
            Mount("/apps/saas", app=onboarding_app(self.world)),
            Mount("/_control", routes=routes),
        ])
        return SandboxMiddleware(app, target="digime", faults=self.world.faults,
                                 log=self.world.requests)

    def _run(self, app, sockets: list[socket.socket]) -> None:
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                                timeout_keep_alive=30)
        server = _QuietServer(config)
        self._servers.append(server)
        self._tasks.append(asyncio.ensure_future(server.serve(sockets=sockets)))

    async def launch_pda(self, name: str, password: str | None = None, port: int = 0):
        """Bind a new port and register a PDA whose domain is localhost:<port>."""
        if name in self.world.dataswyft.pdas:
            raise ValueError(f"a PDA named {name!r} already exists")
        sockets = _bind(self.config.settings.host, port)
        domain = f"localhost:{sockets[0].getsockname()[1]}"
        pda = self.world.dataswyft.add_pda(name, domain, password)
        self._run(self._pda_app, sockets)
        return pda

    async def start(self) -> None:
        s = self.config.settings
        sockets = _bind(s.host, s.port)
        host = f"[{s.host}]" if ":" in s.host else s.host
        self.main_url = f"http://{host}:{sockets[0].getsockname()[1]}"
        for contract in self.config.contracts:
            self.world.digime.register_contract(contract.application_id, contract.contract_id,
                                                contract.public_key_pem, contract.redirect_uris)
        for app in self.config.apps:
            self.world.dataswyft.register_app(app)
        self._run(self._main_app(), sockets)
        for spec in self.config.pdas:
            pda = await self.launch_pda(spec.name, spec.password, spec.port)
            for app_id in spec.apps:
                self.world.dataswyft.enable_app(pda.name, app_id)

    def urls(self) -> dict:
        return {
            "digime_api_url": f"{self.main_url}/v1.7/",
            "onboard_url": f"{self.main_url}/apps/saas/",
            "control_url": f"{self.main_url}/_control",
            "auto_approve": self.world.settings.auto_approve,
            "pdas": [{"name": p.name, "domain": p.domain, "url": p.url}
                     for p in self.world.dataswyft.pdas.values()],
        }

    def stop(self) -> None:
        for server in self._servers:
            server.should_exit = True

    async def serve(self) -> None:
        """Run until every server has exited (after `stop()` or a signal)."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.stop)
        while self._tasks:
            done = [t for t in self._tasks if t.done()]
            for task in done:
                self._tasks.remove(task)
                if task.exception() and not all(s.should_exit for s in self._servers):
                    self.stop()
                    raise task.exception()
            if all(s.should_exit for s in self._servers):
                await asyncio.gather(*self._tasks, return_exceptions=True)
                return
            await asyncio.sleep(0.2)
