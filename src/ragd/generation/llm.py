"""One generator for every chat LLM; a ``ChatBackend`` only sends a chat request.

``LLMGenerator`` owns what does not depend on the provider: building the prompts,
answering (streamed or whole, one code path), rewriting follow-ups within the history
budget, the error loop that turns any client failure into a user-safe
``GenerationError``, and the latency metrics. A backend (``ragd.generation.backends``)
sets up its client, sends one request and translates the reply's stream events (and
token counts) into text; ``ClientErrors`` tells the generator which of its client's
exceptions mean what. Retrying is the client libraries' own (exponential backoff with
jitter, honouring ``Retry-After``, on connection errors, 408, 409, 429 and 5xx).

Error details name only the kind of failure and the HTTP status (with the provider's
error code when it is a plain identifier): never the API key, never the server's raw
error text (which may echo the key).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, ClassVar, Protocol, Self

from ragd.errors import GenerationError
from ragd.generation import base
from ragd.generation.base import NO_ANSWER_TEXT, GeneratedAnswer, Passage, Turn
from ragd.generation.prompts import answer_messages, clean_rewrite, rewrite_messages
from ragd.telemetry.metrics import LLM_DURATION, LLM_TOKENS

__all__ = [
    "ChatBackend",
    "ClientErrors",
    "LLMConfig",
    "LLMGenerator",
    "Pieces",
    "count_tokens",
    "whole",
]

CHECK_TIMEOUT_S = 3.0
REWRITE_MAX_TOKENS = 200
_SAFE_CODE = re.compile(r"[A-Za-z0-9_.\-]{1,64}")

Pieces = Generator[str, None, None]


@dataclass(frozen=True)
class LLMConfig:
    """What every backend's client is set up from (``RAGD_LLM_*``).

    ``temperature=None`` means the backend's own default (``ChatBackend.temperature``).
    """

    base_url: str | None
    model: str
    api_key: str | None = field(default=None, repr=False)
    timeout_s: float = 60.0
    max_retries: int = 2
    temperature: float | None = None

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments for an official client (``openai.OpenAI``, ...)."""
        return {
            "base_url": self.base_url,
            # Local servers need no key, but the clients insist on one.
            "api_key": self.api_key or "not-needed",
            "timeout": self.timeout_s,
            "max_retries": self.max_retries,
        }

    def check_options(self) -> dict[str, Any]:
        """``with_options`` for readiness checks: a short timeout and no retries."""
        return {"timeout": min(self.timeout_s, CHECK_TIMEOUT_S), "max_retries": 0}


@dataclass(frozen=True)
class ClientErrors:
    """A client library's exception classes (the official clients share this shape) and
    how to read a provider's error code from a status error."""

    base: type[Exception]
    timeout: type[Exception]
    connection: type[Exception]
    status: type[Exception]
    validation: type[Exception]
    code: Callable[[Any], object]

    @classmethod
    def of(cls, sdk: ModuleType, base: type[Exception], code: Callable[[Any], object]) -> Self:
        """The errors of an official client library (``openai``, ``anthropic``): they are
        generated from one template and name their exception classes alike."""
        return cls(
            base,
            sdk.APITimeoutError,
            sdk.APIConnectionError,
            sdk.APIStatusError,
            sdk.APIResponseValidationError,
            code,
        )

    def detail(self, exc: Exception) -> str | None:
        """A user-safe description of ``exc``, or None when it is not the client's."""
        if not isinstance(exc, self.base):
            return None
        if isinstance(exc, self.timeout):
            return "timed out"
        if isinstance(exc, self.connection):
            return "could not connect"
        if isinstance(exc, self.status):
            detail = f"HTTP {getattr(exc, 'status_code', '?')}"
            code = self.code(exc)
            if isinstance(code, str) and _SAFE_CODE.fullmatch(code):
                detail += f" ({code})"
            return detail
        if isinstance(exc, self.validation):
            return "unexpected response"
        return type(exc).__name__


class ChatBackend(Protocol):
    """One provider's chat API."""

    name: ClassVar[str]
    errors: ClassVar[ClientErrors]
    config: LLMConfig

    def stream_chat(self, system: str, user: str, *, max_tokens: int, stream: bool) -> Pieces:
        """Send one chat request now (a failure raises here) and return the reply's text:
        deltas as they arrive when ``stream``, else the whole reply as one piece. Errors
        while reading the stream raise from the iterator; closing it ends the request."""
        ...

    def check(self) -> None:
        """List the models with ``LLMConfig.check_options`` (raises the client's errors)."""
        ...

    def close(self) -> None:
        """Close the connection pool."""
        ...


