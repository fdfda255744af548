"""A protocol-level fake of an OpenAI-compatible server, for tests.

A real HTTP server on 127.0.0.1 (random port) in a thread, speaking the wire format of
``GET /v1/models`` and ``POST /v1/chat/completions`` (JSON, or Server-Sent Events with
``"stream": true``). Replies to chat requests come from a script::

    with FakeOpenAI() as server:
        server.fail(500, retry_after=0.01)   # first request: HTTP 500 + Retry-After
        server.reply("Paris [1].")           # second request: this answer
        ...
        server.requests                      # what arrived: method, path, headers, JSON

``reply(..., delta_delay_s=0.2)`` streams slowly, and ``streams`` / ``wait_for_stream``
tell how each streamed reply ended: sent to the end, or cut off by a client that hung up
(seen as a closed socket before a write, or a write that fails).

With ``api_key`` set, every request must carry ``Authorization: Bearer <api_key>`` or
gets OpenAI's 401 ``invalid_api_key`` error (which, like OpenAI's, echoes the key).
"""

from __future__ import annotations

import json
import re
import select
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self, cast

__all__ = ["FakeOpenAI", "RecordedRequest", "StreamOutcome"]


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    json: Any  # the parsed body, or None without one


@dataclass(frozen=True)
class StreamOutcome:
    """How one streamed reply ended, as the server saw it."""

    deltas: int  # content deltas in the script
    sent: int  # content deltas written to the socket
    completed: bool  # every event and the final [DONE] were written
    cut_off: bool  # the client hung up before the end

    @property
    def ended(self) -> bool:
        return self.completed or self.cut_off


@dataclass(frozen=True)
class _Reply:
    text: str
    deltas: tuple[str, ...]
    delay_s: float
    delta_delay_s: float


@dataclass(frozen=True)
class _Failure:
    status: int
    retry_after: float | None
    message: str
    code: str | None


_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    404: "invalid_request_error",
    429: "rate_limit_exceeded",
}


