"""Server-Sent Events responses from synchronous event iterators.

Routes build a plain (sync) iterator of encoded events; :func:`event_stream` runs it in
the threadpool, one ``next`` at a time, so the blocking LLM stream never holds the event
loop. When the client goes away Starlette cancels the response; the iterator is then
closed explicitly (not left to the garbage collector), which closes the generator chain
down to the LLM client's stream and so ends the upstream request.

Errors after the first byte can no longer change the status code, so
:func:`errors_as_event` turns them into one last event and ends the stream cleanly.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Callable, Iterator
from contextlib import aclosing
from typing import Any

import anyio
from starlette.concurrency import iterate_in_threadpool
from starlette.responses import StreamingResponse
from starlette.types import Send

from ragd.api.problems import problem_fields

__all__ = ["SSE_MEDIA_TYPE", "encode_event", "errors_as_event", "event_schema", "event_stream"]

SSE_MEDIA_TYPE = "text/event-stream"
_HEADERS = {
    "Cache-Control": "no-cache",
    # nginx and some other proxies buffer responses unless told not to.
    "X-Accel-Buffering": "no",
}


def event_schema(names: tuple[str, ...] | None) -> dict[str, Any]:
    """The OpenAPI schema of one event of a stream (OpenAPI 3.1: the ``schema`` of a
    ``text/event-stream`` response describes each event): its ``event`` is one of
    ``names`` (None: events are unnamed), its ``data`` a JSON text when names are given
    (unnamed streams end with OpenAI's ``[DONE]``, which is not JSON)."""
    data: dict[str, Any] = {"type": "string"}
    properties: dict[str, Any] = {"data": data}
    if names is not None:
        data.update(contentMediaType="application/json", contentSchema={"type": "object"})
        properties["event"] = {"type": "string", "enum": list(names)}
    return {"type": "object", "required": ["data"], "properties": properties}


def encode_event(data: Any, event: str | None = None) -> bytes:
    """One SSE event: ``event: <event>`` (when given) and ``data: <json>``; a ``str``
    ``data`` is sent as it is (OpenAI's ``[DONE]``)."""
    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {payload}\n\n".encode()


def errors_as_event(
    source: Iterator[bytes], error_event: Callable[[dict[str, Any]], bytes]
) -> Iterator[bytes]:
    """``source``'s events; an exception from it becomes ``error_event(problem fields)``
    and the end of the stream. Closing this iterator closes ``source``."""
    try:
        yield from source
    except Exception as exc:  # after the headers went out, an event is all we can send
        yield error_event(problem_fields(exc))


def event_stream(source: Iterator[bytes]) -> StreamingResponse:
    """A ``text/event-stream`` response that pulls ``source`` in the threadpool."""
    return _EventStreamResponse(_pull(source), media_type=SSE_MEDIA_TYPE, headers=_HEADERS)


class _EventStreamResponse(StreamingResponse):
    """Closes its body generator however the response ends: finished, cancelled by
    Starlette's disconnect listener (ASGI < 2.4), or a failed ``send`` (ASGI 2.4)."""

    def __init__(self, body: AsyncGenerator[bytes, None], **kwargs: Any) -> None:
        super().__init__(body, **kwargs)
        self._body = body

    async def stream_response(self, send: Send) -> None:
        async with aclosing(self._body):
            await super().stream_response(send)


async def _pull(source: Iterator[bytes]) -> AsyncGenerator[bytes, None]:
    try:
        async for chunk in iterate_in_threadpool(source):
            yield chunk
    finally:
        close = getattr(source, "close", None)
        if close is not None:
            # Runs after a cancelled ``next`` has returned (threads are not abandoned),
            # so the generator is not executing; shielded so cancellation cannot skip it.
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(close)