def whole(text: str) -> Pieces:
    """A non-streamed reply as the one piece ``stream_chat`` returns."""
    yield text


def observe(operation: str, outcome: str, started: float) -> None:
    LLM_DURATION.labels(operation=operation, outcome=outcome).observe(time.perf_counter() - started)


def count_tokens(model: str, kind: str, used: object) -> None:
    """Record a token count the server reported, when it reported one."""
    if isinstance(used, int) and used > 0:
        LLM_TOKENS.labels(model=model, type=kind).inc(used)


class LLMGenerator(base.Generator):
    """A ``Generator`` backed by a chat model through ``backend``."""

    def __init__(
        self, backend: ChatBackend, *, max_tokens: int = 800, history_tokens: int = 2000
    ) -> None:
        self.backend = backend
        self.name = backend.name
        self.model = backend.config.model
        self.max_tokens = max_tokens
        self.history_tokens = history_tokens

    def __repr__(self) -> str:
        config = self.backend.config
        return f"LLMGenerator({self.name}, base_url={config.base_url!r}, model={config.model!r})"

    def close(self) -> None:
        """Close the backend's connection pool."""
        self.backend.close()

    def check(self) -> None:
        """Raise ``GenerationError`` unless the server lists its models quickly."""
        try:
            self.backend.check()
        except Exception as exc:
            if (failure := self._failure(exc, "LLM check failed")) is None:
                raise
            raise failure from None

    def stream(
        self, question: str, passages: Sequence[Passage], *, instructions: str | None = None
    ) -> Iterator[str]:
        """Yield the answer as text deltas; ``instructions`` join the system prompt after
        the grounding rules (see ``answer_messages``)."""
        yield from self._answer(question, passages, instructions, streaming=True)

    def generate(
        self, question: str, passages: Sequence[Passage], *, instructions: str | None = None
    ) -> GeneratedAnswer:
        """The answer as ``stream`` would give it, asked for in one (non-streaming) request."""
        return base.finished_answer(self._answer(question, passages, instructions, streaming=False))

    def rewrite(self, history: Sequence[Turn], question: str) -> str:
        """``question`` rewritten to stand alone, given the conversation ``history``
        (trimmed to ``history_tokens``, oldest turns dropped first)."""
        system, user = rewrite_messages(history, question, self.history_tokens)
        raw = "".join(self._chat("rewrite", system, user, REWRITE_MAX_TOKENS, streaming=False))
        text = clean_rewrite(raw)
        if not text:
            raise GenerationError("LLM rewrite failed: empty answer")
        return text

    def _answer(
        self,
        question: str,
        passages: Sequence[Passage],
        instructions: str | None,
        *,
        streaming: bool,
    ) -> Iterator[str]:
        if not passages:
            yield NO_ANSWER_TEXT
            return
        system, user = answer_messages(question, passages, instructions)
        operation = "stream" if streaming else "generate"
        yield from self._chat(operation, system, user, self.max_tokens, streaming=streaming)

    def _chat(
        self, operation: str, system: str, user: str, max_tokens: int, *, streaming: bool
    ) -> Iterator[str]:
        """The error loop around one backend request; a whole (non-streamed) reply must
        not be empty."""
        action = "LLM rewrite failed" if operation == "rewrite" else "LLM request failed"
        started = time.perf_counter()
        try:
            pieces = self.backend.stream_chat(system, user, max_tokens=max_tokens, stream=streaming)
        except Exception as exc:
            observe(operation, "error", started)
            if (failure := self._failure(exc, action)) is None:
                raise
            raise failure from None
        answered = False
        with closing(pieces):
            while True:
                try:
                    piece = next(pieces)
                except StopIteration:
                    break
                except Exception as exc:  # the client may not wrap a transport error here
                    observe(operation, "error", started)
                    detail = self.backend.errors.detail(exc) or "connection lost"
                    raise GenerationError(f"LLM stream failed: {detail}") from None
                answered = answered or bool(piece.strip())
                yield piece
        observe(operation, "ok", started)
        if not streaming and not answered:
            raise GenerationError(f"{action}: empty answer")

    def _failure(self, exc: Exception, action: str) -> GenerationError | None:
        """A ``GenerationError`` for a client error; None for anything else (a bug, which
        is raised as it is)."""
        detail = self.backend.errors.detail(exc)
        return None if detail is None else GenerationError(f"{action}: {detail}")
