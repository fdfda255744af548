"""Answers from Anthropic's Messages API (``POST {base_url}/v1/messages``).

The official ``anthropic`` client does the retrying (exponential backoff with jitter,
honouring ``Retry-After``, on connection errors, 408, 409, 429 and 5xx, including 529
``overloaded_error``). Every client error becomes a ``GenerationError`` whose detail
names only the kind of failure and the HTTP status: never the API key, never the
server's raw error text.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Sequence
from typing import Any

import anthropic
from anthropic.types import MessageParam

from ragd.errors import GenerationError
from ragd.generation.base import NO_ANSWER_TEXT, GeneratedAnswer, Passage, Turn
from ragd.generation.citations import CitationFilter
from ragd.generation.llm import cited_answer, count_tokens, observe
from ragd.generation.prompts import answer_messages, clean_rewrite, rewrite_messages

__all__ = ["AnthropicGenerator"]

CHECK_TIMEOUT_S = 3.0
REWRITE_MAX_TOKENS = 200
_SAFE_CODE = re.compile(r"[A-Za-z0-9_.\-]{1,64}")


def _failure(exc: anthropic.AnthropicError, action: str = "LLM request failed") -> GenerationError:
    """A user-safe ``GenerationError`` for a client error (no key, no raw text)."""
    if isinstance(exc, anthropic.APITimeoutError):
        detail = "timed out"
    elif isinstance(exc, anthropic.APIConnectionError):
        detail = "could not connect"
    elif isinstance(exc, anthropic.APIStatusError):
        detail = f"HTTP {exc.status_code}"
        kind = _error_type(exc.body)
        if kind and _SAFE_CODE.fullmatch(kind):
            detail += f" ({kind})"
    elif isinstance(exc, anthropic.APIResponseValidationError):
        detail = "unexpected response"
    else:
        detail = type(exc).__name__
    return GenerationError(f"{action}: {detail}")


def _error_type(body: object) -> str | None:
    """The ``error.type`` of an Anthropic error body (``overloaded_error``, ...)."""
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and isinstance(error.get("type"), str):
            return str(error["type"])
    return None


class AnthropicGenerator:
    """A ``Generator`` backed by Anthropic's Messages API."""

    name: str = "anthropic"

    def __init__(
        self,
        base_url: str | None,
        model: str,
        api_key: str | None,
        timeout_s: float = 60.0,
        max_retries: int = 2,
        temperature: float | None = None,
        max_tokens: int = 800,
        history_tokens: int = 2000,
    ) -> None:
        self.base_url = base_url
        self.model = model
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.history_tokens = history_tokens
        self._check_timeout_s = min(timeout_s, CHECK_TIMEOUT_S)
        self._client = anthropic.Anthropic(
            base_url=base_url,
            api_key=api_key or "not-needed",
            timeout=timeout_s,
            max_retries=max_retries,
        )

    def __repr__(self) -> str:
        return f"AnthropicGenerator(base_url={self.base_url!r}, model={self.model!r})"

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def check(self) -> None:
        """Raise ``GenerationError`` unless the server answers ``GET /v1/models`` quickly."""
        client = self._client.with_options(timeout=self._check_timeout_s, max_retries=0)
        try:
            client.models.list(limit=1)
        except anthropic.AnthropicError as exc:
            raise _failure(exc, "LLM check failed") from None

    def generate(
        self, question: str, passages: Sequence[Passage], *, instructions: str | None = None
    ) -> GeneratedAnswer:
        """Answer from ``passages``; ``instructions`` join ``system`` after the grounding
        rules (see ``answer_messages``)."""
        if not passages:
            return GeneratedAnswer(NO_ANSWER_TEXT, ())
        system, user = answer_messages(question, passages, instructions)
        raw = self._complete("generate", system, [{"role": "user", "content": user}])
        return cited_answer(raw, passages)

    def rewrite(self, history: Sequence[Turn], question: str) -> str:
        """``question`` rewritten to stand alone, given the conversation ``history``."""
        system, user = rewrite_messages(history, question, self.history_tokens)
        raw = self._complete(
            "rewrite", system, [{"role": "user", "content": user}], REWRITE_MAX_TOKENS
        )
        text = clean_rewrite(raw)
        if not text:
            raise GenerationError("LLM rewrite failed: empty answer")
        return text

    def stream(
        self, question: str, passages: Sequence[Passage], *, instructions: str | None = None
    ) -> Iterator[str]:
        """Yield the answer as text deltas, invented citations already removed."""
        if not passages:
            yield NO_ANSWER_TEXT
            return
        system, user = answer_messages(question, passages, instructions)
        started = time.perf_counter()
        try:
            response = self._client.messages.create(
                model=self.model,
                system=system,
                messages=[{"role": "user", "content": user}],
                max_tokens=self.max_tokens,
                extra_body=self._extra_body(),
                stream=True,
            )
        except anthropic.AnthropicError as exc:
            observe("stream", "error", started)
            raise _failure(exc) from None
        citations = CitationFilter({p.n for p in passages})
        with response:
            events = iter(response)
            while True:
                try:
                    event: Any = next(events)
                except StopIteration:
                    break
                except anthropic.AnthropicError as exc:
                    observe("stream", "error", started)
                    raise _failure(exc, "LLM stream failed") from None
                except Exception:  # transport errors mid-stream are not wrapped by the client
                    observe("stream", "error", started)
                    raise GenerationError("LLM stream failed: connection lost") from None
                if event.type == "message_start":
                    count_tokens(self.model, "prompt", event.message.usage.input_tokens)
                elif event.type == "message_delta":
                    count_tokens(self.model, "completion", event.usage.output_tokens)
                elif (
                    event.type == "content_block_delta"
                    and event.delta.type == "text_delta"
                    and (text := citations.feed(event.delta.text))
                ):
                    yield text
        observe("stream", "ok", started)
        if tail := citations.close():
            yield tail

    def _extra_body(self) -> dict[str, float] | None:
        # The current client no longer types ``temperature``; send it only when asked for.
        return None if self.temperature is None else {"temperature": self.temperature}

    def _complete(
        self,
        operation: str,
        system: str,
        messages: list[MessageParam],
        max_tokens: int | None = None,
    ) -> str:
        started = time.perf_counter()
        try:
            message = self._client.messages.create(
                model=self.model,
                system=system,
                messages=messages,
                max_tokens=max_tokens or self.max_tokens,
                extra_body=self._extra_body(),
            )
        except anthropic.AnthropicError as exc:
            observe(operation, "error", started)
            raise _failure(exc) from None
        observe(operation, "ok", started)
        count_tokens(self.model, "prompt", message.usage.input_tokens)
        count_tokens(self.model, "completion", message.usage.output_tokens)
        raw = "".join(block.text for block in message.content if block.type == "text").strip()
        if not raw:
            raise GenerationError("LLM request failed: empty answer")
        return raw
