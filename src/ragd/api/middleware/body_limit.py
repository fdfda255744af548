"""The body cap: a declared ``Content-Length`` over it is refused at once, a streamed
body the moment it passes it, both as a problem+json 413.

Batch uploads (paths ending in ``/documents:batch``) have a cap of their own
(``RAGD_MAX_BATCH_MB``): they carry many documents, each still bounded by the upload cap.
Other paths may have one too (``POST /v1/imports`` takes whole archives, streamed to disk).
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ragd.api.middleware.problem import ResponseWatch, send_problem


class BodyTooLarge(Exception):
    """Raised from ``receive`` once a body passes the cap."""


BATCH_PATH_SUFFIX = "/documents:batch"


class BodyLimitMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        max_batch_bytes: int,
        path_caps: Mapping[str, int] | None = None,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_batch_bytes = max_batch_bytes
        self.path_caps = dict(path_caps or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        watch = ResponseWatch(send)
        default = self.max_batch_bytes if _is_batch(scope) else self.max_body_bytes
        cap = self.path_caps.get(scope.get("path", ""), default)
        try:
            if _declared_length(scope) > cap:
                raise BodyTooLarge
            await self.app(scope, self._capped(receive, cap), watch)
        except BodyTooLarge:
            await send_problem(
                watch, scope, 413, "Payload Too Large", f"request body is larger than {cap} bytes"
            )

    def _capped(self, receive: Receive, cap: int) -> Receive:
        received = 0

        async def capped_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > cap:
                    raise BodyTooLarge
            return message

        return capped_receive


def _is_batch(scope: Scope) -> bool:
    path: str = scope.get("path", "")
    return path.endswith(BATCH_PATH_SUFFIX)


def _declared_length(scope: Scope) -> int:
    for key, value in scope["headers"]:
        if key.lower() == b"content-length":
            try:
                return int(value or 0)
            except ValueError:
                return 0
    return 0