class FakeOpenAI:
    """A scripted OpenAI-compatible server; use as a context manager."""

    def __init__(self, *, api_key: str | None = None, models: tuple[str, ...] = ("fake-model",)):
        self.api_key = api_key
        self.models = models
        self._script: deque[_Reply | _Failure] = deque()
        self._requests: list[RecordedRequest] = []
        self._streams: list[StreamOutcome] = []
        self._lock = threading.Lock()
        self._stream_changed = threading.Condition(self._lock)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._counter = 0

    # -- scripting -----------------------------------------------------------------------

    def reply(
        self,
        text: str,
        *,
        deltas: list[str] | None = None,
        delay_s: float = 0.0,
        delta_delay_s: float = 0.0,
    ) -> None:
        """Answer the next chat request with ``text`` (streamed as ``deltas`` if given),
        after ``delay_s``; a stream waits ``delta_delay_s`` before each content delta."""
        pieces = tuple(deltas) if deltas is not None else tuple(re.findall(r"\S+\s*|\s+", text))
        if "".join(pieces) != text:
            raise ValueError("deltas must join to text")
        with self._lock:
            self._script.append(_Reply(text, pieces, delay_s, delta_delay_s))

    def fail(
        self,
        status: int,
        times: int = 1,
        retry_after: float | None = None,
        *,
        message: str | None = None,
        code: str | None = None,
    ) -> None:
        """Answer the next ``times`` chat requests with an OpenAI-style error."""
        failure = _Failure(status, retry_after, message or f"fake error {status}", code)
        with self._lock:
            self._script.extend([failure] * times)

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == "/v1/chat/completions"]

    @property
    def streams(self) -> list[StreamOutcome]:
        """Every streamed reply so far, oldest first (one still running has not ended)."""
        with self._lock:
            return list(self._streams)

    def wait_for_stream(self, index: int, timeout_s: float) -> StreamOutcome:
        """The outcome of the ``index``-th streamed reply once it has ended; raises
        ``TimeoutError`` if it has not started and ended within ``timeout_s``."""
        with self._stream_changed:
            ended = self._stream_changed.wait_for(
                lambda: len(self._streams) > index and self._streams[index].ended, timeout_s
            )
            if not ended:
                raise TimeoutError(f"stream {index} did not end in {timeout_s}s")
            return self._streams[index]

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeOpenAI is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    # -- lifecycle -----------------------------------------------------------------------

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

    # -- used by the handler -------------------------------------------------------------

    def _record(self, request: RecordedRequest) -> int:
        with self._lock:
            self._requests.append(request)
            self._counter += 1
            return self._counter

    def _next(self) -> _Reply | _Failure | None:
        with self._lock:
            return self._script.popleft() if self._script else None

    def _stream_started(self, deltas: int) -> int:
        with self._stream_changed:
            self._streams.append(StreamOutcome(deltas, 0, completed=False, cut_off=False))
            self._stream_changed.notify_all()
            return len(self._streams) - 1

    def _stream_progress(self, index: int, **changes: Any) -> None:
        with self._stream_changed:
            self._streams[index] = replace(self._streams[index], **changes)
            self._stream_changed.notify_all()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    fake: FakeOpenAI

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that time out and hang up are expected; stay quiet."""


class _Handler(BaseHTTPRequestHandler):
    server_version = "FakeOpenAI/1.0"

    @property
    def fake(self) -> FakeOpenAI:
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
        number = self.fake._record(RecordedRequest(self.command, self.path, headers, body))
        key = self.fake.api_key
        if key is not None and headers.get("authorization") != f"Bearer {key}":
            given = headers.get("authorization", "").removeprefix("Bearer ")
            message = f"Incorrect API key provided: {given}."
            self._error(_Failure(401, None, message, "invalid_api_key"))
        elif self.command == "GET" and self.path == "/v1/models":
            self._models()
        elif self.command == "POST" and self.path == "/v1/chat/completions":
            self._chat(body if isinstance(body, dict) else {}, number)
        else:
            self._error(_Failure(404, None, f"Unknown request URL: {self.path}", None))

    def _models(self) -> None:
        data = [
            {"id": model, "object": "model", "created": 0, "owned_by": "fake"}
            for model in self.fake.models
        ]
        self._json(200, {"object": "list", "data": data})

    def _chat(self, body: dict[str, Any], number: int) -> None:
        step = self.fake._next()
        if step is None:
            step = _Failure(500, None, "FakeOpenAI has no scripted reply left", None)
        if isinstance(step, _Failure):
            self._error(step)
            return
        if step.delay_s:
            time.sleep(step.delay_s)
        model = str(body.get("model", "fake-model"))
        prompt = " ".join(str(m.get("content", "")) for m in body.get("messages", []))
        usage = _usage(prompt, step.text)
        head = {
            "id": f"chatcmpl-fake{number}",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": "fp_fake",
        }
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            self._stream(head, step, usage if include_usage else None)
            return
        message = {"role": "assistant", "content": step.text, "refusal": None}
        choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}
        self._json(200, {**head, "object": "chat.completion", "choices": [choice], "usage": usage})

    def _stream(self, head: dict[str, Any], step: _Reply, usage: dict[str, int] | None) -> None:
        deltas = step.deltas
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()

        def chunk(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            return {**head, "object": "chat.completion.chunk", "choices": [choice]}

        events = [chunk({"role": "assistant", "content": ""}, None)]
        events += [chunk({"content": d}, None) for d in deltas]
        events.append(chunk({}, "stop"))
        if usage is not None:
            events.append(
                {**head, "object": "chat.completion.chunk", "choices": [], "usage": usage}
            )
        index = self.fake._stream_started(len(deltas))
        sent = 0
        try:
            for event in events:
                content = event["choices"][0]["delta"].get("content") if event["choices"] else ""
                if content:
                    time.sleep(step.delta_delay_s)
                if self._peer_closed():
                    raise ConnectionAbortedError("the client hung up")
                self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
                self.wfile.flush()
                if content:
                    sent += 1
                    self.fake._stream_progress(index, sent=sent)
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
        except OSError:
            self.fake._stream_progress(index, cut_off=True)
            self.close_connection = True
            return
        self.fake._stream_progress(index, completed=True)

    def _peer_closed(self) -> bool:
        """Whether the client has closed its end: a write alone may still succeed then."""
        readable, _, _ = select.select([self.connection], [], [], 0)
        if not readable:
            return False
        try:
            peeked: bytes = self.connection.recv(1, socket.MSG_PEEK)
        except OSError:
            return True
        return peeked == b""

    def _error(self, failure: _Failure) -> None:
        error = {
            "message": failure.message,
            "type": _ERROR_TYPES.get(failure.status, "server_error"),
            "param": None,
            "code": failure.code,
        }
        extra = {}
        if failure.retry_after is not None:
            extra["Retry-After"] = f"{failure.retry_after:g}"
        self._json(failure.status, {"error": error}, extra)

    def _json(self, status: int, payload: object, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


def _usage(prompt: str, completion: str) -> dict[str, int]:
    prompt_tokens = len(prompt.split())
    completion_tokens = len(completion.split())
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }
