"""The problem+json responses middleware sends itself, before or instead of the app."""

from __future__ import annotations

import json
from collections.abc import Sequence

from starlette.types import Message, Scope, Send


def request_id_of(scope: Scope) -> str | None:
    state = scope.get("state") or {}
    found = state.get("request_id")
    return found if isinstance(found, str) else None


class ResponseWatch:
    """A ``send`` that remembers whether the response has started (and its status),
    so a late error knows it can no longer answer cleanly."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self.started = False
        self.status = 500

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
            self.status = message["status"]
        await self._send(message)


async def send_problem(
    send: ResponseWatch,
    scope: Scope,
    status: int,
    title: str,
    detail: str,
    *,
    headers: Sequence[tuple[bytes, bytes]] = (),
) -> None:
    """Answer with a problem, unless the response already started: then it is too
    late for a clean error, and the connection just ends. ``headers`` are added (a 503's
    ``Retry-After``)."""
    if send.started:
        return
    body = json.dumps(
        {
            "type": f"https://ragd.dev/problems/{title.lower().replace(' ', '-')}",
            "title": title,
            "status": status,
            "detail": detail,
            "request_id": request_id_of(scope),
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
