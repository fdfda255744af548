"""JSON bodies with a ``\\u0000`` escape are a 422 on every database: no text ragd
keeps may hold U+0000 (PostgreSQL cannot store it). NDJSON (batch uploads) is checked a
line at a time instead, so one such line rejects that item, not the batch.

JSON bodies are small (the body cap holds), so they are read whole first: a refusal is
then a clean 422 rather than an error inside the framework's body parser.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ragd.api.middleware.problem import ResponseWatch, send_problem


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


class NulGuardMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _is_json(scope):
            await self.app(scope, receive, send)
            return
        body, replay = await _buffered(receive)
        if has_nul_escape(body):
            await send_problem(
                ResponseWatch(send),
                scope,
                422,
                "Unprocessable Content",
                "text must not contain NUL characters (\\u0000)",
            )
            return
        await self.app(scope, replay, send)


def _is_json(scope: Scope) -> bool:
    for key, value in scope["headers"]:
        if key.lower() == b"content-type":
            lowered = value.lower()
            return b"json" in lowered and b"ndjson" not in lowered
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
