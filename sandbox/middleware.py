"""ASGI middleware shared by every sandbox server: request log and fault injection.

Control-API paths (`/_control`) are logged but never faulted, so a test can always
reach the knobs that turn faults off again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable

from .faults import FaultInjector, FaultRule
from .requestlog import RequestLog

Scope = dict
Message = dict
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CONTROL_PREFIX = "/_control"
logger = logging.getLogger("sandbox")


def injected_error(target: str, status: int, rule: FaultRule) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """The body and headers the real platform would send for this status."""
    headers: list[tuple[bytes, bytes]] = []
    if rule.retry_after is not None:
        headers.append((b"retry-after", rule.retry_after.encode()))
    if rule.body is not None:
        body = rule.body if isinstance(rule.body, str) else json.dumps(rule.body)
        headers.append((b"content-type", b"application/json"))
        return body.encode(), headers
    if target == "s3":
        xml = (f"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>InternalError</Code>"
               f"<Message>Injected fault ({status})</Message></Error>")
        headers.append((b"content-type", b"application/xml"))
        return xml.encode(), headers
    if target == "pda":
        if status == 404:
            payload: dict = {"error": "Not Found", "message": "HAT unavailable"}
        elif status >= 500:
            payload = {"error": "Internal Server error",
                       "message": f"Server error occurred: {secrets.token_hex(4)}"}
        else:
            payload = {"error": "Injected", "message": f"Injected fault ({status})"}
        if not rule.id:  # not injected: the sandbox itself failed
            payload = {"error": "Internal Server error",
                       "message": f"Server error occurred: {secrets.token_hex(4)}"}
        headers.append((b"content-type", b"application/json"))
        return json.dumps(payload).encode(), headers
    code = {429: "TooManyRequests", 503: "ServiceUnavailable"}.get(
        status, "InternalServerError" if status >= 500 else "InjectedFault")
    message = f"Injected fault ({status})" if rule.id else "Internal server error"
    reference = secrets.token_hex(8)
    headers += [
        (b"content-type", b"application/json"),
        (b"x-error-code", code.encode()),
        (b"x-error-message", message.encode()),
        (b"x-error-reference", reference.encode()),
    ]
    payload = {"error": {"code": code, "message": message, "reference": reference}}
    return json.dumps(payload).encode(), headers


def _abort_connection(receive: Receive) -> bool:
    """Close the TCP connection without a response (uvicorn keeps the transport on receive)."""
    transport = getattr(getattr(receive, "__self__", None), "transport", None)
    if transport is None:
        return False
    transport.abort()
    return True


async def _buffered(app: ASGIApp, scope: Scope, receive: Receive) -> list[Message]:
    """Run the app to completion and keep what it would have sent."""
    sent: list[Message] = []

    async def keep(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, keep)
    return sent


class SandboxMiddleware:
    """Logs each request and applies the first matching fault rule before the app sees it."""

    def __init__(self, app: ASGIApp, *, target: str, faults: FaultInjector, log: RequestLog,
                 target_for_path: Callable[[str], str] | None = None) -> None:
        self.app = app
        self.target = target
        self.faults = faults
        self.log = log
        self.target_for_path = target_for_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        target = self.target_for_path(path) if self.target_for_path else self.target
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        host = headers.get("host", "")
        entry = self.log.start(
            at=time.time(), target=target, host=host, method=scope["method"], path=path,
            query=scope.get("query_string", b"").decode("latin-1")[:500],
            headers=sorted(headers),
        )
        started = time.perf_counter()

        started_response = False

        async def logging_send(message: Message) -> None:
            nonlocal started_response
            if message["type"] == "http.response.start":
                entry.status = message["status"]
                started_response = True
            await send(message)

        try:
            rule = None
            if not path.startswith(CONTROL_PREFIX):
                rule = self.faults.pick(target, host, scope["method"], path)
            if rule is not None and rule.after:
                entry.fault = f"rule {rule.id} (after)"
                await self._after(rule, scope, receive, logging_send, entry)
                return
            if rule is not None:
                entry.fault = f"rule {rule.id}"
                if rule.delay_ms:
                    await asyncio.sleep(rule.delay_ms / 1000)
                if rule.drop:
                    entry.error = "dropped"
                    if _abort_connection(receive):
                        return
                    await send({"type": "http.response.start", "status": 200,
                                "headers": [(b"content-length", b"1000")]})
                    raise ConnectionAbortedError("injected drop")
                if rule.status is not None:
                    body, extra = injected_error(target, rule.status, rule)
                    await logging_send({"type": "http.response.start", "status": rule.status,
                                        "headers": [*extra, (b"content-length", str(len(body)).encode())]})
                    await send({"type": "http.response.body", "body": body})
                    return
            await self.app(scope, receive, logging_send)
        except ConnectionAbortedError:
            raise
        except Exception as exc:  # a sandbox bug still gets the platform's 500, not a trace
            entry.error = type(exc).__name__
            logger.exception("sandbox error on %s %s", scope["method"], path)
            if started_response:
                raise
            body, extra = injected_error(target, 500, FaultRule(id=0))
            await logging_send({"type": "http.response.start", "status": 500,
                                "headers": [*extra, (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
        finally:
            entry.duration_ms = round((time.perf_counter() - started) * 1000, 3)

    async def _after(self, rule: FaultRule, scope: Scope, receive: Receive, send: Send,
                     entry) -> None:
        """Handle the request for real, then delay or drop the answer."""
        sent = await _buffered(self.app, scope, receive)
        if rule.delay_ms:
            await asyncio.sleep(rule.delay_ms / 1000)
        if rule.drop:
            entry.error = "dropped after handling"
            if _abort_connection(receive):
                return
            raise ConnectionAbortedError("injected drop after handling")
        for message in sent:
            await send(message)
