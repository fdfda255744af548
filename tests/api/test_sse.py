"""Event streams stop pulling their source when the client goes away."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
from starlette.requests import ClientDisconnect
from starlette.types import Message

from ragd.api.sse import encode_event, errors_as_event, event_stream
from ragd.errors import GenerationError

LIMIT = 100_000


class Source:
    """An event source far longer than any test reads; records how it ended."""

    def __init__(self) -> None:
        self.pulled = 0
        self.closed = threading.Event()

    def __iter__(self) -> Iterator[bytes]:
        try:
            while self.pulled < LIMIT:
                self.pulled += 1
                yield encode_event({"n": self.pulled}, "delta")
        finally:
            self.closed.set()


def scope(spec_version: str) -> dict[str, Any]:
    return {"type": "http", "asgi": {"version": "3.0", "spec_version": spec_version}}


def test_disconnect_closes_the_source_asgi_2_3() -> None:
    source = Source()
    response = event_stream(iter(source))

    async def main() -> None:
        first_body = anyio.Event()

        async def receive() -> Message:
            await first_body.wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            if message["type"] == "http.response.body":
                first_body.set()

        await response(scope("2.3"), receive, send)

    anyio.run(main)
    assert source.closed.is_set()
    assert source.pulled < LIMIT


def test_failed_send_closes_the_source_asgi_2_4() -> None:
    source = Source()
    response = event_stream(iter(source))

    async def main() -> None:
        async def receive() -> Message:
            raise AssertionError("not used with ASGI 2.4")

        async def send(message: Message) -> None:
            if message["type"] == "http.response.body":
                raise OSError("client went away")

        with pytest.raises(ClientDisconnect):
            await response(scope("2.4"), receive, send)

    anyio.run(main)
    assert source.closed.is_set()
    assert source.pulled < LIMIT


def test_an_error_becomes_the_last_event() -> None:
    def failing() -> Iterator[bytes]:
        yield encode_event({"text": "partial"}, "delta")
        raise GenerationError("LLM stream failed: connection lost")

    events = list(errors_as_event(failing(), lambda p: encode_event(p, "error")))
    assert events[0] == b'event: delta\ndata: {"text": "partial"}\n\n'
    assert events[1].startswith(b"event: error\n")
    assert b'"status": 503' in events[1]
    assert b"connection lost" in events[1]
