"""A protocol-level fake of Anthropic's Messages API, for tests.

A real HTTP server on 127.0.0.1 (random port) in a thread, speaking the wire format of
``GET /v1/models`` and ``POST /v1/messages`` (JSON, or Server-Sent Events with
``"stream": true``: message_start, content_block_start, content_block_delta
(text_delta), content_block_stop, message_delta, message_stop). Errors have Anthropic's
shape, ``{"type": "error", "error": {"type": "overloaded_error", "message": ...}}``.
Replies come from a script::

    with FakeAnthropic() as server:
        server.fail(529, retry_after=0.01)   # first request: overloaded + Retry-After
        server.reply("Paris [1].")           # second request: this answer
        ...
        server.requests                      # what arrived: method, path, headers, JSON

With ``api_key`` set, every request must carry the key, as ``x-api-key: <api_key>`` or
(as recent ``anthropic`` clients send it) ``Authorization: Bearer <api_key>``, or gets a
401 ``authentication_error`` (which, to test that we never repeat it, echoes the key).
"""

from __future__ import annotations

import json
import re
import threading
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self, cast

from .fake_openai import RecordedRequest

__all__ = ["FakeAnthropic", "RecordedRequest", "sent_key"]


def sent_key(headers: dict[str, str]) -> str:
    """The API key a request carried (``x-api-key``, else a bearer token), or ``""``."""
    if "x-api-key" in headers:
        return headers["x-api-key"]
    return headers.get("authorization", "").removeprefix("Bearer ")


@dataclass(frozen=True)
class _Reply:
    text: str
    deltas: tuple[str, ...]


@dataclass(frozen=True)
class _Failure:
    status: int
    retry_after: float | None
    message: str


ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


class FakeAnthropic:
    """A scripted Anthropic Messages server; use as a context manager."""

    def __init__(self, *, api_key: str | None = None, models: tuple[str, ...] = ("fake-claude",)):
        self.api_key = api_key
        self.models = models
        self._script: deque[_Reply | _Failure] = deque()
        self._requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._counter = 0

    def reply(self, text: str, *, deltas: list[str] | None = None) -> None:
        """Answer the next messages request with ``text`` (streamed as ``deltas``)."""
        pieces = tuple(deltas) if deltas is not None else tuple(re.findall(r"\S+\s*|\s+", text))
        if "".join(pieces) != text:
            raise ValueError("deltas must join to text")
        with self._lock:
            self._script.append(_Reply(text, pieces))

    def fail(
        self, status: int, times: int = 1, retry_after: float | None = None, message: str = ""
    ) -> None:
        """Answer the next ``times`` messages requests with an Anthropic-style error."""
        failure = _Failure(status, retry_after, message or f"fake error {status}")
        with self._lock:
            self._script.extend([failure] * times)

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def message_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == "/v1/messages"]

    @property
    def base_url(self) -> str:
        """The client's base URL (it appends ``/v1/...`` itself)."""
        if self._server is None:
            raise RuntimeError("FakeAnthropic is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> Self:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _record(self, request: RecordedRequest) -> int:
        with self._lock:
            self._requests.append(request)
            self._counter += 1
            return self._counter

    def _next(self) -> _Reply | _Failure | None:
        with self._lock:
            return self._script.popleft() if self._script else None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    fake: FakeAnthropic

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that time out and hang up are expected; stay quiet."""


class _Handler(BaseHTTPRequestHandler):
    server_version = "FakeAnthropic/1.0"

    @property
    def fake(self) -> FakeAnthropic:
        return cast(_Server, self.server).fake

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request log on stderr."""

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        headers = {name.lower(): value for name, value in self.headers.items()}
        path = self.path.split("?", 1)[0]
        number = self.fake._record(RecordedRequest(self.command, path, headers, body))
        key = self.fake.api_key
        if key is not None and sent_key(headers) != key:
            given = sent_key(headers)
            self._error(_Failure(401, None, f"invalid x-api-key: {given}"))
        elif self.command == "GET" and path == "/v1/models":
            self._models()
        elif self.command == "POST" and path == "/v1/messages":
            self._messages(body if isinstance(body, dict) else {}, number)
        else:
            self._error(_Failure(404, None, f"Not found: {path}"))

    def _models(self) -> None:
        data = [
            {
                "type": "model",
                "id": model,
                "display_name": model,
                "created_at": "2025-01-01T00:00:00Z",
            }
            for model in self.fake.models
        ]
        first = data[0]["id"] if data else None
        last = data[-1]["id"] if data else None
        self._json(200, {"data": data, "has_more": False, "first_id": first, "last_id": last})

    def _messages(self, body: dict[str, Any], number: int) -> None:
        step = self.fake._next()
        if step is None:
            step = _Failure(500, None, "FakeAnthropic has no scripted reply left")
        if isinstance(step, _Failure):
            self._error(step)
            return
        model = str(body.get("model", "fake-claude"))
        prompt = str(body.get("system", "")) + " ".join(
            str(m.get("content", "")) for m in body.get("messages", [])
        )
        input_tokens = len(prompt.split())
        output_tokens = len(step.text.split())
        head = {
            "id": f"msg_fake{number}",
            "type": "message",
            "role": "assistant",
            "model": model,
        }
        if body.get("stream"):
            self._stream(head, step.deltas, input_tokens, output_tokens)
            return
        message = {
            **head,
            "content": [{"type": "text", "text": step.text}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
        }
        self._json(200, message)

    def _stream(
        self, head: dict[str, Any], deltas: tuple[str, ...], input_tokens: int, output_tokens: int
    ) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        start = {
            **head,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": input_tokens, "output_tokens": 1},
        }
        events: list[dict[str, Any]] = [
            {"type": "message_start", "message": start},
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
            {"type": "ping"},
        ]
        events += [
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": d}}
            for d in deltas
        ]
        events += [
            {"type": "content_block_stop", "index": 0},
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": output_tokens},
            },
            {"type": "message_stop"},
        ]
        for event in events:
            self.wfile.write(f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode())
            self.wfile.flush()

    def _error(self, failure: _Failure) -> None:
        kind = ERROR_TYPES.get(failure.status, "api_error")
        payload = {"type": "error", "error": {"type": kind, "message": failure.message}}
        extra = {}
        if failure.retry_after is not None:
            extra["retry-after"] = f"{failure.retry_after:g}"
        self._json(failure.status, payload, extra)

    def _json(self, status: int, payload: object, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("request-id", "req_fake")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
