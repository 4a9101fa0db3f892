"""The sandbox binds its own listening sockets; connections accepted on them must have
TCP_NODELAY (asyncio sets it only when the socket's proto says TCP). Without it, an answer
written as headers then body waits for the client's delayed ACK, ~40 ms per request, which
once hid in every latency figure measured against the sandbox."""

from __future__ import annotations

import asyncio
import socket
import threading

from sandbox.server import _bind


def test_accepted_connections_have_tcp_nodelay():
    sockets = _bind("127.0.0.1", 0)
    port = sockets[0].getsockname()[1]
    seen: list[int] = []

    async def main() -> None:
        def accepted(reader, writer) -> None:
            sock = writer.get_extra_info("socket")
            seen.append(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(accepted, sock=sockets[0])
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            await reader.read()  # the server closed it after looking
            writer.close()
        finally:
            server.close()
            await server.wait_closed()

    # a loop of its own, in a thread of its own: an earlier test may leave one running here
    runner = threading.Thread(target=asyncio.run, args=(main(),))
    try:
        runner.start()
        runner.join(30)
    finally:
        for sock in sockets:
            sock.close()
    assert all(s.proto == socket.IPPROTO_TCP for s in sockets)
    assert seen and seen[0] != 0
