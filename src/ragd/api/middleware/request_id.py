"""A request id for every request: taken from a safe ``X-Request-ID`` or made up, bound
into every log line and into the audit context (with the client address; the actor is
``anonymous`` until the key is known), and returned with ``X-Process-Time`` on the
response."""

from __future__ import annotations

import re
import time
import uuid

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ragd.audit import ANONYMOUS, AUDIT_CONTEXT, AuditContext

_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = _header(scope, b"x-request-id")
        request_id = incoming if _SAFE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        client = scope.get("client")
        audit = AUDIT_CONTEXT.set(
            AuditContext(
                actor=ANONYMOUS, request_id=request_id, client=client[0] if client else None
            )
        )
        started = time.perf_counter()

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                elapsed = f"{(time.perf_counter() - started) * 1000:.2f}"
                extra = [
                    (b"x-request-id", request_id.encode()),
                    (b"x-process-time", elapsed.encode()),
                ]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        try:
            await self.app(scope, receive, with_headers)
        finally:
            structlog.contextvars.clear_contextvars()
            AUDIT_CONTEXT.reset(audit)


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope["headers"]:
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return ""
