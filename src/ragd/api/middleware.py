"""Pure ASGI middleware: request ids, timing and access logs, and a streamed body cap.

Pure ASGI rather than ``BaseHTTPMiddleware`` so that bodies stream through untouched and
the cap can stop an upload while it arrives instead of after it has been buffered.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ragd.telemetry.tracing import capture_exception

log = structlog.get_logger("ragd.access")

_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class NulInBody(Exception):
    """A JSON body with a ``\\u0000`` escape: no text ragd keeps may hold U+0000
    (PostgreSQL cannot store it), so it is refused the same way on every database."""


def has_nul_escape(body: bytes) -> bool:
    """Whether ``body`` (JSON) has a ``\\u0000`` escape: the ``u0000`` after an odd run of
    backslashes (an even run is escaped backslashes followed by the text "u0000")."""
    start = body.find(b"\\u0000")
    while start != -1:
        run = 0
        while start - run - 1 >= 0 and body[start - run - 1] == 0x5C:
            run += 1
        if run % 2 == 0:
            return True
        start = body.find(b"\\u0000", start + 1)
    return False


async def _buffered(receive: Receive) -> tuple[bytes, Receive]:
    """The whole request body, and a ``receive`` that hands it on once and then passes
    later messages (a client disconnect) through."""
    parts: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            first: Message = message
            break
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            first = {"type": "http.request", "body": b"".join(parts), "more_body": False}
            break
    pending = [first]

    async def replay() -> Message:
        return pending.pop() if pending else await receive()

    return b"".join(parts), replay


class BodyTooLarge(Exception):
    """Raised from ``receive`` once a body passes the cap."""


def _problem_bytes(status: int, title: str, detail: str, request_id: str) -> bytes:
    return json.dumps(
        {
            "type": f"https://ragd.dev/problems/{title.lower().replace(' ', '-')}",
            "title": title,
            "status": status,
            "detail": detail,
            "request_id": request_id,
        }
    ).encode()


class RequestContextMiddleware:
    """Binds a request id into every log line, returns it with ``X-Process-Time``,
    writes one access line, enforces the body cap and turns any escaped exception into
    a problem+json 500 that still carries the request id."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        incoming = headers.get("x-request-id", "")
        request_id = incoming if _SAFE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        state: dict[str, Any] = {"status": 500, "started": False}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
                state["started"] = True
                elapsed = f"{(time.perf_counter() - started) * 1000:.2f}"
                extra = [
                    (b"x-request-id", request_id.encode()),
                    (b"x-process-time", elapsed.encode()),
                ]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        try:
            declared = int(headers.get("content-length") or 0)
        except ValueError:
            declared = 0
        try:
            if declared > self.max_body_bytes:
                raise BodyTooLarge
            guarded = self._capped(receive)
            if "json" in headers.get("content-type", ""):
                # JSON bodies are small (capped above); read first, so that a refusal is
                # a clean 422 rather than an error inside the framework's body parser.
                body, guarded = await _buffered(guarded)
                if has_nul_escape(body):
                    raise NulInBody
            await self.app(scope, guarded, send_wrapper)
        except NulInBody:
            await self._send_problem(
                send_wrapper,
                state,
                422,
                "Unprocessable Content",
                "text must not contain NUL characters (\\u0000)",
                request_id,
            )
        except BodyTooLarge:
            await self._send_problem(
                send_wrapper,
                state,
                413,
                "Payload Too Large",
                f"request body is larger than {self.max_body_bytes} bytes",
                request_id,
            )
        except Exception as exc:
            log.exception("unhandled error", path=scope.get("path"))
            capture_exception(exc)
            await self._send_problem(
                send_wrapper,
                state,
                500,
                "Internal Server Error",
                "an unexpected error occurred",
                request_id,
            )
        finally:
            route = scope.get("route")
            log.info(
                "request",
                method=scope.get("method"),
                path=scope.get("path"),
                route=getattr(route, "path", None),
                status=state["status"],
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
                client=(scope.get("client") or ("-",))[0],
            )
            structlog.contextvars.clear_contextvars()

    def _capped(self, receive: Receive) -> Receive:
        received = 0

        async def capped_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise BodyTooLarge
            return message

        return capped_receive

    async def _send_problem(
        self,
        send: Send,
        state: dict[str, Any],
        status: int,
        title: str,
        detail: str,
        request_id: str,
    ) -> None:
        if state["started"]:
            return  # too late for a clean error; the connection just ends
        body = _problem_bytes(status, title, detail, request_id)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/problem+json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
